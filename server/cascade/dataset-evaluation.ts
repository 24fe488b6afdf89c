/**
 * A cascade measured on a whole evaluation set in onnxruntime-node, by the rule the server runs
 * (rule.ts `decideStage`): every image goes to the first stage; only the images a stage was unsure
 * of go to the next one (in batches, on the same preprocessed tensors). Used by `zoo:validate`
 * (cascades the manifest declares) and `zoo:cascades` (candidates the pipeline picked).
 */
import { decideStage, softmax } from './rule.js'

/** One stage: its cost and a batched runner returning [count, classes] logits. */
export interface StageRunner {
  name: string
  mflops: number
  run: (images: Float32Array, count: number) => Promise<Float32Array>
}

export interface EvaluationSet {
  /** N images, `perImage` float32 values each (NCHW). */
  images: Float32Array
  perImage: number
  labels: Int32Array
}

export interface CascadeEvaluation {
  top1: number
  samples: number
  /** Per stage: share of the images it answered. */
  exitFractions: number[]
  /** Mean MFLOPs of the stages that ran. */
  meanMflops: number
}

function gather(set: EvaluationSet, indices: readonly number[]): Float32Array {
  const out = new Float32Array(indices.length * set.perImage)
  indices.forEach((index, k) => {
    out.set(set.images.subarray(index * set.perImage, (index + 1) * set.perImage), k * set.perImage)
  })
  return out
}

export async function evaluateCascade(
  stages: readonly StageRunner[],
  thresholds: readonly number[],
  set: EvaluationSet,
  batchSize: number,
): Promise<CascadeEvaluation> {
  const n = set.labels.length
  let pending = Array.from({ length: n }, (_, i) => i)
  let correct = 0
  let cost = 0
  const exits: number[] = []
  for (const [stage, runner] of stages.entries()) {
    const unsure: number[] = []
    let answered = 0
    for (let start = 0; start < pending.length; start += batchSize) {
      const indices = pending.slice(start, start + batchSize)
      const logits = await runner.run(gather(set, indices), indices.length)
      const classes = logits.length / indices.length
      indices.forEach((index, k) => {
        const decision = decideStage(logits.subarray(k * classes, (k + 1) * classes), stage, thresholds)
        if (!decision.answers) {
          unsure.push(index)
          return
        }
        answered++
        if (decision.classIndex === set.labels[index]) correct++
      })
    }
    cost += (pending.length / n) * runner.mflops
    exits.push(answered / n)
    pending = unsure
  }
  return { top1: correct / n, samples: n, exitFractions: exits, meanMflops: cost }
}

/** Softmax rows of one model over the whole set, float64 [N, classes]. */
export async function softmaxOutputs(
  runner: StageRunner,
  set: EvaluationSet,
  batchSize: number,
): Promise<{ data: Float64Array; classes: number }> {
  const n = set.labels.length
  let out: Float64Array | undefined
  let classes = 0
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start)
    const logits = await runner.run(
      set.images.subarray(start * set.perImage, (start + count) * set.perImage),
      count,
    )
    classes = logits.length / count
    out ??= new Float64Array(n * classes)
    for (let k = 0; k < count; k++) {
      out.set(softmax(logits.subarray(k * classes, (k + 1) * classes)), (start + k) * classes)
    }
  }
  return { data: out ?? new Float64Array(0), classes }
}
