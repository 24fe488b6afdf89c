/**
 * Admission: every reason the server refuses a request, in one place. Each stage of the request
 * path asks `admit()` with what it knows at that moment; `admit()` answers the catalogue error to
 * refuse with, or undefined to go on. The rules live beside this file, one module each; no other
 * module builds a refusal.
 *
 * | stage (asked by) | reason | answer |
 * |---|---|---|
 * | `in-flight` (every HTTP request, plugins/security.ts; every gRPC call, `app.admission`) | MAX_IN_FLIGHT requests already in the server | 503 OVERLOADED, Retry-After 1 |
 * | `pressure` (the same two) | event-loop delay, V8 heap or RSS over its limit | 503 OVERLOADED, Retry-After 5 |
 * | `rate-limit` (HTTP, when RATE_LIMIT_MAX > 0) | more than RATE_LIMIT_MAX requests of one client in a window | 429 RATE_LIMITED, Retry-After |
 * | `selection` (selection/choose.ts, every route) | unknown model | 404 MODEL_NOT_FOUND |
 * | | the named model, or every model, not ready | 503 MODEL_NOT_READY / NOT_READY |
 * | | a budget met on an idle server but not under the current load | 503 OVERLOADED, Retry-After 1 |
 * | | the same, once the request has spent its whole maxLatencyMs waiting | 504 DEADLINE_EXCEEDED |
 * | | a budget no ready model meets even idle (onInfeasible=reject) | 422 BUDGET_INFEASIBLE |
 * | `lookup` (runtime/serving-zoo.ts: a run by model name, the default model) | no zoo loaded yet | 503 NOT_READY |
 * | | unknown model | 404 MODEL_NOT_FOUND |
 * | | the model not ready | 503 MODEL_NOT_READY |
 * | `session` (runtime/generation-runtime.ts, before any work) | the model's generation is being unloaded, or it has no session | 503 MODEL_NOT_READY |
 * | `queue` (runtime/scheduler.ts, before any work and again when queued) | its queue, counting images still being preprocessed for it, would pass MAX_QUEUE_SIZE | 503 OVERLOADED, Retry-After the drain time |
 * | | even run at once and alone it would finish after its deadline | 504 DEADLINE_EXCEEDED |
 * | `waiting` (runtime/scheduler.ts, at every dispatch and by a timer) | queued, it can no longer meet its deadline | 504 DEADLINE_EXCEEDED |
 *
 * A route has passed `selection` before `lookup`; a direct caller of `app.inference` by model
 * name (no selection) meets its 404 / 503 there.
 * Not admission: what is wrong with the request itself (400, 413, 415 — validation); a model that
 * fails while running (500, 503 once taken out of service — runtime/model-health.ts); a metadata
 * lookup of an unknown name (GET /models/{name}, GET /v2/models/{name}: 404); and the workers
 * keeping the deadline admission gave a request (preprocess/decode.ts and image-to-tensor.ts drop
 * an image whose deadline has passed or that cannot be decoded before it: 504).
 * A deadline is the request's maxLatencyMs when the chosen model was predicted to meet it, else
 * INFERENCE_TIMEOUT_MS; time already spent waiting is load, so it never turns a budget into 422.
 */
import { apiError, type ApiError } from '../errors.js'
import type { Servable } from '../cascade/candidates.js'
import type { ModelState } from '../runtime/model-queue.js'
import type { Load } from '../runtime/prediction.js'
import type { SchedulerSettings } from '../runtime/scheduling.js'
import type { SelectionOutcome, SelectionRequest } from '../selection/selector.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { deadlineRefusal, lookupRefusal, queueRefusal, sessionRefusal, type QueueRequest } from './runtime.js'
import { selectionRefusal } from './selection.js'

/** Retry-After on pressure shedding: pressure is re-measured every second; give it a few. */
export const PRESSURE_RETRY_AFTER_S = 5

export type AdmissionCheck =
  | { stage: 'in-flight'; inFlight: number; maxInFlight: number }
  /** `measured`: the value over its limit, when the caller knows which (`pressure` names it). */
  | { stage: 'pressure'; underPressure: boolean; pressure?: string; measured?: number | string }
  | { stage: 'rate-limit'; max: number; windowMs: number; retryAfterS: number }
  | { stage: 'selection'; outcome: SelectionOutcome<Servable>; request: SelectionRequest }
  /** `model` absent: only whether a zoo is loaded (the default model's lookup). */
  | { stage: 'lookup'; zooLoaded: boolean; model?: string; entry?: ModelEntry | undefined }
  | { stage: 'session'; model: string; closing: boolean; loaded: boolean }
  | {
      stage: 'queue'
      model: string
      closing: boolean
      state: ModelState | undefined
      request: QueueRequest
      load: (now: number) => Load
      settings: SchedulerSettings
    }
  | { stage: 'waiting'; model: string; deadline: number; now: number; neededMs: number }

/** A check that always refuses: rate limiting past its quota, pressure already measured. */
type Refusing =
  | Extract<AdmissionCheck, { stage: 'rate-limit' }>
  | (Extract<AdmissionCheck, { stage: 'pressure' }> & { underPressure: true })

/** The refusal for `check`, or undefined when the request may go on. */
export function admit(check: Refusing): ApiError
export function admit(check: AdmissionCheck): ApiError | undefined
export function admit(check: AdmissionCheck): ApiError | undefined {
  switch (check.stage) {
    case 'in-flight':
      if (check.maxInFlight <= 0 || check.inFlight < check.maxInFlight) return undefined
      return apiError(
        'OVERLOADED',
        `the server is handling ${check.inFlight} requests (MAX_IN_FLIGHT ${check.maxInFlight}); retry later`,
        { reason: 'inFlight', retryAfterS: 1 },
      )
    case 'pressure':
      if (!check.underPressure) return undefined
      if (check.pressure === undefined) {
        return apiError(
          'OVERLOADED',
          'the server is overloaded (event-loop delay, heap or RSS over its limit); retry later',
          { reason: 'pressure', retryAfterS: PRESSURE_RETRY_AFTER_S },
        )
      }
      return apiError(
        'OVERLOADED',
        `the server is overloaded (${check.pressure} ${String(check.measured)} over its limit); retry later`,
        { reason: check.pressure, retryAfterS: PRESSURE_RETRY_AFTER_S },
      )
    case 'rate-limit':
      return apiError(
        'RATE_LIMITED',
        `more than ${check.max} requests in ${check.windowMs} ms from this client; retry in ${check.retryAfterS} s`,
        { retryAfterS: check.retryAfterS },
      )
    case 'selection':
      return selectionRefusal(check.outcome, check.request)
    case 'lookup':
      return lookupRefusal(check.zooLoaded, check.model, check.entry)
    case 'session':
      return sessionRefusal(check.model, check.closing, check.loaded)
    case 'queue': {
      const { state } = check
      const notServing = sessionRefusal(check.model, check.closing, state !== undefined)
      if (notServing || !state) return notServing
      return queueRefusal(check.load(check.request.now), state, check.request, check.settings)
    }
    case 'waiting':
      return deadlineRefusal(check.model, check.deadline, check.now, check.neededMs)
  }
}
