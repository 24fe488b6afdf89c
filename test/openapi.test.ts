/**
 * The OpenAPI document: what the server serves at /docs/json is exactly the committed
 * openapi/openapi.json (so a schema change without `npm run generate` fails here), Swagger UI is at
 * /docs, and the document describes every route with its parameters, bodies and error responses.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import request from 'supertest'
import { IMAGE_CONTENT_TYPES } from '../server/routes/classify.js'
import { ROOT } from './helper.js'
import { startApp } from './routes/support.js'

interface Operation {
  summary?: string
  tags?: string[]
  parameters?: { name: string; in: string }[]
  requestBody?: { required?: boolean; content: Record<string, unknown> }
  responses: Record<string, unknown>
}
interface Document {
  openapi: string
  info: { title: string; version: string }
  paths: Record<string, Record<string, Operation>>
}

describe('OpenAPI', () => {
  let app: FastifyInstance
  let served: Document
  before(async () => {
    app = await startApp()
    served = (await request(app.server).get('/docs/json').expect(200)).body as Document
  })
  after(() => app.close())

  it('the committed openapi/openapi.json is the document the server serves (run `npm run generate`)', async () => {
    const committed = JSON.parse(await readFile(join(ROOT, 'openapi', 'openapi.json'), 'utf8')) as unknown
    assert.deepEqual(committed, served)
  })

  it('Swagger UI is served at /docs', async () => {
    const res = await request(app.server).get('/docs').redirects(2)
    assert.equal(res.status, 200)
    assert.match(res.text, /swagger/i)
  })

  it('is OpenAPI 3.1, documents the API routes, each with a summary and tags', () => {
    assert.equal(served.openapi, '3.1.0')
    const routes = Object.entries(served.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    )
    for (const route of [
      'GET /healthz',
      'GET /metrics',
      'GET /models',
      'GET /models/{name}',
      'GET /readyz',
      'GET /v2/',
      'GET /v2/health/live',
      'GET /v2/health/ready',
      'GET /v2/models/{name}',
      'GET /v2/models/{name}/ready',
      'GET /v2/models/{name}/versions/{version}',
      'GET /v2/models/{name}/versions/{version}/ready',
      'POST /v1/classify',
      'POST /v1/select',
      'POST /v2/models/{name}/infer',
      'POST /v2/models/{name}/versions/{version}/infer',
    ]) {
      assert.ok(routes.includes(route), `${route} is not documented`)
    }
    for (const ops of Object.values(served.paths)) {
      for (const op of Object.values(ops)) assert.ok(op.summary && op.tags?.length, JSON.stringify(op))
    }
  })

  it('describes classify: query parameters, image bodies, success and error responses', () => {
    const op = served.paths['/v1/classify']!.post!
    assert.deepEqual(
      op.parameters?.map((p) => `${p.in}:${p.name}`).sort(),
      ['maxLatencyMs', 'maxMflops', 'minTop1', 'model', 'onInfeasible', 'topK']
        .map((n) => `query:${n}`)
        .sort(),
    )
    assert.deepEqual(
      Object.keys(op.requestBody!.content).sort(),
      [...IMAGE_CONTENT_TYPES, 'multipart/form-data'].sort(),
    )
    assert.equal(op.requestBody!.required, true)
    assert.deepEqual(Object.keys(op.responses).sort(), [
      '200',
      '400',
      '404',
      '413',
      '415',
      '422',
      '500',
      '503',
      '504',
    ])
  })

  it('describes select with an optional JSON body and the models listing with its filters', () => {
    const select = served.paths['/v1/select']!.post!
    assert.equal(select.requestBody?.required, false)
    assert.ok('application/json' in select.requestBody.content)
    const list = served.paths['/models']!.get!
    assert.deepEqual(list.parameters?.map((p) => p.name).sort(), ['maxLatencyMs', 'maxMflops', 'minTop1'])
    assert.deepEqual(
      served.paths['/models/{name}']!.get!.parameters?.map((p) => `${p.in}:${p.name}`),
      ['path:name'],
    )
  })
})
