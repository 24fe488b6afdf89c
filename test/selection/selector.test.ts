import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { describeBudget, hasBudget, violations, type SelectableModel } from '../../server/selection/budget.js'
import { selectModel, type SelectionOutcome, type SelectionRequest } from '../../server/selection/selector.js'

// A small Pareto-shaped zoo: cost, latency and accuracy all rise together, except where a test
// needs a tie.
const tiny: SelectableModel = {
  name: 'tiny',
  mflops: 10,
  top1: 0.7,
  ready: true,
  latencyMs: { p50: 1, p95: 2 },
}
const small: SelectableModel = {
  name: 'small',
  mflops: 50,
  top1: 0.8,
  ready: true,
  latencyMs: { p50: 4, p95: 5 },
}
const medium: SelectableModel = {
  name: 'medium',
  mflops: 200,
  top1: 0.85,
  ready: true,
  latencyMs: { p50: 10, p95: 12 },
}
const large: SelectableModel = {
  name: 'large',
  mflops: 700,
  top1: 0.9,
  ready: true,
  latencyMs: { p50: 30, p95: 40 },
}
const broken: SelectableModel = {
  name: 'broken',
  mflops: 5,
  top1: 0.95,
  ready: false,
  reason: 'sha256 mismatch',
}
const ZOO = [tiny, small, medium, large, broken]

function select(request: Partial<SelectionRequest>, models: readonly SelectableModel[] = ZOO) {
  return selectModel(models, { budget: {}, onInfeasible: 'reject', ...request })
}

function chosen(outcome: SelectionOutcome): string {
  if (outcome.kind !== 'selected')
    assert.fail(`expected a selection, got ${outcome.kind}: ${outcome.explanation}`)
  return outcome.model.name
}

describe('budget checks', () => {
  it('reports every failed constraint with both compared values', () => {
    const found = violations(large, { maxMflops: 100, maxLatencyMs: 20, minTop1: 0.95 })
    assert.deepEqual(
      found.map((v) => [v.constraint, v.limit, v.actual]),
      [
        ['maxMflops', 100, 700],
        ['maxLatencyMs', 20, 30],
        ['minTop1', 0.95, 0.9],
      ],
    )
  })

  it('bounds are inclusive', () => {
    assert.deepEqual(violations(medium, { maxMflops: 200, maxLatencyMs: 10, minTop1: 0.85 }), [])
  })

  it('a ready model without a latency measurement fails a latency budget', () => {
    const unmeasured: SelectableModel = { name: 'u', mflops: 1, top1: 0.5, ready: true }
    const found = violations(unmeasured, { maxLatencyMs: 1000 })
    assert.equal(found.length, 1)
    assert.equal(found[0]!.constraint, 'maxLatencyMs')
    assert.equal(found[0]!.actual, null)
  })

  it('a model that is not ready fails readiness (and no latency complaint is added)', () => {
    const found = violations(broken, { maxLatencyMs: 1000 })
    assert.deepEqual(
      found.map((v) => v.constraint),
      ['ready'],
    )
    assert.match(found[0]!.message, /sha256 mismatch/)
  })

  it('describes and detects budgets', () => {
    assert.equal(hasBudget({}), false)
    assert.equal(hasBudget({ minTop1: 0 }), true)
    assert.equal(describeBudget({}), 'no budget')
    assert.equal(describeBudget({ maxMflops: 5, minTop1: 0.8 }), 'maxMflops ≤ 5, minTop1 ≥ 0.8')
  })
})

describe('selectModel', () => {
  it('without a budget serves the configured default model', () => {
    const outcome = select({ defaultModel: 'small' })
    assert.equal(chosen(outcome), 'small')
    assert.equal(outcome.kind === 'selected' && outcome.reason, 'default')
  })

  it('without a budget or default serves the most accurate ready model', () => {
    const outcome = select({})
    assert.equal(chosen(outcome), 'large')
    assert.equal(outcome.kind === 'selected' && outcome.reason, 'default-unavailable')
  })

  it('a default model that is not ready falls back to the most accurate ready model', () => {
    const outcome = select({ defaultModel: 'broken' })
    assert.equal(chosen(outcome), 'large')
    assert.match(outcome.explanation, /broken is not ready/)
  })

  it('a budget between two models picks the more accurate one that fits', () => {
    assert.equal(chosen(select({ budget: { maxMflops: 199.9 } })), 'small')
    assert.equal(chosen(select({ budget: { maxMflops: 450 } })), 'medium')
  })

  it('a budget exactly equal to a model admits it', () => {
    const outcome = select({ budget: { maxMflops: 200 } })
    assert.equal(chosen(outcome), 'medium')
    assert.equal(outcome.kind === 'selected' && outcome.budgetMet, true)
    assert.equal(outcome.kind === 'selected' && outcome.predictedLatencyMs, 10)
  })

  it('ignores the default model once a budget is given', () => {
    assert.equal(chosen(select({ budget: { maxMflops: 10_000 }, defaultModel: 'tiny' })), 'large')
  })

  it('never picks a model that is not ready, however attractive', () => {
    const outcome = select({ budget: { maxMflops: 6 } })
    assert.equal(outcome.kind, 'infeasible')
    const verdict = outcome.candidates.find((c) => c.model.name === 'broken')
    assert.deepEqual(
      verdict?.violations.map((v) => v.constraint),
      ['ready'],
    )
  })

  it('infeasible with reject names the cheapest and the fastest ready models', () => {
    const outcome = select({ budget: { maxMflops: 1 } })
    assert.equal(outcome.kind, 'infeasible')
    assert.equal(outcome.cheapest?.name, 'tiny')
    assert.equal(outcome.fastest?.name, 'tiny')
    assert.ok(outcome.candidates.every((c) => !c.accepted))
  })

  it('cheapest and fastest can differ', () => {
    const slowCheap: SelectableModel = { ...tiny, latencyMs: { p50: 50, p95: 60 } }
    const outcome = select({ budget: { maxMflops: 1 } }, [slowCheap, small, medium])
    assert.equal(outcome.kind === 'infeasible' && outcome.cheapest?.name, 'tiny')
    assert.equal(outcome.kind === 'infeasible' && outcome.fastest?.name, 'small')
  })

  it('infeasible with smallest serves the cheapest ready model and reports the budget unmet', () => {
    const outcome = select({ budget: { maxMflops: 1 }, onInfeasible: 'smallest' })
    assert.equal(chosen(outcome), 'tiny')
    assert.equal(outcome.kind === 'selected' && outcome.reason, 'smallest-fallback')
    assert.equal(outcome.kind === 'selected' && outcome.budgetMet, false)
  })

  it('a latency budget uses the p50 measured on this host', () => {
    assert.equal(chosen(select({ budget: { maxLatencyMs: 9.99 } })), 'small')
    assert.equal(chosen(select({ budget: { maxLatencyMs: 10 } })), 'medium')
    assert.equal(select({ budget: { maxLatencyMs: 0.5 } }).kind, 'infeasible')
  })

  it('minTop1 admits only accurate enough models and still prefers the most accurate', () => {
    assert.equal(chosen(select({ budget: { minTop1: 0.85 } })), 'large')
    assert.equal(chosen(select({ budget: { minTop1: 0.85, maxMflops: 300 } })), 'medium')
    assert.equal(select({ budget: { minTop1: 0.86, maxMflops: 300 } }).kind, 'infeasible')
  })

  it('all constraints must hold together', () => {
    const outcome = select({ budget: { maxMflops: 1000, maxLatencyMs: 5, minTop1: 0.75 } })
    assert.equal(chosen(outcome), 'small')
    assert.deepEqual(
      outcome.candidates.filter((c) => c.accepted).map((c) => c.model.name),
      ['small'],
    )
  })

  it('breaks accuracy ties by latency, then MFLOPs, then name', () => {
    const a: SelectableModel = {
      name: 'a',
      mflops: 100,
      top1: 0.8,
      ready: true,
      latencyMs: { p50: 5, p95: 6 },
    }
    const b: SelectableModel = {
      name: 'b',
      mflops: 50,
      top1: 0.8,
      ready: true,
      latencyMs: { p50: 4, p95: 6 },
    }
    const c: SelectableModel = {
      name: 'c',
      mflops: 40,
      top1: 0.8,
      ready: true,
      latencyMs: { p50: 4, p95: 9 },
    }
    const d: SelectableModel = {
      name: 'd',
      mflops: 40,
      top1: 0.8,
      ready: true,
      latencyMs: { p50: 4, p95: 1 },
    }
    const budget = { maxMflops: 1000 }
    assert.equal(chosen(select({ budget }, [a, b])), 'b') // lower latency
    assert.equal(chosen(select({ budget }, [b, c])), 'c') // same latency, fewer MFLOPs
    assert.equal(chosen(select({ budget }, [d, c])), 'c') // all equal: name
  })

  it('an unmeasured model loses latency ties to a measured one', () => {
    const measured: SelectableModel = {
      name: 'z',
      mflops: 10,
      top1: 0.8,
      ready: true,
      latencyMs: { p50: 9, p95: 9 },
    }
    const unmeasured: SelectableModel = { name: 'a', mflops: 10, top1: 0.8, ready: true }
    assert.equal(chosen(select({ budget: { minTop1: 0.5 } }, [unmeasured, measured])), 'z')
  })

  it('smallest fallback breaks MFLOPs ties by latency', () => {
    const x: SelectableModel = {
      name: 'x',
      mflops: 10,
      top1: 0.6,
      ready: true,
      latencyMs: { p50: 3, p95: 3 },
    }
    const y: SelectableModel = {
      name: 'y',
      mflops: 10,
      top1: 0.5,
      ready: true,
      latencyMs: { p50: 2, p95: 2 },
    }
    assert.equal(chosen(select({ budget: { maxMflops: 1 }, onInfeasible: 'smallest' }, [x, y])), 'y')
  })

  describe('explicit model', () => {
    it('serves the named model without a budget', () => {
      const outcome = select({ model: 'tiny', defaultModel: 'large' })
      assert.equal(chosen(outcome), 'tiny')
      assert.equal(outcome.kind === 'selected' && outcome.reason, 'explicit')
      assert.deepEqual(
        outcome.candidates.filter((c) => c.considered).map((c) => c.model.name),
        ['tiny'],
      )
    })

    it('unknown name → model-not-found', () => {
      assert.equal(select({ model: 'nope' }).kind, 'model-not-found')
    })

    it('not ready → model-not-ready, even with onInfeasible=smallest', () => {
      const outcome = select({ model: 'broken', onInfeasible: 'smallest', budget: { maxMflops: 1 } })
      assert.equal(outcome.kind, 'model-not-ready')
    })

    it('within the budget → served, budget met', () => {
      const outcome = select({ model: 'small', budget: { maxMflops: 50, minTop1: 0.8 } })
      assert.equal(chosen(outcome), 'small')
      assert.equal(outcome.kind === 'selected' && outcome.budgetMet, true)
    })

    it('outside the budget with reject → infeasible naming the violation (no silent substitution)', () => {
      const outcome = select({ model: 'large', budget: { maxMflops: 100 } })
      assert.equal(outcome.kind, 'infeasible')
      assert.match(outcome.explanation, /large is outside the budget: 700 MFLOPs > maxMflops 100/)
    })

    it('outside the budget with smallest → still the named model, budget unmet', () => {
      const outcome = select({ model: 'large', budget: { maxMflops: 100 }, onInfeasible: 'smallest' })
      assert.equal(chosen(outcome), 'large')
      assert.equal(outcome.kind === 'selected' && outcome.budgetMet, false)
    })
  })

  it('no ready model at all → no-ready-model, with or without a budget', () => {
    assert.equal(select({}, [broken]).kind, 'no-ready-model')
    assert.equal(
      select({ budget: { maxMflops: 1 }, onInfeasible: 'smallest' }, [broken]).kind,
      'no-ready-model',
    )
    assert.equal(select({}, []).kind, 'no-ready-model')
  })

  it('lists a verdict for every model in zoo order', () => {
    const outcome = select({ budget: { maxMflops: 60 } })
    assert.deepEqual(
      outcome.candidates.map((c) => [c.model.name, c.accepted]),
      [
        ['tiny', true],
        ['small', true],
        ['medium', false],
        ['large', false],
        ['broken', false],
      ],
    )
  })
})

describe('load-aware latency budgets', () => {
  /** The zoo under a given load: live predictions per model (idle = the warm-up p50). */
  function loaded(predicted: Record<string, number>): SelectableModel[] {
    return ZOO.map((m) =>
      m.ready && m.latencyMs
        ? {
            ...m,
            live: {
              predictedLatencyMs: predicted[m.name] ?? m.latencyMs.p50,
              idleLatencyMs: m.latencyMs.p50,
            },
          }
        : m,
    )
  }

  it('judges the live prediction, not the warm-up p50', () => {
    const idle = loaded({})
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 } }, idle)), 'large')
    // The same budget as load rises: the most accurate model is predicted over it, so the selection
    // steps down the family — one model at a time — and back up as the load falls.
    const busy = loaded({ large: 60, medium: 20 })
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 } }, busy)), 'medium')
    const busier = loaded({ large: 120, medium: 50, small: 15 })
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 } }, busier)), 'small')
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 } }, loaded({ large: 34 }))), 'large')
    const outcome = select({ budget: { maxLatencyMs: 35 } }, busier)
    assert.equal(outcome.kind === 'selected' && outcome.predictedLatencyMs, 15)
    const large = outcome.candidates.find((c) => c.model.name === 'large')
    assert.equal(large?.latencyMs, 120)
    assert.match(
      large.violations[0]?.message ?? '',
      /predicted latency under current load 120 ms > maxLatencyMs 35/,
    )
  })

  it('keeps headroom: a costlier model only if the fastest could still serve the next request in budget', () => {
    /** `predicted` per model, and each model's run (serviceMs) = its warm-up p50. */
    const withRuns = (predicted: Record<string, number>) =>
      loaded(predicted).map((m) =>
        m.live && m.latencyMs ? { ...m, live: { ...m.live, serviceMs: m.latencyMs.p50 } } : m,
      )
    // Idle: the largest model's run (30 ms) behind the fastest's prediction still fits 35 ms.
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 } }, withRuns({}))), 'large')
    // Loaded: every model is predicted within 35 ms, but after large's 30-ms run a request for
    // the fastest model would need 10 + 30 ms: large is held back, medium (10 + 10) is not.
    const busy = withRuns({ tiny: 10, small: 12, medium: 20, large: 34 })
    const outcome = select({ budget: { maxLatencyMs: 35 } }, busy)
    assert.equal(chosen(outcome), 'medium')
    assert.match(outcome.explanation, /large would fit too, but would leave the requests behind it no room/)
    assert.ok(
      outcome.candidates.find((c) => c.model.name === 'large')?.accepted,
      'large is within budget itself',
    )
    // The fastest model itself is never held back, and no budget means no headroom rule.
    assert.equal(
      chosen(
        select({ budget: { maxLatencyMs: 35 } }, withRuns({ tiny: 34, small: 40, medium: 40, large: 40 })),
      ),
      'tiny',
    )
    assert.equal(chosen(select({ budget: { maxMflops: 1000 } }, busy)), 'large')
  })

  it('counts the time the request already spent against the budget', () => {
    const idle = loaded({})
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 }, elapsedMs: 4 }, idle)), 'large')
    assert.equal(chosen(select({ budget: { maxLatencyMs: 35 }, elapsedMs: 6 }, idle)), 'medium')
    const outcome = select({ budget: { maxLatencyMs: 35 }, elapsedMs: 6 }, idle)
    const large = outcome.candidates.find((c) => c.model.name === 'large')
    assert.deepEqual([large?.violations[0]?.limit, large?.violations[0]?.actual], [35, 36])
    assert.match(large?.violations[0]?.message ?? '', /incl\. 6 ms already spent/)
  })

  it('flags an infeasible outcome as overloaded only when an idle server would meet the budget', () => {
    const saturated = loaded({ tiny: 9, small: 12, medium: 40, large: 90 })
    const overloaded = select({ budget: { maxLatencyMs: 5 } }, saturated)
    assert.equal(overloaded.kind, 'infeasible')
    assert.equal(overloaded.overloaded, true)
    assert.match(overloaded.explanation, /under the current load/)
    // Below even the idle latency of the fastest model: the budget itself is impossible.
    const impossible = select({ budget: { maxLatencyMs: 0.5 } }, saturated)
    assert.equal(impossible.kind === 'infeasible' && impossible.overloaded, false)
    // Another constraint fails too: relaxing the load would not help.
    const accuracy = select({ budget: { maxLatencyMs: 5, minTop1: 0.85 } }, loaded({ small: 12 }))
    assert.equal(accuracy.kind === 'infeasible' && accuracy.overloaded, false)
    // Time already spent waiting is load, not an infeasible budget: the idle server would meet it.
    const waited = select({ budget: { maxLatencyMs: 50 }, elapsedMs: 54 }, loaded({ tiny: 29 }))
    assert.equal(waited.kind === 'infeasible' && waited.overloaded, true)
    // An explicit model over the budget only because of load is overloaded as well.
    const explicit = select({ model: 'medium', budget: { maxLatencyMs: 15 } }, saturated)
    assert.equal(explicit.kind === 'infeasible' && explicit.overloaded, true)
  })

  it('breaks top-1 ties on the live prediction', () => {
    const twins = [
      { ...small, name: 'a', top1: 0.8, live: { predictedLatencyMs: 9, idleLatencyMs: 4 } },
      { ...small, name: 'b', top1: 0.8, live: { predictedLatencyMs: 7, idleLatencyMs: 5 } },
    ]
    assert.equal(chosen(select({ budget: { minTop1: 0.5 } }, twins)), 'b')
  })
})
