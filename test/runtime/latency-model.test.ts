import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  CLIP_FLOOR,
  Contention,
  DEVIATIONS,
  EWMA_WEIGHT,
  ModelLatency,
  RateMeter,
  RELAX_TAU_MS,
  SpreadEstimate,
  steadyState,
} from '../../server/runtime/latency-model.js'

const profile = () =>
  new ModelLatency(
    new Map([
      [1, 2],
      [2, 3],
      [4, 5],
      [8, 9],
    ]),
    0.5,
  )
function near(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} ≠ ${expected}`)
}

/** A clock the test moves by hand, ms. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0
  return {
    now: () => t,
    advance: (ms) => {
      t += ms
    },
  }
}

describe('SpreadEstimate', () => {
  it('moves a fixed fraction of the way to each observation and ignores junk', () => {
    const clock = manualClock()
    const estimate = new SpreadEstimate(10, clock.now)
    estimate.observe(12)
    near(estimate.value, 10 + EWMA_WEIGHT * 2)
    near(estimate.deviation, EWMA_WEIGHT * 2)
    estimate.observe(11)
    near(estimate.value, 10.4 + EWMA_WEIGHT * 0.6)
    near(estimate.deviation, 0.4 + EWMA_WEIGHT * (0.6 - 0.4))
    estimate.observe(Number.NaN)
    estimate.observe(-1)
    estimate.observe(Number.POSITIVE_INFINITY)
    assert.equal(estimate.samples, 2)
    near(estimate.cautious, estimate.value + DEVIATIONS * estimate.deviation)
  })

  it('never clips its first observation: a zero seed would otherwise clip everything to zero', () => {
    const estimate = new SpreadEstimate(0, manualClock().now)
    estimate.observe(5)
    near(estimate.value, EWMA_WEIGHT * 5)
  })

  it('clips an outlier instead of letting it dominate the mean', () => {
    const clock = manualClock()
    const estimate = new SpreadEstimate(1, clock.now)
    for (let i = 0; i < 30; i++) estimate.observe(1)
    // A 36-megapixel image among thumbnails: 1000× the usual time.
    estimate.observe(1000)
    const bound = 1 + DEVIATIONS * CLIP_FLOOR
    near(estimate.value, 1 + EWMA_WEIGHT * (bound - 1))
    assert.ok(estimate.cautious < 2, `cautious ${estimate.cautious} after one outlier`)
  })

  it('still follows a real, lasting shift within a few dozen observations', () => {
    const estimate = new SpreadEstimate(1, manualClock().now)
    for (let i = 0; i < 10; i++) estimate.observe(1)
    for (let i = 0; i < 40; i++) estimate.observe(10)
    assert.ok(Math.abs(estimate.value - 10) < 0.5, String(estimate.value))
  })

  it('relaxes toward its seed while nothing is observed (no lock after a bad burst)', () => {
    const clock = manualClock()
    const estimate = new SpreadEstimate(1, clock.now)
    for (let i = 0; i < 40; i++) estimate.observe(i % 2 === 0 ? 20 : 40)
    const raised = estimate.value
    assert.ok(raised > 20)
    clock.advance(RELAX_TAU_MS)
    near(estimate.value, 1 + (raised - 1) * Math.exp(-1))
    clock.advance(4 * RELAX_TAU_MS)
    assert.ok(estimate.value < 1 + (raised - 1) * 0.01)
    assert.ok(estimate.deviation < 0.2)
    // The next observation starts from the relaxed figure.
    estimate.observe(1)
    assert.ok(estimate.value < 1.5)
  })
})

describe('ModelLatency', () => {
  it('interpolates the warm-up profile between sizes and extrapolates per row beyond it', () => {
    const latency = profile()
    near(latency.runMs(1), 2)
    near(latency.runMs(3), 4)
    near(latency.runMs(6), 7)
    near(latency.runMs(16), 18)
    assert.deepEqual(
      latency.table().map((t) => t.batchSize),
      [1, 2, 4, 8],
    )
  })

  it('scales every batch size by the contention observed at any of them', () => {
    const latency = profile()
    for (let i = 0; i < 60; i++) latency.observeRun(8, 18)
    near(Math.round(latency.contentionFactor * 1000) / 1000, 2)
    assert.ok(Math.abs(latency.runMs(1) - 4) < 0.01)
    assert.equal(latency.observedBatches, 60)
    for (let i = 0; i < 60; i++) latency.observeRun(1, 2)
    assert.ok(Math.abs(latency.runMs(8) - 9) < 0.01, 'back to the profile once the load is gone')
  })

  it('tracks the per-image preprocessing time from its seed', () => {
    const latency = profile()
    near(latency.preprocessMs(), 0.5)
    for (let i = 0; i < 60; i++) latency.observePreprocess(3)
    assert.ok(Math.abs(latency.preprocessMs() - 3) < 0.01)
  })

  it('never predicts a bigger batch faster than a smaller one (noisy warm-up)', () => {
    const noisy = new ModelLatency(
      new Map([
        [1, 3],
        [2, 1],
        [4, 6],
      ]),
      0,
    )
    near(noisy.runMs(2), 3)
    near(noisy.runMs(4), 6)
  })

  it('needs the batch-1 time', () => {
    assert.throws(() => new ModelLatency(new Map([[2, 1]]), 0), /batch-1/)
  })
})

describe('ModelLatency caution', () => {
  it('widens its estimate with the spread of observed run times', () => {
    const steady = profile()
    for (let i = 0; i < 40; i++) steady.observeRun(1, 2)
    near(Math.round(steady.cautionFactor * 1000) / 1000, 1)
    const noisy = profile()
    for (let i = 0; i < 40; i++) noisy.observeRun(1, i % 2 === 0 ? 1 : 3)
    // Mean ratio ≈ 1, mean deviation ≈ 0.5: three deviations make the cautious estimate ≈ 2.5×.
    assert.ok(noisy.cautionFactor > 2 && noisy.cautionFactor < 3, String(noisy.cautionFactor))
  })

  it('adds three mean deviations to the preprocessing estimate', () => {
    const latency = profile()
    for (let i = 0; i < 60; i++) latency.observePreprocess(i % 2 === 0 ? 1 : 3)
    assert.ok(latency.cautiousPreprocessMs() > latency.preprocessMs() + 2)
  })
})

describe('arrival rate and steady state', () => {
  it('RateMeter converges to the arrival rate and decays when arrivals stop', () => {
    const meter = new RateMeter(1000)
    for (let t = 0; t <= 10_000; t += 10) meter.mark(t)
    assert.ok(Math.abs(meter.rateAt(10_000) * 1000 - 100) < 2, String(meter.rateAt(10_000) * 1000))
    assert.ok(meter.rateAt(13_000) < meter.rateAt(10_000) / 10)
  })

  it('settles on the batch size that keeps pace, and flags a rate beyond capacity', () => {
    // Profile: 2 ms at 1, 3 at 2, 5 at 4, 9 at 8 (see profile()).
    const latency = profile()
    const quiet = steadyState(latency, 0.01, 1, 8)
    assert.equal(quiet.batchSize, 1)
    assert.ok(quiet.utilization < 0.05 && Math.abs(quiet.latencyMs - 2) < 0.05)
    // 0.5 per ms: batch 1 would need 100% of the worker; batches of 2-3 keep up.
    const busy = steadyState(latency, 0.5, 1, 8)
    assert.ok(busy.batchSize >= 2 && busy.batchSize <= 4, String(busy.batchSize))
    assert.ok(busy.utilization < 1 && busy.latencyMs > quiet.latencyMs)
    // 1 per ms: even batches of 8 (9 ms for 8 rows) cannot keep up.
    const overloaded = steadyState(latency, 1, 1, 8)
    assert.equal(overloaded.batchSize, 8)
    assert.ok(overloaded.utilization > 1)
    assert.ok(overloaded.latencyMs > 50 * busy.latencyMs)
    // Twice the workers halve the load.
    assert.ok(steadyState(latency, 1, 2, 8).utilization < 1)
  })
})

describe('shared contention', () => {
  it('a slow batch of one model raises the estimate of every model on the provider', () => {
    const shared = new Contention()
    const a = new ModelLatency(new Map([[1, 2]]), 0, shared)
    const b = new ModelLatency(new Map([[1, 10]]), 0, shared)
    for (let i = 0; i < 40; i++) a.observeRun(1, 4)
    assert.ok(Math.abs(b.runMs(1) - 20) < 0.1, String(b.runMs(1)))
    assert.equal(b.observedBatches, 0)
    assert.equal(a.observedBatches, 40)
  })
})
