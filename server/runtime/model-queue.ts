/**
 * One model's queue in the scheduler: the requests waiting for that model, ordered by deadline
 * (earliest first, arrival order among equals), with the rows they hold and the requests of the
 * model running now.
 */
import { ApiError } from '../errors.js'
import type { ScheduledModel } from './scheduling.js'
import type { InferenceResult } from './types.js'
import type { BatchItem, BatchReply } from './worker-protocol.js'

/** One request waiting in a model's queue. */
export interface Job {
  item: BatchItem
  rows: number
  deadline: number
  enqueuedAt: number
  submittedAt: number
  transfer: ArrayBuffer[]
  resolve: (result: InferenceResult) => void
  reject: (error: Error) => void
  /** Detaches the job from its request's abort signal (once it leaves the queue). */
  detach: () => void
}

export interface ModelState extends ScheduledModel {
  queue: Job[]
  queuedRows: number
  inFlight: number
}

export function modelState(model: ScheduledModel, maxBatchSize: number): ModelState {
  return {
    ...model,
    maxBatch: Math.max(1, Math.min(model.maxBatch, maxBatchSize)),
    queue: [],
    queuedRows: 0,
    inFlight: 0,
  }
}

/** Index at which a job with `deadline` goes to keep `queue` sorted (after equal deadlines). */
function insertionIndex(queue: readonly Job[], deadline: number): number {
  let lo = 0
  let hi = queue.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((queue[mid] as Job).deadline <= deadline) lo = mid + 1
    else hi = mid
  }
  return lo
}

export function enqueue(state: ModelState, job: Job): void {
  state.queue.splice(insertionIndex(state.queue, job.deadline), 0, job)
  state.queuedRows += job.rows
}

export function removeJob(state: ModelState, index: number): Job {
  const [job] = state.queue.splice(index, 1) as [Job]
  state.queuedRows -= job.rows
  job.detach()
  return job
}

/**
 * Takes the head requests of `state`'s queue as one batch, dispatched `now`: as many as fit in the
 * model's largest batch without making the batch finish (after `handoffMs` of round trip) after
 * the head's deadline. The head always goes.
 */
export function takeBatch(state: ModelState, now: number, handoffMs: number): Job[] {
  const head = state.queue[0]
  if (!head) return []
  let rows = 0
  let count = 0
  for (const job of state.queue) {
    const nextRows = rows + job.rows
    if (count > 0) {
      if (nextRows > state.maxBatch) break
      if (now + handoffMs + state.latency.runMs(nextRows) > head.deadline) break
    }
    rows = nextRows
    count++
  }
  const jobs: Job[] = []
  for (let i = 0; i < count; i++) jobs.push(removeJob(state, 0))
  return jobs
}

/** Worker time of `rows` queued rows cut into batches of the model's largest batch, ms. */
export function queueWorkMs(state: ModelState, rows: number): number {
  if (rows <= 0) return 0
  const full = Math.floor(rows / state.maxBatch)
  const rest = rows - full * state.maxBatch
  return full * state.latency.runMs(state.maxBatch) + (rest > 0 ? state.latency.runMs(rest) : 0)
}

/**
 * Answers each job of a batch from the worker's (successful) reply: its rows of the logits, or its
 * item's error. Returns the jobs' summed queue time, ms.
 */
export function answerJobs(
  state: ModelState,
  jobs: readonly Job[],
  reply: BatchReply & { ok: true },
): number {
  let queueSum = 0
  jobs.forEach((job, i) => {
    const placed = reply.items[i]
    const queueMs = Math.max(0, reply.startedAt - job.submittedAt)
    queueSum += queueMs
    if (!placed) {
      job.reject(new ApiError('INFERENCE_FAILED', `model ${state.name}: the worker skipped a request`))
    } else if ('error' in placed) {
      job.reject(rebuildError(placed.error))
    } else {
      const start = placed.offset * reply.classes
      job.resolve({
        logits: reply.logits.subarray(start, start + placed.rows * reply.classes),
        dims: [placed.rows, reply.classes],
        queueMs,
        inferenceMs: reply.inferenceMs,
        batchSize: reply.batchRows,
        preprocessMs: placed.preprocessMs ?? 0,
      })
      if (placed.preprocessMs !== undefined && placed.preprocessMs > 0) {
        state.latency.observePreprocess(placed.preprocessMs)
      }
    }
  })
  return queueSum
}

export function clientClosedError(model: string): ApiError {
  return new ApiError(
    'CLIENT_CLOSED',
    `the client closed the connection while its request for model ${model} was queued`,
    { model },
  )
}

/** An item error from a worker → the catalogue error it names (INFERENCE_FAILED if unknown). */
export function rebuildError(error: {
  code: string
  message: string
  details?: Record<string, unknown>
}): ApiError {
  try {
    return new ApiError(error.code as ApiError['code'], error.message, error.details ?? {})
  } catch {
    return new ApiError('INFERENCE_FAILED', error.message)
  }
}
