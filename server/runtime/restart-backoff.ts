/**
 * When to replace a worker thread that died: at once after an isolated crash, then with a delay
 * that doubles with every further crash within the last minute (0, 0.1 s, 0.2 s … 30 s), so a
 * worker that dies on start-up does not spin. Shared by the inference and preprocessing pools.
 */

/** Replacement delay after `recent` crashes within the last minute: 0, 0.1 s, 0.2 s … 30 s. */
export function restartDelayMs(recent: number): number {
  return recent <= 1 ? 0 : Math.min(30_000, 100 * 2 ** (recent - 2))
}

const WINDOW_MS = 60_000

export class RestartBackoff {
  private readonly crashTimes: number[] = []
  private readonly timers = new Set<NodeJS.Timeout>()

  /** Records a crash now and runs `restart` after the delay its recent crashes call for. */
  schedule(restart: () => void): void {
    const now = Date.now()
    this.crashTimes.push(now)
    while ((this.crashTimes[0] ?? now) < now - WINDOW_MS) this.crashTimes.shift()
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      restart()
    }, restartDelayMs(this.crashTimes.length))
    this.timers.add(timer)
  }

  /** Cancels every restart not yet run (the pool is closing). */
  cancel(): void {
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
  }
}
