/**
 * One pool of worker threads, used by both stages (worker-pool.ts: inference, one batch per
 * worker at a time; preprocess-pool.ts: decoding, any number of tasks per worker). It owns what
 * the stages share: starting workers (optionally waiting for a start-up report), matching replies
 * to tasks by id, crashes, replacement and closing.
 *
 * Faults: a worker that dies (uncaught exception, process.exit, native abort reported as an exit)
 * is detected by its 'exit' event; every task it held is rejected with WorkerCrashError at once,
 * so no request hangs, and a replacement is started — immediately after an isolated crash, with a
 * growing delay when crashes repeat (restart-backoff.ts) — which serves once it has reported
 * ready. close() lets the tasks in progress finish, then terminates every worker; both waits are
 * bounded (close-grace.ts).
 */
import { Worker } from 'node:worker_threads'
import { terminateAll, withGrace } from './close-grace.js'
import { MessageBatch } from './message-batch.js'
import { RestartBackoff } from './restart-backoff.js'

/** A worker died while holding a task; the task's requests fail with this. */
export class WorkerCrashError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'WorkerCrashError'
  }
}

export type Stage = 'inference' | 'preprocessing'

export interface WorkerExitInfo {
  /** Which stage the worker belonged to. */
  stage: Stage
  threadId: number
  reason: string
  /** Whether a replacement is being started (false while the pool closes). */
  replacing: boolean
}

/** What the pool needs to know of a task: its id, which its reply carries back. */
export interface PoolTask {
  id: number
}

export interface ThreadPoolOptions<Task extends PoolTask, Report> {
  stage: Stage
  size: number
  filename: string
  workerData: unknown
  /**
   * The worker's start-up report, if `message` is one. Given: a worker serves only once it has
   * sent one (start() waits for every worker's). Absent: a worker serves at once.
   */
  readReport?: (message: unknown) => Report | undefined
  /**
   * Tasks posted within one event-loop turn go to a worker as one message, built by this
   * (message-batch.ts); absent, each task is its own message.
   */
  batchMessage?: (tasks: Task[]) => unknown
  /** A worker died after start-up (its tasks have been rejected); for logging and metrics. */
  onWorkerExit?: (info: WorkerExitInfo) => void
  /** A replacement worker is ready: more tasks can run. */
  onCapacity?: () => void
}

interface Pending<Reply> {
  resolve: (reply: Reply) => void
  reject: (error: Error) => void
}

/** One worker of the pool and the tasks it holds. */
export interface Slot {
  readonly worker: Worker
  readonly threadId: number
  /** Tasks in progress, by id. */
  readonly tasks: ReadonlyMap<number, unknown>
}

interface MutableSlot<Task, Reply> extends Slot {
  readonly tasks: Map<number, Pending<Reply>>
  outbox: MessageBatch<Task> | undefined
  /** The last 'error' event, named when the worker exits. */
  error: Error | undefined
}

let nextTaskId = 1

/** A fresh task id, unique in the process. */
export function taskId(): number {
  return nextTaskId++
}

export class ThreadPool<Task extends PoolTask, Reply extends PoolTask, Report = undefined> {
  private readonly slots = new Set<MutableSlot<Task, Reply>>()
  private readonly restarts = new RestartBackoff()
  private closing = false
  private closed: Promise<void> | undefined
  private drained: (() => void) | undefined

  private constructor(private readonly options: ThreadPoolOptions<Task, Report>) {}

  /**
   * Starts `size` workers and waits for every start-up report (none to wait for without
   * readReport). Rejects, with every worker terminated, if one dies first.
   */
  static async start<Task extends PoolTask, Reply extends PoolTask, Report = undefined>(
    options: ThreadPoolOptions<Task, Report>,
  ): Promise<{ pool: ThreadPool<Task, Reply, Report>; reports: Report[] }> {
    const pool = new ThreadPool<Task, Reply, Report>(options)
    const started = Array.from({ length: Math.max(1, options.size) }, () => pool.spawn())
    const results = await Promise.allSettled(started.map((s) => s.ready))
    const failure = results.find((r) => r.status === 'rejected')
    if (failure) {
      await Promise.all(started.map((s) => s.slot.worker.terminate()))
      const why = failure.reason instanceof Error ? failure.reason.message : String(failure.reason)
      throw new Error(`${options.stage} workers failed to start: ${why}`, { cause: failure.reason })
    }
    for (const { slot } of started) pool.adopt(slot)
    const reports = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined)) as Report[]
    return { pool, reports }
  }

  /** Starts `size` workers that need no start-up report (options without readReport), at once. */
  static open<Task extends PoolTask, Reply extends PoolTask>(
    options: Omit<ThreadPoolOptions<Task, undefined>, 'readReport'>,
  ): ThreadPool<Task, Reply> {
    const pool = new ThreadPool<Task, Reply>(options)
    for (let i = 0; i < Math.max(1, options.size); i++) pool.adopt(pool.spawn().slot)
    return pool
  }

  /** Creates a worker; `ready` resolves with its start-up report, or rejects if it dies first. */
  private spawn(): { slot: MutableSlot<Task, Reply>; ready: Promise<Report | undefined> } {
    const { readReport, batchMessage } = this.options
    const worker = new Worker(this.options.filename, { workerData: this.options.workerData })
    const slot: MutableSlot<Task, Reply> = {
      worker,
      threadId: worker.threadId,
      tasks: new Map(),
      outbox: undefined,
      error: undefined,
    }
    if (batchMessage) {
      slot.outbox = new MessageBatch<Task>(
        (tasks, transfer) => {
          worker.postMessage(batchMessage(tasks), transfer)
        },
        (tasks, error) => {
          for (const task of tasks) this.settle(slot, task.id)?.reject(error)
        },
      )
    }
    // An 'error' listener keeps an uncaught exception in a worker from crashing the process; the
    // worker is gone either way and 'exit' follows.
    worker.on('error', (error: Error) => {
      slot.error = error
    })
    if (!readReport) return { slot, ready: Promise.resolve(undefined) }
    const ready = new Promise<Report>((resolve, reject) => {
      const onMessage = (message: unknown) => {
        const report = readReport(message)
        if (report === undefined) return
        cleanup()
        resolve(report)
      }
      const onExit = (code: number) => {
        cleanup()
        reject(slot.error ?? new Error(`worker exited with code ${code} while starting`))
      }
      const cleanup = () => {
        worker.off('message', onMessage)
        worker.off('exit', onExit)
      }
      worker.on('message', onMessage)
      worker.on('exit', onExit)
    })
    return { slot, ready }
  }

  /** Wires a started worker's replies and exit into the pool. */
  private adopt(slot: MutableSlot<Task, Reply>): void {
    this.slots.add(slot)
    slot.worker.on('message', (message: unknown) => {
      const replies: unknown[] = Array.isArray(message) ? message : [message]
      for (const reply of replies) {
        const id = (reply as Partial<PoolTask> | null)?.id
        if (typeof id === 'number') this.settle(slot, id)?.resolve(reply as Reply)
      }
    })
    slot.worker.on('exit', (code: number) => {
      this.onExit(slot, code)
    })
  }

  /** Removes task `id` from `slot` and returns its callbacks (undefined if it is not there). */
  private settle(slot: MutableSlot<Task, Reply>, id: number): Pending<Reply> | undefined {
    const pending = slot.tasks.get(id)
    if (!pending) return undefined
    slot.tasks.delete(id)
    // After the caller has been answered, so a drain waits for the last reply's handling.
    queueMicrotask(() => {
      this.checkDrained()
    })
    return pending
  }

  private onExit(slot: MutableSlot<Task, Reply>, code: number): void {
    this.slots.delete(slot)
    const reason = slot.error ? slot.error.message : `exit code ${code}`
    const { stage } = this.options
    for (const pending of slot.tasks.values()) {
      pending.reject(new WorkerCrashError(`${stage} worker ${slot.threadId} died: ${reason}`))
    }
    slot.tasks.clear()
    this.checkDrained()
    if (this.closing) return
    this.options.onWorkerExit?.({ stage, threadId: slot.threadId, reason, replacing: true })
    this.restarts.schedule(() => {
      this.replace()
    })
  }

  private replace(): void {
    if (this.closing) return
    const { slot, ready } = this.spawn()
    ready.then(
      () => {
        if (this.closing) {
          void slot.worker.terminate()
          return
        }
        this.adopt(slot)
        this.options.onCapacity?.()
      },
      (error: unknown) => {
        // The replacement died while starting: count it as another crash and try again later.
        slot.error = error instanceof Error ? error : new Error(String(error))
        this.onExit(slot, -1)
      },
    )
  }

  /** Workers started and serving. */
  get size(): number {
    return this.slots.size
  }

  /** Workers holding no task. */
  get idle(): number {
    let idle = 0
    for (const slot of this.slots) if (slot.tasks.size === 0) idle++
    return idle
  }

  /** Tasks in progress over all workers. */
  get pending(): number {
    let total = 0
    for (const slot of this.slots) total += slot.tasks.size
    return total
  }

  get isClosing(): boolean {
    return this.closing
  }

  /** The serving workers, for a stage's choice of where a task goes. */
  workers(): Iterable<Slot> {
    return this.slots
  }

  /**
   * Sends `task` to `slot` (one of workers()); `transfer` lists buffers to move rather than copy
   * (the caller gives them up). Resolves with the reply carrying the task's id; rejects with
   * WorkerCrashError if the worker dies first.
   */
  post(slot: Slot, task: Task, transfer: readonly ArrayBuffer[] = []): Promise<Reply> {
    const mine = slot as MutableSlot<Task, Reply>
    if (this.closing) return Promise.reject(new Error(`the ${this.options.stage} pool is closing`))
    if (!this.slots.has(mine)) return Promise.reject(new Error(`that ${this.options.stage} worker is gone`))
    return new Promise<Reply>((resolve, reject) => {
      mine.tasks.set(task.id, { resolve, reject })
      if (mine.outbox) {
        mine.outbox.push(task, transfer)
        return
      }
      try {
        mine.worker.postMessage(task, [...transfer])
      } catch (error) {
        mine.tasks.delete(task.id)
        reject(error instanceof Error ? error : new Error(String(error)))
      }
    })
  }

  /** Sends a control message to `slot` after the tasks already posted to it this turn. */
  control(slot: Slot, message: unknown): void {
    const mine = slot as MutableSlot<Task, Reply>
    mine.outbox?.flush()
    mine.worker.postMessage(message)
  }

  private checkDrained(): void {
    if (this.drained && this.pending === 0) this.drained()
  }

  /** Refuses new tasks, waits for those in progress, then terminates every worker; both waits bounded. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.shutDown()
    return this.closed
  }

  private async shutDown(): Promise<void> {
    this.closing = true
    this.restarts.cancel()
    if (this.pending > 0) {
      await withGrace(
        new Promise<void>((resolve) => {
          this.drained = resolve
        }),
      )
    }
    await terminateAll([...this.slots].map((slot) => slot.worker))
  }
}
