/**
 * The inference workers of one zoo generation: a fixed number of worker_threads, each holding a
 * session per model. The pool runs at most one batch per worker at a time and says how many
 * workers are idle, so the scheduler above it decides what runs next (and batches what waits)
 * instead of a second, opaque queue in here.
 *
 * Faults: a worker that dies (uncaught exception, process.exit, native abort reported as an exit)
 * is detected by its 'exit' event; the batch it was running is rejected with WorkerCrashError at
 * once, so no request hangs, and a replacement is started — immediately after an isolated crash,
 * with a growing delay when crashes repeat — which serves again as soon as it has loaded and
 * warmed its sessions. close() lets running batches finish, then terminates every worker.
 */
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { terminateAll, withGrace } from './close-grace.js'
import { RestartBackoff } from './restart-backoff.js'
import {
  BATCH_TASK,
  isInitReport,
  type BatchReply,
  type BatchTask,
  type WorkerInit,
  type WorkerModelSpec,
  type WorkerModelStatus,
} from './worker-protocol.js'

/** A worker died while running a batch; the batch's requests fail with this. */
export class WorkerCrashError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'WorkerCrashError'
  }
}

export interface WorkerExitInfo {
  /** Which stage the worker belonged to. */
  stage: 'inference' | 'preprocessing'
  threadId: number
  reason: string
  /** Whether a replacement is being started (false while the pool closes). */
  replacing: boolean
}

export interface WorkerPoolOptions {
  size: number
  init: WorkerInit
  /** A worker died after start-up (its batch has been rejected); for logging and metrics. */
  onWorkerExit?: (info: WorkerExitInfo) => void
  /** A replacement worker finished loading: more batches can run. */
  onCapacity?: () => void
}

const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts')

/** worker.js once built; from source (tsx), a shim that registers tsx in the worker first. */
function workerFilename(): string {
  return fileURLToPath(
    new URL(RUNNING_FROM_SOURCE ? './worker-from-source.mjs' : './worker.js', import.meta.url),
  )
}

/** Combines the workers' reports: a model serves only if every worker holds a session for it. */
export function mergeStatuses(
  models: readonly WorkerModelSpec[],
  reports: readonly WorkerModelStatus[][],
): Map<string, WorkerModelStatus> {
  const merged = new Map<string, WorkerModelStatus>()
  for (const spec of models) {
    const mine = reports.map((report) => report.find((s) => s.name === spec.name))
    const failed = mine.find((s) => !s?.ready)
    if (failed || mine.length === 0) {
      merged.set(spec.name, {
        name: spec.name,
        ready: false,
        reason: failed?.reason ?? 'no worker reported it',
      })
      continue
    }
    const cpu = mine.find((s) => s?.executionProvider === 'cpu')
    const status: WorkerModelStatus = {
      name: spec.name,
      ready: true,
      executionProvider: cpu ? 'cpu' : 'cuda',
      maxBatch: Math.min(...mine.map((s) => s?.maxBatch ?? 1)),
    }
    const seeds = mine.map((s) => s?.preprocessMs).filter((v) => v !== undefined)
    if (seeds.length > 0) status.preprocessMs = Math.min(...seeds)
    const fallback = mine.find((s) => s?.fallbackReason !== undefined)?.fallbackReason
    if (fallback !== undefined) status.fallbackReason = fallback
    merged.set(spec.name, status)
  }
  return merged
}

interface RunningTask {
  id: number
  resolve: (reply: BatchReply) => void
  reject: (error: Error) => void
}

interface Slot {
  worker: Worker
  threadId: number
  ready: boolean
  task: RunningTask | undefined
  /** The last 'error' event, named when the worker exits. */
  error: Error | undefined
}

let nextTaskId = 1

export class WorkerPool {
  readonly statuses: ReadonlyMap<string, WorkerModelStatus>
  private readonly slots = new Set<Slot>()
  private readonly restarts = new RestartBackoff()
  private closing = false
  private closed: Promise<void> | undefined
  private drained: (() => void) | undefined

  private constructor(
    private readonly options: WorkerPoolOptions,
    slots: Slot[],
    reports: WorkerModelStatus[][],
  ) {
    for (const slot of slots) this.adopt(slot)
    this.statuses = mergeStatuses(options.init.models, reports)
  }

  /** Starts `size` workers and waits until each has loaded (or failed) every model. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const started = Array.from({ length: options.size }, () => WorkerPool.spawn(options.init))
    const results = await Promise.allSettled(started.map((s) => s.ready))
    const failure = results.find((r) => r.status === 'rejected')
    if (failure) {
      await Promise.all(started.map((s) => s.slot.worker.terminate()))
      const why = failure.reason instanceof Error ? failure.reason.message : String(failure.reason)
      throw new Error(`inference workers failed to start: ${why}`, { cause: failure.reason })
    }
    const reports = results.map((r) => (r.status === 'fulfilled' ? r.value : []))
    return new WorkerPool(
      options,
      started.map((s) => s.slot),
      reports,
    )
  }

  /** Creates a worker; `ready` resolves with its init report, or rejects if it dies first. */
  private static spawn(init: WorkerInit): { slot: Slot; ready: Promise<WorkerModelStatus[]> } {
    const worker = new Worker(workerFilename(), { workerData: init })
    const slot: Slot = { worker, threadId: worker.threadId, ready: false, task: undefined, error: undefined }
    const ready = new Promise<WorkerModelStatus[]>((resolve, reject) => {
      const onMessage = (message: unknown) => {
        if (!isInitReport(message)) return
        slot.ready = true
        cleanup()
        resolve(message.models)
      }
      const onError = (error: Error) => {
        slot.error = error
      }
      const onExit = (code: number) => {
        cleanup()
        reject(slot.error ?? new Error(`worker exited with code ${code} while loading its models`))
      }
      const cleanup = () => {
        worker.off('message', onMessage)
        worker.off('exit', onExit)
      }
      worker.on('message', onMessage)
      worker.on('error', onError)
      worker.on('exit', onExit)
    })
    return { slot, ready }
  }

  /** Wires a started worker's replies and exit into the pool. */
  private adopt(slot: Slot): void {
    this.slots.add(slot)
    slot.worker.on('message', (message: unknown) => {
      const reply = message as BatchReply
      const task = slot.task
      if (!task || typeof reply.id !== 'number' || reply.id !== task.id) return
      slot.task = undefined
      task.resolve(reply)
      this.checkDrained()
    })
    // An 'error' listener keeps an uncaught exception in a worker from crashing the process; the
    // worker is gone either way and 'exit' follows.
    slot.worker.on('error', (error: Error) => {
      slot.error = error
    })
    slot.worker.on('exit', (code: number) => {
      this.onExit(slot, code)
    })
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot)
    const reason = slot.error ? slot.error.message : `exit code ${code}`
    const task = slot.task
    slot.task = undefined
    if (task) task.reject(new WorkerCrashError(`inference worker ${slot.threadId} died: ${reason}`))
    this.checkDrained()
    if (this.closing) return
    this.options.onWorkerExit?.({ stage: 'inference', threadId: slot.threadId, reason, replacing: true })
    this.restarts.schedule(() => {
      this.replace()
    })
  }

  private replace(): void {
    if (this.closing) return
    const { slot, ready } = WorkerPool.spawn(this.options.init)
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
        // The replacement died while loading: count it as another crash and try again later.
        slot.error = error instanceof Error ? error : new Error(String(error))
        this.onExit(slot, -1)
      },
    )
  }

  /** Workers loaded and serving. */
  get size(): number {
    return this.slots.size
  }

  /** Workers with no batch running. */
  get idle(): number {
    let idle = 0
    for (const slot of this.slots) if (!slot.task) idle++
    return idle
  }

  get isClosing(): boolean {
    return this.closing
  }

  /**
   * Runs one batch on an idle worker. `transfer` lists the input buffers to move rather than copy
   * (the caller must not touch them afterwards). Rejects with WorkerCrashError if the worker dies.
   */
  execute(task: Omit<BatchTask, 'kind' | 'id'>, transfer: ArrayBuffer[] = []): Promise<BatchReply> {
    if (this.closing) return Promise.reject(new Error('the worker pool is closing'))
    let slot: Slot | undefined
    for (const candidate of this.slots) {
      if (!candidate.task) {
        slot = candidate
        break
      }
    }
    if (!slot) return Promise.reject(new Error('no idle inference worker'))
    const id = nextTaskId++
    const chosen = slot
    return new Promise<BatchReply>((resolve, reject) => {
      chosen.task = { id, resolve, reject }
      try {
        chosen.worker.postMessage({ ...task, kind: BATCH_TASK, id } satisfies BatchTask, transfer)
      } catch (error) {
        chosen.task = undefined
        reject(error instanceof Error ? error : new Error(String(error)))
      }
    })
  }

  private checkDrained(): void {
    if (this.drained && this.idle === this.slots.size) this.drained()
  }

  /** Refuses new batches, waits for the running ones, then terminates every worker; both waits bounded. Idempotent. */
  close(): Promise<void> {
    this.closed ??= this.shutDown()
    return this.closed
  }

  private async shutDown(): Promise<void> {
    this.closing = true
    this.restarts.cancel()
    if (this.idle < this.slots.size) {
      await withGrace(
        new Promise<void>((resolve) => {
          this.drained = resolve
        }),
      )
    }
    await terminateAll([...this.slots].map((slot) => slot.worker))
  }
}
