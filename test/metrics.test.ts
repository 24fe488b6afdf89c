/**
 * GET /metrics: the Prometheus exposition after a known mix of requests — per-model requests,
 * failures by code, queue/compute/total latency histograms, batch sizes, budget outcomes,
 * selections, readiness, the load-shedding and batch hooks, default process metrics — and label
 * values that never come from request input.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import request from 'supertest'
import { ServerMetrics, UNKNOWN_MODEL } from '../server/metrics.js'
import { FIXTURE_MODELS } from './helper.js'
import { fixtureImage, startApp } from './routes/support.js'

const SMALL = 'fixture-gray28-small'
const RES20 = 'fixture-gray28-res20'
const LARGE = 'fixture-gray28-large'

/** `name{label="v",…}` → value, for every sample line of the exposition text. */
function samples(text: string): Map<string, number> {
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    map.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return map
}

describe('GET /metrics', () => {
  let app: FastifyInstance
  let text: string
  let contentType: string
  let values: Map<string, number>
  const value = (series: string): number => {
    const v = values.get(series)
    assert.ok(
      v !== undefined,
      `no series ${series} in\n${text
        .split('\n')
        .filter((l) => l.startsWith('alphanet_'))
        .join('\n')}`,
    )
    return v
  }

  before(async () => {
    app = await startApp()
    const jpeg = await fixtureImage('photo.jpg')
    const classify = (query: string) =>
      request(app.server).post(`/v1/classify${query}`).set('content-type', 'image/jpeg').send(jpeg)
    assert.equal((await classify('')).status, 200) // default model (LARGE)
    assert.equal((await classify('?maxMflops=1')).status, 200) // RES20, budget met
    assert.equal((await classify('?maxMflops=0.01&onInfeasible=smallest')).status, 200) // SMALL, missed
    assert.equal((await classify('?maxMflops=0.01')).status, 422) // infeasible
    assert.equal((await classify('?topK=zero')).status, 400) // before selection
    assert.equal((await classify('?model=evil-name-from-request')).status, 404)
    const v2 = await app.inject({
      method: 'POST',
      url: `/v2/models/${SMALL}/infer`,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({
        inputs: [
          {
            name: 'input',
            shape: [3, 1, 28, 28],
            datatype: 'FP32',
            data: new Array<number>(3 * 784).fill(0.1),
          },
        ],
      }),
    })
    assert.equal(v2.statusCode, 200, v2.body)
    assert.equal(
      (await app.inject({ method: 'POST', url: '/v2/models/another-evil-name/infer', payload: '{}' }))
        .statusCode,
      404,
    )
    app.metrics.recordShed(SMALL, 'queue-full')
    app.metrics.recordShed(undefined, 'deadline')
    app.metrics.recordShed('not-a-zoo-model', 'deadline')
    app.metrics.recordBatch(LARGE, 8)
    const res = await request(app.server).get('/metrics')
    assert.equal(res.status, 200)
    text = res.text
    contentType = String(res.headers['content-type'])
    values = samples(text)
  })
  after(() => app.close())

  it('is the Prometheus text format', () => {
    assert.match(contentType, /^text\/plain; version=0\.0\.4/)
    assert.match(text, /^# HELP alphanet_inference_requests_total /m)
    assert.match(text, /^# TYPE alphanet_inference_request_seconds histogram$/m)
  })

  it('counts served requests per model and API, and how each model was selected', () => {
    assert.equal(value(`alphanet_inference_requests_total{model="${LARGE}",api="v1"}`), 1)
    assert.equal(value(`alphanet_inference_requests_total{model="${RES20}",api="v1"}`), 1)
    assert.equal(value(`alphanet_inference_requests_total{model="${SMALL}",api="v1"}`), 1)
    assert.equal(value(`alphanet_inference_requests_total{model="${SMALL}",api="v2"}`), 1)
    assert.equal(value(`alphanet_model_selections_total{model="${LARGE}",reason="default"}`), 1)
    assert.equal(value(`alphanet_model_selections_total{model="${RES20}",reason="best-within-budget"}`), 1)
    assert.equal(value(`alphanet_model_selections_total{model="${SMALL}",reason="smallest-fallback"}`), 1)
    assert.equal(value(`alphanet_model_selections_total{model="${SMALL}",reason="explicit"}`), 1)
  })

  it('counts failures by model and catalogue code', () => {
    assert.equal(
      value('alphanet_inference_failures_total{model="none",api="v1",code="BUDGET_INFEASIBLE"}'),
      1,
    )
    assert.equal(
      value('alphanet_inference_failures_total{model="none",api="v1",code="INVALID_PARAMETER"}'),
      1,
    )
    assert.equal(
      value(`alphanet_inference_failures_total{model="${UNKNOWN_MODEL}",api="v1",code="MODEL_NOT_FOUND"}`),
      1,
    )
    assert.equal(value('alphanet_inference_failures_total{model="none",api="v2",code="MODEL_NOT_FOUND"}'), 1)
  })

  it('counts budget outcomes: met, missed (served by onInfeasible=smallest), infeasible', () => {
    assert.equal(value(`alphanet_budget_requests_total{model="${RES20}",outcome="met"}`), 1)
    assert.equal(value(`alphanet_budget_requests_total{model="${SMALL}",outcome="missed"}`), 1)
    assert.equal(value('alphanet_budget_requests_total{model="none",outcome="infeasible"}'), 1)
    // Requests without a budget are not budget requests.
    assert.equal(values.get(`alphanet_budget_requests_total{model="${LARGE}",outcome="met"}`), undefined)
  })

  it('has queue, compute and total latency histograms and batch sizes per model', () => {
    for (const model of [LARGE, RES20, SMALL]) {
      assert.equal(value(`alphanet_inference_queue_seconds_count{model="${model}"}`), model === SMALL ? 2 : 1)
      assert.equal(
        value(`alphanet_inference_compute_seconds_count{model="${model}"}`),
        model === SMALL ? 2 : 1,
      )
      assert.ok(value(`alphanet_inference_compute_seconds_sum{model="${model}"}`) > 0)
      assert.equal(
        value(`alphanet_inference_queue_seconds_bucket{le="+Inf",model="${model}"}`),
        model === SMALL ? 2 : 1,
      )
    }
    assert.equal(value(`alphanet_inference_request_seconds_count{model="${LARGE}",api="v1"}`), 1)
    assert.ok(value(`alphanet_inference_request_seconds_sum{model="${LARGE}",api="v1"}`) > 0)
    // v1: one image per request; v2: the batch of 3; then recordBatch(LARGE, 8) from the hook.
    assert.equal(value(`alphanet_inference_batch_size_sum{model="${SMALL}"}`), 1 + 3)
    assert.equal(value(`alphanet_inference_batch_size_sum{model="${LARGE}"}`), 1 + 8)
    assert.equal(value(`alphanet_inference_batch_size_bucket{le="2",model="${SMALL}"}`), 1)
    assert.equal(value(`alphanet_inference_batch_size_bucket{le="4",model="${SMALL}"}`), 2)
  })

  it('counts shed requests through the hook', () => {
    assert.equal(value(`alphanet_shed_requests_total{model="${SMALL}",reason="queue-full"}`), 1)
    assert.equal(value('alphanet_shed_requests_total{model="none",reason="deadline"}'), 1)
    assert.equal(value(`alphanet_shed_requests_total{model="${UNKNOWN_MODEL}",reason="deadline"}`), 1)
  })

  it('reports readiness per zoo model and HTTP requests per route template', () => {
    for (const model of FIXTURE_MODELS) assert.equal(value(`alphanet_model_ready{model="${model}"}`), 1)
    assert.equal(
      value('alphanet_http_requests_total{method="POST",route="/v1/classify",status_code="200"}'),
      3,
    )
    assert.equal(
      value('alphanet_http_requests_total{method="POST",route="/v1/classify",status_code="422"}'),
      1,
    )
    assert.equal(
      value('alphanet_http_requests_total{method="POST",route="/v2/models/:name/infer",status_code="404"}'),
      1,
    )
  })

  it('never turns request input into label values', () => {
    assert.doesNotMatch(text, /evil-name/)
    assert.doesNotMatch(text, /not-a-zoo-model/)
  })

  it('includes the default Node.js process metrics', () => {
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.match(text, new RegExp(`^${name} `, 'm'), name)
    }
  })
})

describe('ServerMetrics', () => {
  it('once a batcher reports executed batches, request-level batch sizes are no longer counted', async () => {
    const metrics = new ServerMetrics({ modelNames: () => ['m'], modelReadiness: () => [] })
    metrics.recordExecution('m', { batchSize: 1, queueMs: 1, inferenceMs: 2 })
    metrics.recordBatch('m', 4)
    metrics.recordExecution('m', { batchSize: 1, queueMs: 1, inferenceMs: 2 })
    const text = await metrics.scrape()
    assert.match(text, /^alphanet_inference_batch_size_sum\{model="m"\} 5$/m)
    assert.match(text, /^alphanet_inference_batch_size_count\{model="m"\} 2$/m)
    assert.match(text, /^alphanet_inference_compute_seconds_count\{model="m"\} 2$/m)
  })

  it('keeps each app in its own registry; default metrics are shared, not duplicated', async () => {
    const zoo = { modelNames: () => ['m'], modelReadiness: () => [{ name: 'm', ready: true }] }
    const a = new ServerMetrics(zoo)
    const b = new ServerMetrics(zoo)
    a.recordServed({ api: 'v1', model: 'm', selectionReason: 'default', budget: 'none' }, 5)
    const textA = await a.scrape()
    const textB = await b.scrape()
    assert.match(textA, /^alphanet_inference_requests_total\{model="m",api="v1"\} 1$/m)
    assert.doesNotMatch(textB, /^alphanet_inference_requests_total\{/m)
    assert.equal(textA.match(/^# TYPE process_cpu_user_seconds_total /gm)?.length, 1)
    assert.equal(a.modelLabel('m'), 'm')
    assert.equal(a.modelLabel('x'), UNKNOWN_MODEL)
    assert.equal(a.modelLabel(undefined), 'none')
  })
})

describe('shed requests from the catalogue answers', () => {
  it('rate-limited answers on v1 and v2 routes count as shed, once each', async () => {
    const app = await startApp({ rateLimitMax: 1, rateLimitWindowMs: 60_000, maxBatchSize: 1 })
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 200)
      const refused = await app.inject({ method: 'GET', url: '/models' })
      assert.equal(refused.statusCode, 429)
      const v2 = await app.inject({
        method: 'POST',
        url: '/v2/models/fixture-gray28-small/infer',
        payload: '{}',
      })
      assert.equal(v2.statusCode, 429)
      const values = samples((await app.inject({ method: 'GET', url: '/metrics' })).body)
      assert.equal(values.get('alphanet_shed_requests_total{model="none",reason="rate-limited"}'), 2)
      assert.equal(
        values.get('alphanet_inference_failures_total{model="none",api="v2",code="RATE_LIMITED"}'),
        1,
      )
    } finally {
      await app.close()
    }
  })
})
