/**
 * The inference stage's workers (one zoo generation): a thread pool (thread-pool.ts) whose
 * workers each hold a session per model and run at most one batch at a time. The pool says how
 * many workers are idle, so the scheduler above it decides what runs next (and batches what
 * waits) instead of a second, opaque queue in here. A worker serves once it has loaded and warmed
 * every model; a replacement after a crash, too.
 */
import { fileURLToPath } from 'node:url'
import { ThreadPool, taskId, type WorkerExitInfo } from './thread-pool.js'
import {
  BATCH_TASK,
  isInitReport,
  type BatchReply,
  type BatchTask,
  type WorkerInit,
  type WorkerModelSpec,
  type WorkerModelStatus,
} from './worker-protocol.js'

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

export class WorkerPool {
  private constructor(
    private readonly pool: ThreadPool<BatchTask, BatchReply, WorkerModelStatus[]>,
    readonly statuses: ReadonlyMap<string, WorkerModelStatus>,
  ) {}

  /** Starts `size` workers and waits until each has loaded (or failed) every model. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const { pool, reports } = await ThreadPool.start<BatchTask, BatchReply, WorkerModelStatus[]>({
      stage: 'inference',
      size: options.size,
      filename: workerFilename(),
      workerData: options.init,
      readReport: (message) => (isInitReport(message) ? message.models : undefined),
      ...(options.onWorkerExit && { onWorkerExit: options.onWorkerExit }),
      ...(options.onCapacity && { onCapacity: options.onCapacity }),
    })
    return new WorkerPool(pool, mergeStatuses(options.init.models, reports))
  }

  /** Workers loaded and serving. */
  get size(): number {
    return this.pool.size
  }

  /** Workers with no batch running. */
  get idle(): number {
    return this.pool.idle
  }

  /**
   * Runs one batch on an idle worker. `transfer` lists the input buffers to move rather than copy
   * (the caller must not touch them afterwards). Rejects with WorkerCrashError if the worker dies.
   */
  execute(task: Omit<BatchTask, 'kind' | 'id'>, transfer: ArrayBuffer[] = []): Promise<BatchReply> {
    if (this.pool.isClosing) return Promise.reject(new Error('the worker pool is closing'))
    for (const slot of this.pool.workers()) {
      if (slot.tasks.size === 0)
        return this.pool.post(slot, { ...task, kind: BATCH_TASK, id: taskId() }, transfer)
    }
    return Promise.reject(new Error('no idle inference worker'))
  }

  /** Refuses new batches, waits for the running ones, then terminates every worker; both waits bounded. Idempotent. */
  close(): Promise<void> {
    return this.pool.close()
  }
}
