/**
 * The scheduler's one timer: armed for the earliest moment something queued needs a decision (a
 * held queue's send-by time, the latest start that still meets a request's deadline), so no
 * request waits past its deadline unseen and a held queue is sent on time. Arming for a later
 * moment than the one already armed changes nothing; for an earlier one, it re-arms.
 */
export class WakeTimer {
  private timer: NodeJS.Timeout | undefined
  private at = Number.POSITIVE_INFINITY

  /** `wake` runs once the armed moment has come. */
  constructor(private readonly wake: () => void) {}

  /** Wakes at `at` (performance.now() clock), unless already armed for that moment or earlier. */
  arm(at: number, now: number): void {
    if (at === Number.POSITIVE_INFINITY) return
    if (this.timer && this.at <= at) return
    if (this.timer) clearTimeout(this.timer)
    this.at = at
    // +0.05 ms so the check runs after the moment, not a hair before it.
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.at = Number.POSITIVE_INFINITY
        this.wake()
      },
      Math.max(0, at - now + 0.05),
    )
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.at = Number.POSITIVE_INFINITY
  }
}
