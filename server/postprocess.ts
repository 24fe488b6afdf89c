/**
 * Model logits → ranked predictions: a numerically stable softmax (max subtracted, float64
 * accumulation) and a top-K that breaks score ties by the lower class index, so the ranking is
 * deterministic.
 */

export interface Prediction {
  label: string
  index: number
  score: number
}

export function softmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length
  if (n === 0) throw new RangeError('softmax of an empty vector')
  let max = Number.NEGATIVE_INFINITY
  for (let i = 0; i < n; i++) {
    const v = logits[i] ?? Number.NaN
    if (!Number.isFinite(v)) throw new RangeError(`logit ${i} is not finite (${v})`)
    if (v > max) max = v
  }
  const out = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i] ?? 0) - max)
    out[i] = e
    sum += e
  }
  for (let i = 0; i < n; i++) out[i] = (out[i] ?? 0) / sum
  return out
}

/** Indices of the k largest scores, largest first; equal scores in index order. */
export function topKIndices(scores: ArrayLike<number>, k: number): number[] {
  if (!Number.isInteger(k) || k < 1 || k > scores.length) {
    throw new RangeError(`k must be an integer in [1, ${scores.length}], got ${k}`)
  }
  const indices = Array.from({ length: scores.length }, (_, i) => i)
  indices.sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b)
  return indices.slice(0, k)
}

/** The top-k predictions for one row of logits, with labels. */
export function rankPredictions(
  logits: ArrayLike<number>,
  labels: readonly string[],
  k: number,
): Prediction[] {
  if (logits.length !== labels.length) {
    throw new RangeError(`the model returned ${logits.length} logits for ${labels.length} labels`)
  }
  const scores = softmax(logits)
  return topKIndices(scores, k).map((index) => ({
    label: labels[index] ?? String(index),
    index,
    score: scores[index] ?? 0,
  }))
}
