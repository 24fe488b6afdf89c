import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { measureLatency, percentile, summarise, syntheticInput } from '../../server/runtime/latency.js'

describe('latency statistics', () => {
  it('computes nearest-rank percentiles', () => {
    const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6]
    assert.equal(percentile(samples, 50), 5)
    assert.equal(percentile(samples, 95), 10)
    assert.equal(percentile(samples, 10), 1)
    assert.equal(percentile(samples, 100), 10)
    assert.equal(percentile([7], 95), 7)
    assert.ok(Number.isNaN(percentile([], 50)))
  })

  it('summarises with the sample count and rounds to microseconds', () => {
    assert.deepEqual(summarise([1.00049, 2, 3]), { p50: 2, p95: 3, samples: 3 })
    assert.deepEqual(summarise([0.12345]), { p50: 0.123, p95: 0.123, samples: 1 })
  })

  it('measures the requested number of runs', async () => {
    let calls = 0
    const result = await measureLatency(7, async () => ++calls)
    assert.equal(calls, 7)
    assert.deepEqual(result, { p50: 4, p95: 7, samples: 7 })
  })

  it('synthesises deterministic, varied input in [-1, 1)', () => {
    const a = syntheticInput(1000)
    assert.deepEqual(a, syntheticInput(1000))
    assert.notDeepEqual(a, syntheticInput(1000, 99))
    assert.ok(a.every((v) => v >= -1 && v < 1))
    assert.ok(new Set(a).size > 990)
  })
})
