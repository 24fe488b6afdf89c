/**
 * Coalesces the messages bound for one thread within an event-loop turn into a single
 * postMessage, sent from setImmediate — the same turn, so a lone message waits microseconds.
 *
 * Under load the HTTP thread hands a preprocessing worker many images per turn, and the worker
 * finishes many per turn; one postMessage each made the hand-offs (structured clone, a queue lock
 * shared with the receiving thread, a wake-up) the largest single cost of the preprocessing
 * worker in a CPU profile at 64 clients. Batched, that cost is paid once per turn.
 */
export class MessageBatch<T> {
  private items: T[] = []
  private transfer: ArrayBuffer[] = []
  private scheduled = false

  /** `send` posts one batch; if it throws, `failed` learns which items were lost. */
  constructor(
    private readonly send: (items: T[], transfer: ArrayBuffer[]) => void,
    private readonly failed: (items: T[], error: Error) => void = () => undefined,
  ) {}

  push(item: T, transfer: readonly ArrayBuffer[] = []): void {
    this.items.push(item)
    for (const buffer of transfer) this.transfer.push(buffer)
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.flush()
    })
  }

  /** Sends what is waiting now. */
  flush(): void {
    this.scheduled = false
    if (this.items.length === 0) return
    const { items, transfer } = this
    this.items = []
    this.transfer = []
    try {
      this.send(items, transfer)
    } catch (error) {
      this.failed(items, error instanceof Error ? error : new Error(String(error)))
    }
  }
}
