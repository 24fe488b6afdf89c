/**
 * Cascades served: listed by GET /models, named like a model in /v1/classify, /v1/select and /v2,
 * chosen under a budget by the documented figures, stage 2 run only when stage 1 was unsure, the
 * image decoded once for every stage.
 */
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { describe, it } from 'node:test'
import request from 'supertest'
import type { FastifyInstance } from 'fastify'
import type { RunOptions } from '../../server/runtime/types.js'
import { buildTestApp, copyFixtureZoo, readReference } from '../helper.js'
import { fixtureImage } from '../routes/support.js'
import { fixtureCascade } from './fixture-cascade.js'

interface Calls {
  prepare: string[]
  runImage: string[]
  run: string[]
}

async function appWithCascade(
  t: TestContext,
  threshold: number,
): Promise<{ app: FastifyInstance; calls: Calls }> {
  const zooDir = await copyFixtureZoo(t, {
    mutate: (m) => {
      m.cascades = [fixtureCascade({ thresholds: [threshold] })]
    },
  })
  const app = await buildTestApp(t, { zooDir })
  const calls: Calls = { prepare: [], runImage: [], run: [] }
  const inference = app.inference
  const prepare = inference.prepareImage.bind(inference)
  const runImage = inference.runImage.bind(inference)
  const run = inference.run.bind(inference)
  inference.prepareImage = (name: string, image: Uint8Array, options: RunOptions & { maxPixels: number }) => {
    calls.prepare.push(name)
    return prepare(name, image, options)
  }
  inference.runImage = (name: string, image: Uint8Array, options: RunOptions & { maxPixels: number }) => {
    calls.runImage.push(name)
    return runImage(name, image, options)
  }
  inference.run = (name: string, input: Float32Array, dims: readonly number[], options?: RunOptions) => {
    calls.run.push(name)
    return run(name, input, dims, options)
  }
  return { app, calls }
}

interface CascadeBody {
  model: { name: string }
  predictions: { index: number; score: number }[]
  selection: { reason: string; explanation: string }
  cascade?: {
    name: string
    exitStage: number
    stages: { model: string; answered: boolean; confidence: number }[]
  }
}

interface SelectBody {
  model: { name: string; mflops: number }
  cascade?: { stages: string[] }
}
interface ListedCascade {
  name: string
  ready: boolean
  latencyMs: number | null
}
interface InferBody {
  model_name: string
  parameters: Record<string, unknown>
  outputs: { data: number[] }[]
}

const select = async (app: FastifyInstance, query: string) =>
  (await request(app.server).post(`/v1/select?${query}`).expect(200)).body as SelectBody

const classify = async (app: FastifyInstance, query: string) =>
  (
    await request(app.server)
      .post(`/v1/classify?${query}`)
      .set('content-type', 'image/jpeg')
      .send(await fixtureImage('photo.jpg'))
      .expect(200)
  ).body as CascadeBody

describe('cascades served', () => {
  it('threshold 0: stage 1 answers alone; threshold 1: stage 2 runs on the same decoded image', async (t) => {
    const sure = await appWithCascade(t, 0)
    const one = await classify(sure.app, 'model=fixture-cascade')
    assert.equal(one.cascade?.exitStage, 0)
    assert.deepEqual(
      one.cascade.stages.map((s) => [s.model, s.answered]),
      [['fixture-gray28-small', true]],
    )
    assert.equal(one.model.name, 'fixture-gray28-small')
    assert.deepEqual(sure.calls, {
      prepare: ['fixture-gray28-small'],
      runImage: [],
      run: ['fixture-gray28-small'],
    })

    const unsure = await appWithCascade(t, 1)
    const two = await classify(unsure.app, 'model=fixture-cascade&topK=10')
    assert.equal(two.cascade?.exitStage, 1)
    assert.deepEqual(
      two.cascade.stages.map((s) => [s.model, s.answered]),
      [
        ['fixture-gray28-small', false],
        ['fixture-gray28-large', true],
      ],
    )
    // decoded once, both stages ran on that tensor
    assert.deepEqual(unsure.calls, {
      prepare: ['fixture-gray28-small'],
      runImage: [],
      run: ['fixture-gray28-small', 'fixture-gray28-large'],
    })
    // the answer is the large model's own answer on the image
    const direct = await classify(unsure.app, 'model=fixture-gray28-large&topK=10')
    assert.deepEqual(
      two.predictions.map((p) => p.index),
      direct.predictions.map((p) => p.index),
    )
    assert.match(two.selection.explanation, /fixture-cascade is a cascade .*expected 0.5 MFLOPs/)
  })

  it('budgets: maxMflops compares the expected MFLOPs; GET /models and /v1/select list and pick it', async (t) => {
    const { app } = await appWithCascade(t, 0.9)
    // ≤ 0.6 MFLOPs: singles small (0.80) and res20 (0.84) fit; the cascade (expected 0.5, 0.87) wins
    const picked = await select(app, 'maxMflops=0.6')
    assert.equal(picked.model.name, 'fixture-cascade')
    assert.equal(picked.model.mflops, 0.5)
    assert.deepEqual(picked.cascade?.stages, ['fixture-gray28-small', 'fixture-gray28-large'])
    // ≤ 0.45 MFLOPs: the cascade's expected cost is over the budget
    const single = await select(app, 'maxMflops=0.45')
    assert.equal(single.model.name, 'fixture-gray28-res20')
    const served = await classify(app, 'maxMflops=0.6')
    assert.equal(served.cascade?.name, 'fixture-cascade')

    const listed = (await request(app.server).get('/models').expect(200)).body as {
      cascades: ListedCascade[]
    }
    assert.equal(listed.cascades.length, 1)
    const cascade = listed.cascades[0]
    assert.equal(cascade?.name, 'fixture-cascade')
    assert.equal(cascade.ready, true)
    assert.ok(typeof cascade.latencyMs === 'number' && cascade.latencyMs > 0)
    const none = (await request(app.server).get('/models?maxMflops=0.45').expect(200)).body as {
      cascades: ListedCascade[]
    }
    assert.equal(none.cascades.length, 0)
  })

  it('OIP v2: a cascade is a model (metadata, ready, infer row by row)', async (t) => {
    const { app, calls } = await appWithCascade(t, 1)
    const meta = await app.inject({ method: 'GET', url: '/v2/models/fixture-cascade' })
    assert.equal(meta.statusCode, 200)
    assert.deepEqual(meta.json<{ inputs: { shape: number[] }[] }>().inputs[0]?.shape, [-1, 1, 28, 28])
    assert.equal(
      (await app.inject({ method: 'GET', url: '/v2/models/fixture-cascade/ready' })).statusCode,
      200,
    )
    const { input } = await readReference('fixture-gray28-large')
    const row = input.data.slice(0, 28 * 28)
    const res = await app.inject({
      method: 'POST',
      url: '/v2/models/fixture-cascade/infer',
      payload: {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, 28, 28], data: [...row, ...row] }],
      },
    })
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json<InferBody>()
    assert.equal(body.model_name, 'fixture-cascade')
    assert.equal(body.parameters.cascadeAnsweredBy, 'fixture-gray28-large,fixture-gray28-large')
    assert.deepEqual(calls.run.sort(), [
      'fixture-gray28-large',
      'fixture-gray28-large',
      'fixture-gray28-small',
      'fixture-gray28-small',
    ])
    const direct = await app.inject({
      method: 'POST',
      url: '/v2/models/fixture-gray28-large/infer',
      payload: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: row }] },
    })
    const expected = direct.json<InferBody>().outputs[0]?.data ?? []
    assert.ok(expected.length > 0)
    const got = (body.outputs[0]?.data ?? []).slice(0, expected.length)
    got.forEach((v, i) => {
      assert.ok(Math.abs(v - (expected[i] ?? Number.NaN)) < 1e-5)
    })
  })
})
