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
}
