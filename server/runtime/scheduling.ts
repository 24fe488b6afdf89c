/**
 * What the scheduler (scheduler.ts) is configured with, what it needs of the worker pool, what it
 * reports, and the latency prediction load-aware selection reads: its public types, apart from its
 * logic.
 */
import type { ModelLatency } from './latency-model.js'
import type { BatchReply, BatchTask } from './worker-protocol.js'

export interface SchedulerSettings {
  /** Largest batch, in rows, for models whose graph allows batching. */
  maxBatchSize: number
  /** How long a partial batch may wait for more requests while a worker is idle, ms. */
  maxQueueDelayMs: number
  /** Rows a model's queue may hold; more are refused with OVERLOADED. */
  maxQueueSize: number
  /** INFERENCE_TIMEOUT_MS: deadline of a request that brings none, counted from submission, ms. */
  inferenceTimeoutMs: number
}

/** What the scheduler needs from the worker pool. */
export interface BatchExecutor {
  /** Workers serving now. */
  readonly size: number
  /** Workers with no batch running. */
  readonly idle: number
  execute(task: Omit<BatchTask, 'kind' | 'id'>, transfer: ArrayBuffer[]): Promise<BatchReply>
}

export interface ScheduledModel {
  name: string
  /** Largest batch this model runs (its graph's limit and MAX_BATCH_SIZE). */
  maxBatch: number
  latency: ModelLatency
}

export interface SubmitOptions {
  /** Absolute deadline on this thread's performance.now() clock, ms. */
  deadline?: number
  /** Buffers of the item to move to the worker instead of copying (the caller gives them up). */
  transfer?: ArrayBuffer[]
  /** Aborted when the client has gone: a request still queued is dropped with CLIENT_CLOSED. */
  signal?: AbortSignal
}

export interface BatchObservation {
  batchSize: number
  requests: number
  /** Mean queue time of the batch's requests, ms. */
  queueMs: number
  inferenceMs: number
}

export type ShedReason = 'queue-full' | 'deadline'

export interface SchedulerHooks {
  /** A batch ran (successfully) on a worker. */
  onBatch?(model: string, observation: BatchObservation): void
  /** A request was refused or expired before compute. */
  onShed?(model: string, reason: ShedReason): void
  /** session.run of `model` failed: the model itself is broken. */
  onModelFault?(model: string, message: string): void
  /** A worker died under a batch of `model`. */
  onWorkerCrash?(model: string, message: string): void
}

/** A request's latency if it arrived now, and its parts. */
export interface LatencyPrediction {
  /**
   * Cautious estimate of queue wait + worker time of its batch + hand-off (+ its preprocessing,
   * where added): the mean scaled by the observed spread (ModelLatency.cautionFactor), ms.
   */
  predictedLatencyMs: number
  /** The same as a plain mean, ms. */
  expectedLatencyMs: number
  /** Requests submitted per second, all models (moving average over about a second). */
  arrivalRatePerS: number
  /** Share of the workers this model would need if it served that whole rate (≥ 1: overload). */
  utilization: number
  queueWaitMs: number
  /** Rows of the batch it would run in. */
  batchSize: number
  /** Predicted session.run time of that batch, ms. */
  serviceMs: number
  /** Predicted per-image preprocessing time, ms. */
  preprocessMs: number
  /**
   * The latency on an unloaded server (warm-up run time and preprocessing, an idle hand-off, no
   * queue), which load cannot inflate, ms.
   */
  idleLatencyMs: number
  /** Requests waiting for this model, and running now. */
  queued: number
  inFlight: number
}

/**
 * Main-thread overhead of a batch round trip on an idle server (beyond the worker's own time), ms:
 * where the scheduler's measured figure starts, and the hand-off of an idle-server prediction.
 */
export const IDLE_HANDOFF_MS = 0.2
