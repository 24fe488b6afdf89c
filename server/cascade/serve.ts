/**
 * Serving one image or tensor through a cascade: the image is decoded and preprocessed once
 * (prepareImage), then stage i runs on that same tensor only when stage i−1 was unsure
 * (rule.ts). Each stage run goes through the runtime like any request for that model (queue,
 * batching, deadline, cancellation).
 */
import type { InferenceResult, ModelRunner, RunOptions } from '../runtime/types.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import type { CascadeCandidate } from './candidates.js'
import { runCascade } from './rule.js'

/** What one stage did for the request (the response's `cascade.stages`). */
export interface StageReport {
  model: string
  /** Top-1 softmax probability of this stage. */
  confidence: number
  /** The stage answers at confidence ≥ threshold; the last stage has none. */
  threshold: number | null
  answered: boolean
  queueMs: number
  inferenceMs: number
  batchSize: number
}

export interface CascadeOutcome {
  /** The answering stage and its run (its logits are the answer). */
  model: ModelEntry
  result: InferenceResult
  stages: StageReport[]
  /** 0-based index of the stage that answered. */
  exitStage: number
  /** MFLOPs of the stages that ran. */
  mflops: number
}

export async function runCascadeOnTensor(
  inference: ModelRunner,
  candidate: CascadeCandidate,
  tensor: Float32Array,
  options: RunOptions,
): Promise<CascadeOutcome> {
  const { cascade, stages } = candidate
  const first = stages[0]
  if (!first) throw new Error(`cascade ${cascade.name} has no stages`)
  const dims = [1, first.input.channels, first.input.size, first.input.size]
  const ran = await runCascade(
    stages.length,
    cascade.thresholds,
    // No transfer: the same tensor feeds the next stage.
    (stage) => inference.run(stages[stage]?.name ?? '', tensor, dims, options),
    (result) => result.logits,
  )
  const last = ran[ran.length - 1]
  if (!last) throw new Error(`cascade ${cascade.name} ran no stage`)
  return {
    model: stages[last.stage] as ModelEntry,
    result: last.result,
    exitStage: last.stage,
    mflops: Math.round(ran.reduce((sum, r) => sum + (stages[r.stage]?.mflops ?? 0), 0) * 10000) / 10000,
    stages: ran.map((r) => ({
      model: stages[r.stage]?.name ?? '',
      confidence: Math.round(r.confidence * 1e6) / 1e6,
      threshold: cascade.thresholds[r.stage] ?? null,
      answered: r.answers,
      queueMs: r.result.queueMs,
      inferenceMs: r.result.inferenceMs,
      batchSize: r.result.batchSize,
    })),
  }
}

/** Decodes the image once for the first stage's contract (shared by every stage), then runs the cascade. */
export async function runCascadeOnImage(
  inference: ModelRunner,
  candidate: CascadeCandidate,
  image: Uint8Array,
  options: RunOptions & { maxPixels: number },
): Promise<CascadeOutcome & { preprocessMs: number }> {
  const first = candidate.cascade.stages[0] ?? ''
  const prepared = await inference.prepareImage(first, image, options)
  const { maxPixels: _unused, ...runOptions } = options
  const outcome = await runCascadeOnTensor(inference, candidate, prepared.tensor, runOptions)
  return { ...outcome, preprocessMs: prepared.preprocessMs }
}

/** A batch of rows (Open Inference Protocol tensors): every row runs the cascade on its own. */
export async function runCascadeOnBatch(
  inference: ModelRunner,
  candidate: CascadeCandidate,
  tensor: Float32Array,
  rows: number,
  options: RunOptions,
): Promise<{ logits: Float32Array; outcomes: CascadeOutcome[] }> {
  const per = tensor.length / rows
  const outcomes = await Promise.all(
    Array.from({ length: rows }, (_, row) =>
      runCascadeOnTensor(inference, candidate, tensor.slice(row * per, (row + 1) * per), options),
    ),
  )
  const classes = outcomes[0]?.result.logits.length ?? 0
  const logits = new Float32Array(rows * classes)
  outcomes.forEach((o, row) => {
    logits.set(o.result.logits, row * classes)
  })
  return { logits, outcomes }
}
