/**
 * The runtime view of one zoo model: its manifest entry plus what this server found out at
 * load time (whether it serves, why not, which execution provider runs it, latency on this host).
 */
import type { ModelManifest } from './manifest-schema.js'

export type ExecutionProviderName = 'cuda' | 'cpu'

/** Batch-1 latency of `session.run` measured on this host during warm-up. */
export interface MeasuredLatency {
  p50: number
  p95: number
  samples: number
}

/**
 * The manifest's own `latencyMs` (measured by the pipeline on its host) is kept as
 * `pipelineLatencyMs`; `latencyMs` is always this host's measurement, which budgets refer to.
 */
export type ModelEntry = Omit<ModelManifest, 'latencyMs'> & {
  pipelineLatencyMs?: ModelManifest['latencyMs']
  /** Absolute path of the ONNX file. */
  path: string
  ready: boolean
  /** Why the model is not ready (missing file, checksum mismatch, session creation failed, …). */
  reason?: string
  executionProvider?: ExecutionProviderName
  latencyMs?: MeasuredLatency
  /** Load-aware figures at the moment the entry was read (ready models of a serving zoo only). */
  live?: LiveFigures
}

/**
 * What serving this model looks like right now, from the runtime's live latency model: what a
 * one-image request arriving now is predicted to take, and the load behind that prediction.
 */
export interface LiveFigures {
  /**
   * Preprocessing (overlapping the queue wait) + run of the batch it would join + hand-off, as a
   * cautious estimate — mean plus three mean deviations of the observed spread — ms. What
   * maxLatencyMs compares.
   */
  predictedLatencyMs: number
  /** The same as a plain mean, ms. */
  expectedLatencyMs: number
  /** Requests submitted per second over all models (moving average over about a second). */
  arrivalRatePerS: number
  /** Share of the workers this model would need to serve that whole rate (≥ 1: overloaded). */
  utilization: number
  /** The cautious estimate on an unloaded server (warm-up run time, empty queues), ms. */
  idleLatencyMs: number
  queueWaitMs: number
  /** Rows of the batch the request would join. */
  batchSize: number
  /** Predicted session.run time of that batch, ms. */
  serviceMs: number
  /** Predicted per-image decode + preprocessing time in the worker, ms. */
  preprocessMs: number
  /** Requests waiting for this model, and running now. */
  queued: number
  inFlight: number
  /** Largest batch this model runs. */
  maxBatch: number
  /** Current run-time estimate ÷ warm-up profile (1 = as fast as at start-up). */
  contention: number
  /** Predicted session.run time per profiled batch size, ms. */
  batches: { batchSize: number; ms: number }[]
  /** Batches run since start-up (observations behind the estimate). */
  observedBatches: number
}
