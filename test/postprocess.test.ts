import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rankPredictions, softmax, topKIndices } from '../server/postprocess.js'

describe('postprocess', () => {
  it('softmax is normalised, order-preserving and stable for large logits', () => {
    const p = softmax([1, 2, 3])
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)]
    const z = e[0]! + e[1]! + e[2]!
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(p[i]! - e[i]! / z) < 1e-15)
    const big = softmax([1000, 1001, 999])
    assert.ok(big.every((v) => Number.isFinite(v)))
    assert.ok(Math.abs(big.reduce((a, b) => a + b, 0) - 1) < 1e-12)
    assert.ok(big[1]! > big[0]! && big[0]! > big[2]!)
  })

  it('softmax refuses empty or non-finite logits', () => {
    assert.throws(() => softmax([]), RangeError)
    assert.throws(() => softmax([1, Number.NaN]), RangeError)
    assert.throws(() => softmax([Number.POSITIVE_INFINITY]), RangeError)
  })

  it('top-K is sorted by score, ties by the lower index', () => {
    assert.deepEqual(topKIndices([0.1, 0.4, 0.4, 0.05, 0.05], 4), [1, 2, 0, 3])
    assert.deepEqual(topKIndices([0.3, 0.7], 2), [1, 0])
    assert.throws(() => topKIndices([0.3, 0.7], 3), RangeError)
    assert.throws(() => topKIndices([0.3, 0.7], 0), RangeError)
  })

  it('ranks predictions with labels and refuses a logits/labels mismatch', () => {
    const ranked = rankPredictions(Float32Array.from([0, 2, 1]), ['cat', 'dog', 'bird'], 2)
    assert.deepEqual(
      ranked.map((p) => [p.label, p.index]),
      [
        ['dog', 1],
        ['bird', 2],
      ],
    )
    assert.throws(() => rankPredictions([1, 2], ['a'], 1), RangeError)
  })
})
