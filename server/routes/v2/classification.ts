/**
 * Triton's classification extension: an output requested with `parameters: {classification: k}`
 * comes back as a BYTES tensor of shape [batch, min(k, classes)] whose elements are
 * "<value>:<index>[:<label>]", best first, where <value> is the output tensor's own value (a logit
 * for `logits`, a probability for `probabilities`). Triton formats the value with C++
 * std::to_string, i.e. printf("%f"): six decimals, ties rounded half to even, "nan"/"inf".
 */
import { topKIndices } from '../../postprocess.js'

/** printf("%f", value) as glibc prints it, for a float32 or float64 value. */
export function formatFixed6(value: number): string {
  if (Number.isNaN(value)) return 'nan'
  if (value === Number.POSITIVE_INFINITY) return 'inf'
  if (value === Number.NEGATIVE_INFINITY) return '-inf'
  const negative = value < 0 || Object.is(value, -0)
  const magnitude = Math.abs(value)
  let digits = magnitude.toFixed(6)
  // A value lies exactly halfway between two 6-decimal numbers only when value·128 is an odd
  // integer (it must be a dyadic rational with at most 7 decimals). toFixed rounds such ties away
  // from zero, printf to the even neighbour.
  const scaled = magnitude * 128
  if (Number.isInteger(scaled) && scaled % 2 === 1 && scaled * 15625 < Number.MAX_SAFE_INTEGER) {
    const down = (scaled * 15625 - 1) / 2 // magnitude·1e6 rounded down
    const even = down % 2 === 0 ? down : down + 1
    const text = String(even).padStart(7, '0')
    digits = `${text.slice(0, -6)}.${text.slice(-6)}`
  }
  return negative ? `-${digits}` : digits
}

/**
 * The classification strings for a [batch, classes] tensor: `count` per row (clamped to the class
 * count, as Triton does), highest value first; equal values in index order.
 */
export function classify(
  values: ArrayLike<number>,
  batch: number,
  classes: number,
  count: number,
  labels: readonly string[],
): { data: string[]; shape: [number, number] } {
  const k = Math.min(count, classes)
  const data: string[] = []
  for (let row = 0; row < batch; row++) {
    const start = row * classes
    const rowValues = Array.from({ length: classes }, (_, i) => values[start + i] ?? Number.NaN)
    for (const index of topKIndices(rowValues, k)) {
      const label = labels[index]
      const text = `${formatFixed6(rowValues[index] ?? Number.NaN)}:${index}`
      data.push(label === undefined || label === '' ? text : `${text}:${label}`)
    }
  }
  return { data, shape: [batch, k] }
}
