/**
 * Admission's one entry, stage by stage: each reason a request is refused, with its code, and
 * the load-only judgement (a budget an idle server meets is never 422).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { admit } from '../../server/admission/admit.js'
import { ModelLatency } from '../../server/runtime/latency-model.js'
import { modelState } from '../../server/runtime/model-queue.js'
import type { Load } from '../../server/runtime/prediction.js'
import { selectModel } from '../../server/selection/selector.js'
import type { Servable } from '../../server/selection/choose.js'
import type { ModelEntry } from '../../server/zoo/model-entry.js'

const SETTINGS = { maxBatchSize: 8, maxQueueDelayMs: 0, maxQueueSize: 4, inferenceTimeoutMs: 30_000 }

function load(state: ReturnType<typeof modelState>): (now: number) => Load {
  return () => ({
    models: new Map([[state.name, state]]),
    running: [],
    workers: 1,
    idleWorkers: 1,
    arrivalRate: 0,
    handoffMs: 0.2,
  })
}

/** The fields selection and admission read of a zoo model (a full ModelEntry has many more). */
function model(name: string, predictedLatencyMs: number, idleLatencyMs: number): Servable {
  const entry = { name, mflops: 1, top1: 0.9, ready: true, live: { predictedLatencyMs, idleLatencyMs } }
  return entry as unknown as Servable
}

describe('admit()', () => {
  it('front door: MAX_IN_FLIGHT and pressure → 503 OVERLOADED with Retry-After', () => {
    assert.equal(admit({ stage: 'in-flight', inFlight: 3, maxInFlight: 4 }), undefined)
    assert.equal(admit({ stage: 'in-flight', inFlight: 9, maxInFlight: 0 }), undefined)
    const full = admit({ stage: 'in-flight', inFlight: 4, maxInFlight: 4 })
    assert.equal(full?.code, 'OVERLOADED')
    assert.equal(full.details.retryAfterS, 1)
    assert.equal(admit({ stage: 'pressure', underPressure: false }), undefined)
    const pressed = admit({ stage: 'pressure', underPressure: true, pressure: 'heapUsedBytes', measured: 9 })
    assert.equal(pressed.code, 'OVERLOADED')
    assert.equal(pressed.details.reason, 'heapUsedBytes')
    assert.equal(admit({ stage: 'rate-limit', max: 2, windowMs: 1000, retryAfterS: 1 }).code, 'RATE_LIMITED')
  })

  it('selection: a budget only the load breaks → 503, once spent → 504, impossible even idle → 422', () => {
    const models = [model('a', 80, 3), model('b', 120, 9)]
    const judge = (maxLatencyMs: number, elapsedMs = 0) => {
      const request = { budget: { maxLatencyMs }, onInfeasible: 'reject' as const, elapsedMs }
      return admit({ stage: 'selection', outcome: selectModel(models, request), request })?.code
    }
    assert.equal(judge(50), 'OVERLOADED')
    assert.equal(judge(50, 54), 'DEADLINE_EXCEEDED')
    assert.equal(judge(2), 'BUDGET_INFEASIBLE')
    assert.equal(judge(100), undefined)
  })

  it('lookup by name: no zoo yet → 503 NOT_READY, unknown → 404, not ready → 503 with the reason', () => {
    const entry = (ready: boolean, reason?: string) => ({ name: 'm', ready, reason }) as unknown as ModelEntry
    assert.equal(admit({ stage: 'lookup', zooLoaded: false })?.code, 'NOT_READY')
    assert.equal(admit({ stage: 'lookup', zooLoaded: true }), undefined)
    const unknown = admit({ stage: 'lookup', zooLoaded: true, model: 'x', entry: undefined })
    assert.equal(unknown?.code, 'MODEL_NOT_FOUND')
    assert.equal(unknown.details.model, 'x')
    const warming = admit({ stage: 'lookup', zooLoaded: true, model: 'm', entry: entry(false, 'warming') })
    assert.equal(warming?.code, 'MODEL_NOT_READY')
    assert.equal(warming.details.reason, 'warming')
    assert.equal(admit({ stage: 'lookup', zooLoaded: true, model: 'm', entry: entry(true) }), undefined)
  })

  it('runtime: unloading, a full queue (503 with a drain estimate) and an unreachable deadline (504)', () => {
    const state = modelState({ name: 'm', maxBatch: 8, latency: new ModelLatency(new Map([[1, 2]]), 0) }, 8)
    const queue = (rows: number, deadline: number, aheadRows = 0, closing = false) =>
      admit({
        stage: 'queue',
        model: 'm',
        closing,
        state,
        request: { rows, deadline, now: 0, beforeMs: 0, aheadRows },
        load: load(state),
        settings: SETTINGS,
      })?.code
    assert.equal(queue(1, 100), undefined)
    assert.equal(queue(1, 100, 0, true), 'MODEL_NOT_READY')
    assert.equal(queue(2, 100, 3), 'OVERLOADED')
    assert.equal(queue(1, 1), 'DEADLINE_EXCEEDED')
    assert.equal(
      admit({ stage: 'session', model: 'm', closing: false, loaded: false })?.code,
      'MODEL_NOT_READY',
    )
    assert.equal(
      admit({ stage: 'waiting', model: 'm', deadline: 10, now: 9, neededMs: 2 })?.code,
      'DEADLINE_EXCEEDED',
    )
    assert.equal(admit({ stage: 'waiting', model: 'm', deadline: 10, now: 7, neededMs: 2 }), undefined)
  })
})
