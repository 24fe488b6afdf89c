import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import request from 'supertest'
import { buildApp } from '../../server/app.js'
import { ConfigError } from '../../server/config.js'
import { diagnoseCudaFailure } from '../../server/runtime/cuda-diagnostics.js'
import { buildTestApp, createBrokenZoo, FIXTURE_MODELS, TEST_CONFIG } from '../helper.js'

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

describe('buildApp', () => {
  it('rejects invalid settings before building anything', async () => {
    await assert.rejects(buildApp({ ...TEST_CONFIG, workerThreads: 0 }), ConfigError)
  })

  it('fails when no model of the zoo can be loaded, saying why', async (t) => {
    const zooDir = await createBrokenZoo(t, { includeGood: false })
    await assert.rejects(async () => {
      const app = await buildApp({ ...TEST_CONFIG, zooDir })
      await app.ready()
    }, /no model of .* can be loaded:\n {2}broken-missing-file: model file broken-missing-file.onnx is missing/)
  })

  it('fails on a zoo directory without a manifest', async () => {
    await assert.rejects(async () => {
      const app = await buildApp({ ...TEST_CONFIG, zooDir: '/nonexistent-zoo' })
      await app.ready()
    }, /\/nonexistent-zoo\/manifest.json not found/)
  })

  it('EXECUTION_PROVIDER=auto serves every model and reports the provider each one runs on', async (t) => {
    const app = await buildTestApp(t, { executionProvider: 'auto' })
    const res = await request(app.server).get('/models').expect(200)
    const models = (res.body as { models: { name: string; executionProvider: string; ready: boolean }[] })
      .models
    assert.deepEqual(
      models.map((m) => m.name),
      [...FIXTURE_MODELS],
    )
    const expected = diagnoseCudaFailure('').missing.length > 0 ? 'cpu' : 'cuda'
    for (const model of models) {
      assert.equal(model.ready, true)
      assert.equal(model.executionProvider, expected)
    }
  })

  it('finishes an in-flight request during close() and accepts no new connection', async () => {
    const app = await buildApp(TEST_CONFIG)
    let entered!: () => void
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve))
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    // A request that is mid-inference when the shutdown starts.
    app.get('/test/slow', async () => {
      entered()
      await released
      const result = await app.inference.run('fixture-gray28-small', new Float32Array(784), [1, 1, 28, 28])
      return { classes: result.dims[1] }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo

    const inFlight = get(port, '/test/slow')
    await handlerEntered
    let closed = false
    const closing = app.close().then(() => (closed = true))
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.equal(closed, false, 'close() waits for the in-flight request')
    await assert.rejects(get(port, '/healthz'), /ECONNREFUSED|ECONNRESET|socket hang up/)

    release()
    const response = await inFlight
    assert.equal(response.status, 200)
    assert.deepEqual(JSON.parse(response.body), { classes: 10 })
    await closing
    assert.equal(closed, true)
  })
})
