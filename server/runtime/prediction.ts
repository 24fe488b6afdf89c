/**
 * The latency a one-row request to a model would see if it arrived now — what load-aware
 * selection compares with maxLatencyMs — from the scheduler's queues and running batches.
 *
 * The later of (a) the time until its batch starts (the running batches' remaining time plus the
 * queued work, shared over the workers) plus its batch's run time at the size it would run in (it
 * joins the model's last partial batch), and (b) the steady-state latency the model would settle
 * to if it served the current arrival rate alone (latency-model.ts steadyState) — (a) sees the
 * queue that exists, (b) the one about to form; then the measured hand-off overhead. Service times
 * come from each model's ModelLatency; budget checks use its cautious (mean + spread) figure.
 */
import { steadyState } from './latency-model.js'
import { queueWorkMs, type ModelState } from './model-queue.js'
import { IDLE_HANDOFF_MS, type LatencyPrediction } from './scheduling.js'

/** The scheduler's load at one moment. */
export interface Load {
  /** Every model's queue (read more than once: not a one-shot iterator). */
  models: ReadonlyMap<string, ModelState>
  running: Iterable<{ expectedEnd: number }>
  /** Inference workers serving, and those idle. */
  workers: number
  idleWorkers: number
  /** Submissions per ms over all models. */
  arrivalRate: number
  /** Main-thread overhead of a batch round trip beyond the worker's own time, ms. */
  handoffMs: number
}

/** Remaining time of running batches plus all queued work, ms (summed over workers). */
export function backlogMs(load: Load, now: number): number {
  let total = 0
  for (const batch of load.running) total += Math.max(0, batch.expectedEnd - now)
  for (const state of load.models.values()) total += queueWorkMs(state, state.queuedRows)
  return total
}

/** The prediction for a one-row request to `state`'s model arriving at `now`, its preprocessing not included. */
export function predictLatency(load: Load, state: ModelState, now: number): LatencyPrediction {
  const backlog = backlogMs(load, now)
  let queued = false
  for (const s of load.models.values()) queued ||= s.queue.length > 0
  const workers = Math.max(1, load.workers)
  // The request joins its model's last partial batch: that batch's work is its own, not a wait.
  const partialRows = state.queuedRows % state.maxBatch
  const ahead = backlog - (partialRows > 0 ? state.latency.runMs(partialRows) : 0)
  const queueWaitMs = load.idleWorkers > 0 && !queued ? 0 : Math.max(0, ahead) / workers
  const batchSize = partialRows + 1
  const serviceMs = state.latency.runMs(batchSize)
  const preprocessMs = state.latency.preprocessMs()
  // An unloaded server: the warm-up run time and the hand-off of an idle main thread. Nothing the
  // load inflates (contention, the spread behind the caution, the measured hand-off, which under
  // load is the event loop's delay) enters it: admission reads it to tell a budget only the load
  // breaks (503, retry) from one an idle server misses too (422).
  const idleMs = state.latency.runMs(1) / state.latency.contentionFactor
  // The later of: draining what is queued now, and the regime the current arrival rate leads to
  // if this model took it all (rules a model out before its queue has grown).
  const steady = steadyState(state.latency, load.arrivalRate, workers, state.maxBatch)
  const computeMs = Math.max(queueWaitMs + serviceMs, steady.latencyMs)
  return {
    predictedLatencyMs: computeMs * state.latency.cautionFactor + load.handoffMs,
    expectedLatencyMs: computeMs + load.handoffMs,
    arrivalRatePerS: load.arrivalRate * 1000,
    utilization: steady.utilization,
    queueWaitMs,
    batchSize,
    serviceMs,
    preprocessMs,
    idleLatencyMs: idleMs + IDLE_HANDOFF_MS,
    queued: state.queue.length,
    inFlight: state.inFlight,
  }
}
