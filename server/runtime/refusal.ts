/**
 * The runtime's admission rule for one request, checked before any work and again when it is
 * queued: refused with OVERLOADED (503, with a Retry-After estimate of the time to drain the
 * backlog) when its model's queue — counting rows still being preprocessed for it — would pass
 * MAX_QUEUE_SIZE, and with DEADLINE_EXCEEDED (504) when even run at once and alone it would finish
 * after its deadline.
 */
import { ApiError } from '../errors.js'
import type { ModelState } from './model-queue.js'
import { backlogMs, type Load } from './prediction.js'
import type { SchedulerSettings } from './scheduling.js'

export interface AdmissionRequest {
  rows: number
  /** On the main thread's performance.now() clock, ms. */
  deadline: number
  now: number
  /** Work the request still needs before it can be queued (its preprocessing), ms. */
  beforeMs: number
  /** Rows bound for this model but not queued yet (being preprocessed). */
  aheadRows: number
}

export function refusal(
  load: Load,
  state: ModelState,
  request: AdmissionRequest,
  settings: SchedulerSettings,
): ApiError | undefined {
  const { rows, deadline, now, beforeMs, aheadRows } = request
  const queued = state.queuedRows + aheadRows
  if (queued > 0 && queued + rows > settings.maxQueueSize) {
    const aheadMs = aheadRows > 0 ? state.latency.runMs(aheadRows) : 0
    const drainMs = (backlogMs(load, now) + aheadMs) / Math.max(1, load.workers)
    return new ApiError(
      'OVERLOADED',
      `model ${state.name} has ${queued} rows queued or being preprocessed (MAX_QUEUE_SIZE ${settings.maxQueueSize}); retry later`,
      { model: state.name, retryAfterS: Math.max(1, Math.ceil(drainMs / 1000)) },
    )
  }
  const needed = beforeMs + load.handoffMs + state.latency.runMs(rows)
  if (now + needed > deadline) return deadlineError(state.name, deadline, now, needed)
  return undefined
}

export function deadlineError(model: string, deadline: number, now: number, neededMs: number): ApiError {
  const leftMs = Math.max(0, deadline - now)
  return new ApiError(
    'DEADLINE_EXCEEDED',
    `model ${model} cannot answer within the request's deadline: ${leftMs.toFixed(1)} ms left, a run needs ≈${neededMs.toFixed(1)} ms`,
    { model, remainingMs: Math.round(leftMs * 1000) / 1000, neededMs: Math.round(neededMs * 1000) / 1000 },
  )
}
