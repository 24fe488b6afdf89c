/**
 * The cascade rule (docs/zoo-contract.md, "Cascades"), the one implementation the server and the
 * zoo validator run: stage i answers an image when its top-1 softmax probability is at least
 * thresholds[i]; otherwise the next stage runs on the same input tensor; the last stage always
 * answers. `training/alphanet/cascade.py` (run_cascade) is the Python reference the pipeline picks
 * thresholds with; test/cascade/ holds the two to the same decisions.
 */

/** Softmax of one row of logits, in float64 (the threshold comparison must not depend on float32 rounding of the sum). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number)
  const out = new Float64Array(logits.length)
  let sum = 0
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max)
    out[i] = e
    sum += e
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / sum
  return out
}

/** Index and value of the largest entry (the first on ties, as numpy's argmax). */
export function top1(values: ArrayLike<number>): { index: number; value: number } {
  let index = 0
  let value = values[0] as number
  for (let i = 1; i < values.length; i++) {
    if ((values[i] as number) > value) {
      value = values[i] as number
      index = i
    }
  }
  return { index, value }
}

/** What one stage decided for one image. */
export interface StageDecision {
  /** Top-1 class of this stage. */
  classIndex: number
  /** Its softmax probability. */
  confidence: number
  /** Whether this stage answers (confident enough, or the last stage). */
  answers: boolean
}

/**
 * The decision of stage `stage` (0-based) of a cascade with `thresholds` (one per stage but the
 * last) given that stage's logits for one image.
 */
export function decideStage(
  logits: ArrayLike<number>,
  stage: number,
  thresholds: readonly number[],
): StageDecision {
  const probabilities = softmax(logits)
  const best = top1(probabilities)
  const threshold = thresholds[stage]
  return {
    classIndex: best.index,
    confidence: best.value,
    answers: threshold === undefined || best.value >= threshold,
  }
}

/** One stage as it ran for one image. */
export interface StageRun<T> extends StageDecision {
  stage: number
  /** What the runner returned for this stage (the logits and whatever the caller attached). */
  result: T
}

/**
 * Runs the cascade on one image: `run(stage)` runs that stage on the image's tensor and returns
 * its logits (plus anything else the caller needs); a stage runs only when the previous one was
 * unsure. Returns every stage that ran, the last of which answered.
 */
export async function runCascade<T>(
  stages: number,
  thresholds: readonly number[],
  run: (stage: number) => Promise<T>,
  logitsOf: (result: T) => ArrayLike<number>,
): Promise<StageRun<T>[]> {
  const ran: StageRun<T>[] = []
  for (let stage = 0; stage < stages; stage++) {
    const result = await run(stage)
    const decision = decideStage(logitsOf(result), stage, thresholds)
    ran.push({ ...decision, stage, result })
    if (decision.answers) break
  }
  return ran
}
