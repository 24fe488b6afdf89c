/**
 * Load shedding and rate limiting: over a pressure limit (event-loop delay, heap, RSS) requests get
 * 503 OVERLOADED with Retry-After while probes and metrics keep answering, and service resumes
 * when the pressure is gone; with RATE_LIMIT_MAX set, a client over its quota gets 429
 * RATE_LIMITED with Retry-After (probes exempt); by default there is no rate limit at all.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { PRESSURE_RETRY_AFTER_S, STARTUP_GRACE_MS } from '../../server/plugins/security.js'
import { buildApp } from '../../server/app.js'
import { buildTestApp, TEST_CONFIG } from '../helper.js'
import { jpegDeclaring } from '../fuzz/corpus.js'
import { fixtureImage } from '../routes/support.js'

/** Waits until under-pressure has taken its first sample (it samples once a second). */
async function waitForSample(app: FastifyInstance): Promise<void> {
  const usage = (app as unknown as { memoryUsage: () => { rssBytes: number } }).memoryUsage
  const deadline = Date.now() + 10_000
  while (usage().rssBytes === 0) {
    if (Date.now() > deadline) throw new Error('under-pressure never sampled')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('load shedding', () => {
  it('over the RSS limit: 503 OVERLOADED + Retry-After; probes and metrics exempt', async (t) => {
    const app = await buildTestApp(t, { maxRssBytes: 1 })
    await waitForSample(app)
    const shed = await app.inject({ method: 'GET', url: '/models' })
    assert.equal(shed.statusCode, 503, shed.body)
    assert.equal(shed.headers['retry-after'], String(PRESSURE_RETRY_AFTER_S))
    const body = JSON.parse(shed.body) as { code: string; reason: string; retryAfterS: number }
    assert.equal(body.code, 'OVERLOADED')
    assert.equal(body.reason, 'rssBytes')
    assert.equal(body.retryAfterS, PRESSURE_RETRY_AFTER_S)

    const image = await fixtureImage('gray.png')
    const classify = await app.inject({
      method: 'POST',
      url: '/v1/classify',
      headers: { 'content-type': 'image/png' },
      payload: image,
    })
    assert.equal(classify.statusCode, 503)
    assert.equal((JSON.parse(classify.body) as { code: string }).code, 'OVERLOADED')

    // The Open Inference Protocol scope answers in its own error format, same status.
    const oip = await app.inject({ method: 'GET', url: '/v2/models/fixture-rgb32' })
    assert.equal(oip.statusCode, 503)
    assert.equal(oip.headers['retry-after'], String(PRESSURE_RETRY_AFTER_S))

    for (const url of ['/healthz', '/readyz', '/metrics', '/v2/health/live', '/v2/health/ready']) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 200, `${url} was shed: ${res.body.slice(0, 200)}`)
    }
  })

  it('over the heap limit: shed the same way', async (t) => {
    const app = await buildTestApp(t, { maxHeapUsedBytes: 1 })
    await waitForSample(app)
    const res = await app.inject({ method: 'POST', url: '/v1/select' })
    assert.equal(res.statusCode, 503)
    assert.equal((JSON.parse(res.body) as { reason: string }).reason, 'heapUsedBytes')
  })

  it('a stall during start-up does not shed the first requests (regression)', async (t) => {
    const app = await buildApp({ ...TEST_CONFIG, maxEventLoopDelayMs: 50 })
    t.after(() => app.close())
    // A slow start-up blocks the loop across sampling intervals before the server is ready; the
    // next sample then has no data and under-pressure reports an infinite delay. Without the grace
    // the first second of requests to an idle, ready server got 503 OVERLOADED.
    const until = Date.now() + 2500
    while (Date.now() < until) {
      // busy
    }
    await app.ready()
    for (let i = 0; i < 8; i++) {
      const res = await app.inject({ method: 'GET', url: '/models' })
      assert.equal(res.statusCode, 200, res.body)
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
  })

  it('a saturated event loop sheds load until it recovers', async (t) => {
    const app = await buildTestApp(t, { maxEventLoopDelayMs: 50 })
    await waitForSample(app)
    // Past the start-up grace, lag counts.
    await new Promise((resolve) => setTimeout(resolve, STARTUP_GRACE_MS))
    assert.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 200)
    // Saturate the loop the way CPU-bound work on it would: 150 ms busy slices back to back, so
    // every event-loop tick is late (under-pressure averages the delay over each second).
    let hogging = true
    const hog = () => {
      if (!hogging) return
      const until = performance.now() + 150
      while (performance.now() < until) {
        // busy
      }
      setImmediate(hog)
    }
    setImmediate(hog)
    let shed = false
    try {
      const deadline = Date.now() + 8_000
      while (Date.now() < deadline && !shed) {
        const res = await app.inject({ method: 'GET', url: '/models' })
        if (res.statusCode === 503) {
          assert.equal((JSON.parse(res.body) as { reason: string }).reason, 'eventLoopDelay')
          shed = true
        }
        assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
        // inject() alone never leaves the microtask queue; let the sampling timer run.
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    } finally {
      hogging = false
    }
    assert.ok(shed, 'requests were shed while the loop was saturated')
    let recovered = false
    const deadline = Date.now() + 8_000
    while (Date.now() < deadline && !recovered) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      recovered = (await app.inject({ method: 'GET', url: '/models' })).statusCode === 200
    }
    assert.ok(recovered, 'service resumed once the loop recovered')
  })

  it('the defaults shed only on a second-long event-loop stall, never on memory', async (t) => {
    const app = await buildTestApp(t)
    assert.equal(app.config.maxEventLoopDelayMs, 1000)
    assert.equal(app.config.maxHeapUsedBytes, 0)
    assert.equal(app.config.maxRssBytes, 0)
    assert.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 200)
  })
})

describe('front-door bound (MAX_IN_FLIGHT)', () => {
  it('requests beyond it get 503 OVERLOADED at once; probes pass; capacity returns as requests finish', async (t) => {
    const app = await buildTestApp(t, { maxInFlight: 2 })
    const slow = await jpegDeclaring(3000, 3000)
    const classify = (payload: Buffer) =>
      app.inject({ method: 'POST', url: '/v1/classify', headers: { 'content-type': 'image/jpeg' }, payload })
    const busy = [classify(slow), classify(slow)]
    await new Promise((resolve) => setTimeout(resolve, 20))
    const refused = await app.inject({ method: 'GET', url: '/models' })
    assert.equal(refused.statusCode, 503, refused.body)
    const body = JSON.parse(refused.body) as { code: string; reason: string }
    assert.deepEqual([body.code, body.reason], ['OVERLOADED', 'inFlight'])
    assert.equal(refused.headers['retry-after'], '1')
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    for (const res of await Promise.all(busy)) assert.equal(res.statusCode, 200, res.body.slice(0, 200))
    // Both finished: the count went back down (twice in a row, so not a one-off).
    assert.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 200)
    assert.equal((await app.inject({ method: 'GET', url: '/models' })).statusCode, 200)
  })

  it('is on by default (1024)', async (t) => {
    const app = await buildTestApp(t)
    assert.equal(app.config.maxInFlight, 1024)
  })
})

describe('rate limiting', () => {
  it('is off by default: no quota headers, no 429', async (t) => {
    const app = await buildTestApp(t)
    for (let i = 0; i < 30; i++) {
      const res = await app.inject({ method: 'GET', url: '/models' })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['x-ratelimit-limit'], undefined)
    }
  })

  it('RATE_LIMIT_MAX per window per client: 429 RATE_LIMITED with Retry-After; probes exempt', async (t) => {
    const app = await buildTestApp(t, { rateLimitMax: 3, rateLimitWindowMs: 60_000 })
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'GET', url: '/models' })
      assert.equal(res.statusCode, 200)
      assert.equal(res.headers['x-ratelimit-limit'], '3')
    }
    const limited = await app.inject({ method: 'POST', url: '/v1/select' })
    assert.equal(limited.statusCode, 429, limited.body)
    const body = JSON.parse(limited.body) as { code: string; retryAfterS: number }
    assert.equal(body.code, 'RATE_LIMITED')
    assert.ok(body.retryAfterS >= 1 && body.retryAfterS <= 60)
    assert.equal(limited.headers['retry-after'], String(body.retryAfterS))
    // Another client address has its own quota.
    const other = await app.inject({ method: 'GET', url: '/models', remoteAddress: '10.1.2.3' })
    assert.equal(other.statusCode, 200)
    for (const url of ['/healthz', '/readyz', '/metrics']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url)
    }
  })
})
