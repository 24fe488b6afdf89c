/**
 * One selection for every route: for the same budget, POST /v1/select (what the web page asks),
 * POST /v1/classify, /v2 `alphanet-auto` infer (REST, and runInference, which gRPC ModelInfer
 * calls) pick the same model or cascade, and ask the zoo for the same live figures (the liveFor
 * rule). Over a stand-in runtime with fixed live figures, so the picks are deterministic.
 */
import assert from 'node:assert/strict'
import { describe, it, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import request from 'supertest'
import type { InferenceResult, ModelRunner, ZooView } from '../../server/runtime/types.js'
import { runInference } from '../../server/routes/v2/infer.js'
import { validateRequest } from '../../server/routes/v2/infer-request.js'
import { resolveTarget } from '../../server/routes/v2/models.js'
import type { ModelEntry } from '../../server/zoo/model-entry.js'
import { fixtureCascade } from '../cascade/fixture-cascade.js'
import { readFixtureManifest } from '../helper.js'
import { appOverRuntime, fixtureImage } from '../routes/support.js'

/** Predicted latency under load per fixture model, ms (the large model is slow right now). */
const PREDICTED: Record<string, number> = {
  'fixture-gray28-small': 2,
  'fixture-gray28-res20': 3,
  'fixture-gray28-large': 40,
  'fixture-rgb32': 60,
}

interface Fake {
  app: FastifyInstance
  /** The liveFor of every list() call that computes live figures ('' asks for none). */
  liveCalls: (string | undefined)[]
}

async function fakeApp(t: TestContext): Promise<Fake> {
  const manifest = await readFixtureManifest()
  const liveCalls: (string | undefined)[] = []
  const entries = manifest.models.map(({ latencyMs: _pipeline, ...m }): ModelEntry => {
    const predicted = PREDICTED[m.name] ?? 1
    return {
      ...m,
      path: `/nonexistent/${m.file}`,
      ready: true,
      latencyMs: { p50: 1, p95: 2, samples: 3 },
      live: {
        predictedLatencyMs: predicted,
        expectedLatencyMs: predicted,
        arrivalRatePerS: 0,
        utilization: 0,
        idleLatencyMs: 1,
        queueWaitMs: predicted - 1,
        batchSize: 1,
        serviceMs: 1,
        preprocessMs: 0,
        queued: 0,
        inFlight: 0,
        maxBatch: 1,
        contention: 1,
        batches: [{ batchSize: 1, ms: 1 }],
        observedBatches: 0,
      },
    }
  })
  const withoutLive = ({ live: _live, ...entry }: ModelEntry): ModelEntry => entry
  const zoo: ZooView = {
    list: (options = {}) => {
      if (options.liveFor !== '') liveCalls.push(options.liveFor)
      return entries.map((e) =>
        options.liveFor === undefined || options.liveFor === e.name ? e : withoutLive(e),
      )
    },
    names: () => entries.map((e) => e.name),
    get: (name) => entries.find((e) => e.name === name),
    readyModels: () => entries,
    isReady: () => true,
    defaultModelName: () => manifest.defaultModel ?? '',
    cascades: () => [fixtureCascade({ thresholds: [0.5] })],
  }
  const classesOf = (name: string): number =>
    entries.find((e) => e.name === name)?.labels.length ?? manifest.models[0]?.labels.length ?? 10
  // Confident logits (class 0), so a cascade's first stage answers.
  const answer = (name: string, rows: number): InferenceResult => {
    const classes = classesOf(name)
    const logits = new Float32Array(rows * classes)
    for (let r = 0; r < rows; r++) logits[r * classes] = 20
    return { logits, dims: [rows, classes], queueMs: 0, inferenceMs: 1, batchSize: rows, preprocessMs: 0 }
  }
  const inference: ModelRunner = {
    run: (name, _input, dims) => Promise.resolve(answer(name, dims[0] ?? 1)),
    runImage: (name) => Promise.resolve(answer(name, 1)),
    prepareImage: (name) => {
      const size = entries.find((e) => e.name === name)?.input.size ?? 28
      return Promise.resolve({ tensor: new Float32Array(size * size), preprocessMs: 0 })
    },
  }
  const app = await appOverRuntime(t, zoo, inference, { withOpenInference: true })
  return { app, liveCalls }
}

type Fields = Record<string, number | string>

/** [budget, what serves it]; the fixture's gray28 models and its cascade (0.5 expected MFLOPs, top-1 0.87). */
const CASES: [Fields, string][] = [
  [{}, 'fixture-gray28-large'],
  [{ maxMflops: 0.3 }, 'fixture-gray28-small'],
  [{ maxMflops: 1 }, 'fixture-cascade'],
  [{ minTop1: 0.86, maxMflops: 2.5 }, 'fixture-gray28-large'],
  [{ minTop1: 0.85, maxMflops: 1 }, 'fixture-cascade'],
  [{ maxLatencyMs: 10 }, 'fixture-gray28-res20'],
  [{ maxLatencyMs: 1, onInfeasible: 'smallest' }, 'fixture-gray28-small'],
  [{ model: 'fixture-cascade', maxMflops: 3 }, 'fixture-cascade'],
  [{ model: 'fixture-gray28-res20' }, 'fixture-gray28-res20'],
]

function query(fields: Fields): string {
  return new URLSearchParams(
    Object.entries(fields).map(([k, v]): [string, string] => [k, String(v)]),
  ).toString()
}

/** A gray 28×28 tensor request; the budget (without `model`) in `parameters`. */
function tensorRequest(fields: Fields) {
  const { model: _model, ...parameters } = fields
  return {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: new Array(784).fill(0) }],
    parameters,
  }
}

interface Picks {
  name: string
  live: (string | undefined)[]
}

async function pickOf(fake: Fake, route: string, fields: Fields): Promise<Picks> {
  fake.liveCalls.length = 0
  const { app } = fake
  const v2Name = typeof fields.model === 'string' ? fields.model : 'alphanet-auto'
  let name: string
  switch (route) {
    case 'v1/select': {
      const res = await request(app.server).post(`/v1/select?${query(fields)}`)
      assert.equal(res.status, 200, JSON.stringify(res.body))
      const body = res.body as { model: { name: string } | null; outcome: string }
      name = body.model?.name ?? body.outcome
      break
    }
    case 'v1/classify': {
      const res = await request(app.server)
        .post(`/v1/classify?${query(fields)}`)
        .set('content-type', 'image/png')
        .send(await fixtureImage('gray.png'))
      assert.equal(res.status, 200, JSON.stringify(res.body))
      name = (res.body as { cascade?: { name: string }; model: { name: string } }).cascade?.name ?? ''
      name ||= (res.body as { model: { name: string } }).model.name
      break
    }
    case 'v2/infer': {
      const res = await request(app.server).post(`/v2/models/${v2Name}/infer`).send(tensorRequest(fields))
      assert.equal(res.status, 200, JSON.stringify(res.body))
      name = (res.body as { model_name: string }).model_name
      break
    }
    default: {
      // What gRPC ModelInfer calls, with the request it converts a protobuf message into.
      const outcome = await runInference(app, {
        target: resolveTarget(app.zoo, v2Name, undefined),
        request: validateRequest(tensorRequest(fields)),
        binary: Buffer.alloc(0),
        requestId: 'one-selection',
        run: {},
        observation: { api: 'grpc' },
      })
      name = outcome.response.model_name
    }
  }
  return { name, live: [...fake.liveCalls] }
}

describe('one selection for every route', () => {
  it('picks the same model or cascade for the same budget, with the same live figures', async (t) => {
    const fake = await fakeApp(t)
    for (const [fields, expected] of CASES) {
      const picks = new Map<string, Picks>()
      for (const route of ['v1/select', 'v1/classify', 'v2/infer', 'grpc']) {
        picks.set(route, await pickOf(fake, route, fields))
      }
      for (const [route, pick] of picks) {
        assert.equal(pick.name, expected, `${route} with ${JSON.stringify(fields)}`)
        assert.deepEqual(
          pick.live,
          picks.get('v1/select')?.live,
          `${route} liveFor with ${JSON.stringify(fields)}`,
        )
      }
    }
  })

  it('alphanet-auto chooses only among models and cascades that accept the tensor', async (t) => {
    const fake = await fakeApp(t)
    // fixture-rgb32 is the only model with top-1 ≥ 0.9; a gray tensor cannot go to it.
    const select = await pickOf(fake, 'v1/select', { minTop1: 0.9 })
    assert.equal(select.name, 'fixture-rgb32')
    const res = await request(fake.app.server)
      .post('/v2/models/alphanet-auto/infer')
      .send(tensorRequest({ minTop1: 0.9 }))
    assert.equal(res.status, 400)
  })
})
