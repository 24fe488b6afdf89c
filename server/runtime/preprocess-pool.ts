/**
 * The preprocessing stage: worker threads that turn encoded images into input tensors
 * ahead of the inference workers, so decoding one request overlaps with running the batch before
 * it instead of adding to it. A task goes to the worker with the fewest tasks in progress; every
 * worker takes any number at once (their decodes overlap on libuv's pool).
 *
 * Faults: a worker that dies fails every task it held with WorkerCrashError at once and is
 * replaced (immediately after an isolated crash, with a growing delay when crashes repeat).
 */
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { InputContract } from '../preprocess/pixels-to-tensor.js'
import { terminateAll, withGrace } from './close-grace.js'
import { RestartBackoff } from './restart-backoff.js'
import { WorkerCrashError, type WorkerExitInfo } from './worker-pool.js'
import { MessageBatch } from './message-batch.js'
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

interface PendingTask {
  resolve: (reply: PrepareReply) => void
  reject: (error: Error) => void
}

interface Slot {
  worker: Worker
  threadId: number
  pending: Map<number, PendingTask>
  /** Tasks posted this turn, sent together (message-batch.ts). */
  outbox: MessageBatch<PrepareTask>
  error: Error | undefined
}

export interface PreprocessPoolOptions {
  size: number
  /** Test-only: let crashOne() kill a worker. */
  faultInjection?: boolean
  /** A worker died (its tasks have been rejected); for logging. */
  onWorkerExit?: (info: WorkerExitInfo) => void
}

let nextId = 1

export class PreprocessPool {
  private readonly slots = new Set<Slot>()
  private readonly restarts = new RestartBackoff()
  private closing = false
  private drained: (() => void) | undefined

  constructor(private readonly options: PreprocessPoolOptions) {
    for (let i = 0; i < Math.max(1, options.size); i++) this.spawn()
  }

  private spawn(): void {
    const worker = new Worker(workerFilename(), {
      workerData: {
        faultInjection: this.options.faultInjection ?? false,
      },
    })
    const pending = new Map<number, PendingTask>()
    const outbox = new MessageBatch<PrepareTask>(
      (tasks, transfer) => {
        worker.postMessage({ kind: PREPARE_BATCH, tasks } satisfies PrepareBatch, transfer)
      },
      (tasks, error) => {
        for (const task of tasks) {
          pending.get(task.id)?.reject(error)
          pending.delete(task.id)
        }
        this.checkDrained()
      },
    )
    const slot: Slot = { worker, threadId: worker.threadId, pending, outbox, error: undefined }
    this.slots.add(slot)
    worker.on('message', (replies: PrepareReply[]) => {
      for (const reply of replies) {
        const task = pending.get(reply.id)
        if (!task) continue
        pending.delete(reply.id)
        task.resolve(reply)
      }
      this.checkDrained()
    })
    worker.on('error', (error: Error) => {
      slot.error = error
    })
    worker.on('exit', (code: number) => {
      this.onExit(slot, code)
    })
  }

  private onExit(slot: Slot, code: number): void {
    this.slots.delete(slot)
    const reason = slot.error ? slot.error.message : `exit code ${code}`
    for (const task of slot.pending.values()) {
      task.reject(new WorkerCrashError(`preprocessing worker ${slot.threadId} died: ${reason}`))
    }
    slot.pending.clear()
    this.checkDrained()
    if (this.closing) return
    this.options.onWorkerExit?.({ stage: 'preprocessing', threadId: slot.threadId, reason, replacing: true })
    this.restarts.schedule(() => {
      if (!this.closing) this.spawn()
    })
  }

  /** Tasks in progress over all workers. */
  get pending(): number {
    let total = 0
    for (const slot of this.slots) total += slot.pending.size
    return total
  }

  /** Workers alive now. */
  get size(): number {
    return this.slots.size
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
    if (this.closing) return Promise.reject(new Error('the preprocessing pool is closing'))
    let chosen: Slot | undefined
    for (const slot of this.slots) {
      if (!chosen || slot.pending.size < chosen.pending.size) chosen = slot
    }
    if (!chosen)
      return Promise.reject(new Error('no preprocessing worker is running (restarting after a crash)'))
    const slot = chosen
    const id = nextId++
    const cancel = (): void => {
      if (!slot.pending.has(id)) return
      // The task may still be in this turn's outbox: send it first, so the cancel finds it.
      slot.outbox.flush()
      slot.worker.postMessage({ kind: CANCEL_TASK, id } satisfies CancelTask)
    }
    signal?.addEventListener('abort', cancel, { once: true })
    const settled = (): void => signal?.removeEventListener('abort', cancel)
    return new Promise<PrepareReply>((resolve, reject) => {
      slot.pending.set(id, {
        resolve: (reply) => {
          settled()
          resolve(reply)
        },
        reject: (error) => {
          settled()
          reject(error)
        },
      })
      slot.outbox.push({ kind: PREPARE_TASK, id, contract, item, deadline }, transfer)
    })
  }

  private checkDrained(): void {
    if (this.drained && this.pending === 0) this.drained()
  }

  /** Waits for the tasks in progress, then terminates the workers; both waits are bounded (close-grace.ts). */
  async close(): Promise<void> {
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

  /** Test-only (needs faultInjection): one worker throws an uncaught exception and dies. */
  crashOne(): void {
    const slot = [...this.slots][0]
    slot?.worker.postMessage({ kind: CRASH_TASK })
  }
}
