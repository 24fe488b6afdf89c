/**
 * The preprocessing stage: a thread pool (thread-pool.ts) whose workers turn encoded images into
 * input tensors ahead of the inference workers, so decoding one request overlaps with running the
 * batch before it instead of adding to it. A task goes to the worker with the fewest tasks in
 * progress; every worker takes any number at once (their decodes overlap on libuv's pool). Crashes,
 * replacement and closing are the pool's.
 */
import { fileURLToPath } from 'node:url'
import type { InputContract } from '../preprocess/pixels-to-tensor.js'
import { ThreadPool, taskId, type Slot, type WorkerExitInfo } from './thread-pool.js'
import {
  CANCEL_TASK,
  CRASH_TASK,
  PREPARE_BATCH,
  PREPARE_TASK,
  type CancelTask,
  type PrepareBatch,
  type ImageItem,
  type PrepareReply,
  type PrepareTask,
} from './worker-protocol.js'

const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts')

function workerFilename(): string {
  return fileURLToPath(
    new URL(
      RUNNING_FROM_SOURCE ? './preprocess-worker-from-source.mjs' : './preprocess-worker.js',
      import.meta.url,
    ),
  )
}

export interface PreprocessPoolOptions {
  size: number
  /** Test-only: let crashOne() kill a worker. */
  faultInjection?: boolean
  /** A worker died (its tasks have been rejected); for logging. */
  onWorkerExit?: (info: WorkerExitInfo) => void
}

export class PreprocessPool {
  private readonly pool: ThreadPool<PrepareTask, PrepareReply>

  constructor(options: PreprocessPoolOptions) {
    this.pool = ThreadPool.open<PrepareTask, PrepareReply>({
      stage: 'preprocessing',
      size: options.size,
      filename: workerFilename(),
      workerData: { faultInjection: options.faultInjection ?? false },
      // Many images per turn under load: one message for all of them (message-batch.ts).
      batchMessage: (tasks) => ({ kind: PREPARE_BATCH, tasks }) satisfies PrepareBatch,
      ...(options.onWorkerExit && { onWorkerExit: options.onWorkerExit }),
    })
  }

  /** Tasks in progress over all workers. */
  get pending(): number {
    return this.pool.pending
  }

  /** Workers alive now. */
  get size(): number {
    return this.pool.size
  }

  /**
   * Turns `item` into a tensor per `contract`, unless `deadline` (epoch ms) passes first or
   * `signal` aborts (the client has gone: the worker drops the image if it has not decoded it
   * yet). `transfer` lists buffers to move (the caller gives them up). Resolves with the worker's
   * reply (a tensor or the image's coded error); rejects with WorkerCrashError if the worker
   * dies, or an Error if no worker is alive.
   */
  prepare(
    contract: InputContract,
    item: ImageItem,
    deadline: number,
    transfer: ArrayBuffer[] = [],
    signal?: AbortSignal,
  ): Promise<PrepareReply> {
    if (this.pool.isClosing) return Promise.reject(new Error('the preprocessing pool is closing'))
    let chosen: Slot | undefined
    for (const slot of this.pool.workers()) {
      if (!chosen || slot.tasks.size < chosen.tasks.size) chosen = slot
    }
    if (!chosen)
      return Promise.reject(new Error('no preprocessing worker is running (restarting after a crash)'))
    const slot = chosen
    const id = taskId()
    const cancel = (): void => {
      // Sent after the task itself, which may still be in this turn's batch, so the worker finds it.
      if (slot.tasks.has(id)) this.pool.control(slot, { kind: CANCEL_TASK, id } satisfies CancelTask)
    }
    signal?.addEventListener('abort', cancel, { once: true })
    const reply = this.pool.post(slot, { kind: PREPARE_TASK, id, contract, item, deadline }, transfer)
    if (!signal) return reply
    return reply.finally(() => {
      signal.removeEventListener('abort', cancel)
    })
  }

  /** Waits for the tasks in progress, then terminates the workers; both waits are bounded (close-grace.ts). */
  close(): Promise<void> {
    return this.pool.close()
  }

  /** Test-only (needs faultInjection): one worker throws an uncaught exception and dies. */
  crashOne(): void {
    const [slot] = this.pool.workers()
    if (slot) this.pool.control(slot, { kind: CRASH_TASK })
  }
}
