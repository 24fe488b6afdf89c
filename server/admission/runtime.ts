/**
 * The runtime's refusals (admit.ts stages `lookup`, `session`, `queue` and `waiting`): a run by
 * model name with no zoo loaded, an unknown model or one not ready; a model being unloaded or
 * without a session; a queue that would pass MAX_QUEUE_SIZE (OVERLOADED 503, with a
 * Retry-After estimate of the time to drain the backlog); a deadline that even a run at once and
 * alone would miss (DEADLINE_EXCEEDED 504), asked before any work and again when the request is
 * queued; and a queued request whose deadline can no longer be met (504), asked at every dispatch.
 */
import { ApiError } from '../errors.js'
import type { ModelState } from '../runtime/model-queue.js'
import { backlogMs, type Load } from '../runtime/prediction.js'
import type { SchedulerSettings } from '../runtime/scheduling.js'
import type { ModelEntry } from '../zoo/model-entry.js'

export interface QueueRequest {
  rows: number
  /** On the main thread's performance.now() clock, ms. */
  deadline: number
  now: number
  /** Work the request still needs before it can be queued (its preprocessing), ms. */
  beforeMs: number
  /** Rows bound for this model but not queued yet (being preprocessed). */
  aheadRows: number
}

/**
 * A lookup by name in the served zoo: none loaded yet (503 NOT_READY); with `name`, no model of
 * that name (404) or one that is not ready (503 MODEL_NOT_READY, with the reason).
 */
export function lookupRefusal(
  zooLoaded: boolean,
  name: string | undefined,
  entry: ModelEntry | undefined,
): ApiError | undefined {
  if (!zooLoaded) return new ApiError('NOT_READY', 'no zoo is loaded yet')
  if (name === undefined) return undefined
  if (!entry) return new ApiError('MODEL_NOT_FOUND', `no model named "${name}"`, { model: name })
  if (entry.ready) return undefined
  const reason = entry.reason ?? 'unknown reason'
  return new ApiError('MODEL_NOT_READY', `model ${name} is not ready: ${reason}`, { model: name, reason })
}

export function sessionRefusal(model: string, closing: boolean, loaded: boolean): ApiError | undefined {
  if (closing) return new ApiError('MODEL_NOT_READY', `model ${model} is being unloaded`)
  if (!loaded) return new ApiError('MODEL_NOT_READY', `model ${model} has no session`)
  return undefined
}

export function queueRefusal(
  load: Load,
  state: ModelState,
  request: QueueRequest,
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
  return deadlineRefusal(state.name, deadline, now, beforeMs + load.handoffMs + state.latency.runMs(rows))
}

/** DEADLINE_EXCEEDED when work of `neededMs` started `now` would finish after `deadline`. */
export function deadlineRefusal(
  model: string,
  deadline: number,
  now: number,
  neededMs: number,
): ApiError | undefined {
  if (now + neededMs <= deadline) return undefined
  const leftMs = Math.max(0, deadline - now)
  return new ApiError(
    'DEADLINE_EXCEEDED',
    `model ${model} cannot answer within the request's deadline: ${leftMs.toFixed(1)} ms left, a run needs ≈${neededMs.toFixed(1)} ms`,
    { model, remainingMs: Math.round(leftMs * 1000) / 1000, neededMs: Math.round(neededMs * 1000) / 1000 },
  )
}
