import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import request from 'supertest'
import type { ModelDetail, ModelSummary } from '../../server/schemas/models.js'
import { FIXTURE_MODELS, readFixtureManifest } from '../helper.js'
import { assertError, startApp } from './support.js'

describe('model routes', () => {
  let app: FastifyInstance
  before(async () => {
    app = await startApp()
  })
  after(() => app.close())

  describe('GET /models', () => {
    const list = async (query = ''): Promise<ModelSummary[]> => {
      const res = await request(app.server).get(`/models${query}`).expect(200)
      return (res.body as { models: ModelSummary[] }).models
    }

    it('lists every model in manifest order with cost, accuracy, latency and readiness', async () => {
      const manifest = await readFixtureManifest()
      const models = await list()
      assert.deepEqual(
        models.map((m) => m.name),
        [...FIXTURE_MODELS],
      )
      for (const [i, model] of models.entries()) {
        const declared = manifest.models[i]!
        assert.equal(model.mflops, declared.mflops)
        assert.equal(model.params, declared.params)
        assert.equal(model.top1, declared.top1)
        assert.equal(model.resolution, declared.resolution)
        assert.equal(model.inputSize, declared.input.size)
        assert.equal(model.classes, declared.labels.length)
        assert.equal(model.ready, true)
        assert.equal(model.executionProvider, 'cpu')
        assert.ok(model.latencyMs && model.latencyMs.p50 > 0 && model.latencyMs.p95 >= model.latencyMs.p50)
        assert.equal(model.default, model.name === manifest.defaultModel)
        assert.equal(model.reason, undefined)
      }
    })

    it('filters by budget exactly as selection judges (bounds inclusive)', async () => {
      assert.deepEqual(
        (await list('?maxMflops=0.403372')).map((m) => m.name),
        ['fixture-gray28-small', 'fixture-gray28-res20'],
      )
      assert.deepEqual(
        (await list('?minTop1=0.88')).map((m) => m.name),
        ['fixture-gray28-large', 'fixture-rgb32'],
      )
      assert.deepEqual(
        (await list('?minTop1=0.85&maxMflops=2.1')).map((m) => m.name),
        ['fixture-gray28-large'],
      )
      assert.deepEqual(await list('?maxMflops=0.1'), [])
      const all = await list()
      // Latency budgets compare the live prediction (nothing runs between these requests, so the
      // figures do not move).
      const predicted = all.map((m) => m.live!.predictedLatencyMs)
      assert.equal((await list(`?maxLatencyMs=${Math.max(...predicted)}`)).length, 4)
      const fastest = Math.min(...predicted)
      assert.deepEqual(
        (await list(`?maxLatencyMs=${fastest}`)).map((m) => m.name),
        all.filter((m) => m.live!.predictedLatencyMs === fastest).map((m) => m.name),
      )
    })

    it('rejects unknown, repeated and malformed filters with INVALID_PARAMETER', async () => {
      for (const query of [
        '?foo=1',
        '?maxMflops=1&maxMflops=2',
        '?maxMflops=abc',
        '?maxMflops=NaN',
        '?maxMflops=-1',
        '?maxMflops=0',
        '?maxMflops=1e999',
        '?maxMflops=2000000',
        '?maxMflops= 5',
        '?maxMflops=0x10',
        '?maxMflops=',
        '?minTop1=1.5',
        '?maxLatencyMs=Infinity',
        '?model=fixture-rgb32',
      ]) {
        const body = assertError(await request(app.server).get(`/models${query}`), 'INVALID_PARAMETER')
        assert.ok(typeof body.parameter === 'string', query)
      }
    })
  })

  describe('GET /models/:name', () => {
    it('returns the full model: contract, labels, provenance', async () => {
      const manifest = await readFixtureManifest()
      const declared = manifest.models.find((m) => m.name === 'fixture-rgb32')!
      const res = await request(app.server).get('/models/fixture-rgb32').expect(200)
      const model = res.body as ModelDetail
      assert.deepEqual(model.input, declared.input)
      assert.deepEqual(model.labels, declared.labels)
      assert.deepEqual(model.arch, declared.arch)
      assert.deepEqual(model.evaluation, declared.evaluation)
      assert.equal(model.sha256, declared.sha256)
      assert.equal(model.opset, declared.opset)
      assert.equal(model.pipelineLatencyMs, declared.latencyMs ?? null)
      assert.equal(model.ready, true)
    })

    it('unknown name → 404 MODEL_NOT_FOUND naming it', async () => {
      const body = assertError(await request(app.server).get('/models/no-such-model'), 'MODEL_NOT_FOUND')
      assert.equal(body.model, 'no-such-model')
    })

    it('names outside the model-name pattern are refused before any lookup (never a path)', async () => {
      for (const name of ['..%2F..%2Fetc%2Fpasswd', 'UPPER', '.hidden', 'a'.repeat(65), 'white%20space']) {
        const body = assertError(await request(app.server).get(`/models/${name}`), 'INVALID_PARAMETER')
        assert.equal(body.parameter, 'name')
      }
    })

    it('an undecodable URL is a coded 400, not Fastify’s default body', async () => {
      assertError(await request(app.server).get('/models/%E0%A4%A'), 'INVALID_PARAMETER')
    })

    it('takes no query parameters', async () => {
      assertError(await request(app.server).get('/models/fixture-rgb32?x=1'), 'INVALID_PARAMETER')
    })
  })

  describe('unknown routes', () => {
    it('404 ROUTE_NOT_FOUND for unknown paths and methods', async () => {
      assertError(await request(app.server).get('/v3/models'), 'ROUTE_NOT_FOUND')
      assertError(await request(app.server).delete('/models/fixture-rgb32'), 'ROUTE_NOT_FOUND')
      assertError(await request(app.server).get('/v1/classify'), 'ROUTE_NOT_FOUND')
    })
  })
})
