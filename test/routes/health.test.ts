import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import request from 'supertest'
import type { ZooView } from '../../server/runtime/types.js'
import health from '../../server/routes/health.js'
import { buildTestApp } from '../helper.js'

describe('health routes', () => {
  it('GET /healthz answers while the process serves HTTP', async (t) => {
    const app = await buildTestApp(t)
    const res = await request(app.server).get('/healthz').expect(200)
    assert.deepEqual(res.body, { status: 'ok' })
  })

  it('GET /readyz is 200 with the ready model count once the zoo is warm', async (t) => {
    const app = await buildTestApp(t)
    const res = await request(app.server).get('/readyz').expect(200)
    assert.deepEqual(res.body, { status: 'ready', models: 4 })
  })

  it('GET /readyz is 503 NOT_READY while no model is ready', async (t) => {
    // The route alone over a zoo that is not ready (e.g. still loading, or shutting down).
    const app = Fastify()
    t.after(() => app.close())
    const zoo: ZooView = {
      list: () => [],
      names: () => [],
      get: () => undefined,
      readyModels: () => [],
      cascades: () => [],
      isReady: () => false,
      defaultModelName: () => {
        throw new Error('no zoo')
      },
    }
    app.decorate('zoo', zoo)
    await app.register(health)
    await app.ready()
    const res = await request(app.server).get('/readyz')
    assert.equal(res.status, 503)
    assert.deepEqual(Object.keys(res.body as object).sort(), ['code', 'error', 'message', 'statusCode'])
    assert.equal((res.body as { code: string }).code, 'NOT_READY')
    assert.equal((res.body as { statusCode: number }).statusCode, 503)
  })

  it('GET /readyz turns 503 as soon as shutdown begins', async (t) => {
    const app = await buildTestApp(t)
    await app.listen({ host: '127.0.0.1', port: 0 })
    // preClose marks the zoo not ready before the listener stops accepting.
    assert.equal(app.zoo.isReady(), true)
    const closing = app.close()
    await new Promise((resolve) => setImmediate(resolve))
    assert.equal(app.zoo.isReady(), false)
    await closing
  })
})
