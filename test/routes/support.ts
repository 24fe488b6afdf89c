/**
 * Shared pieces of the API route tests: one app per test file over the fixture zoo (building one
 * spawns a worker and warms four models, so files share it), fixture images, and an assertion for
 * the catalogue error shape.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import type { TestContext } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Response } from 'supertest'
import { buildApp } from '../../server/app.js'
import { resolveConfig, type AppConfig } from '../../server/config.js'
import type { InferenceResult, ModelRunner, ZooView } from '../../server/runtime/types.js'
import { registerErrorHandlers } from '../../server/error-handler.js'
import { ERROR_CODES, errorDefinition, type ErrorCode } from '../../server/errors.js'
import { ServerMetrics } from '../../server/metrics.js'
import apiRoutes from '../../server/routes/index.js'
import openInference from '../../server/routes/v2/index.js'
import type { ModelEntry } from '../../server/zoo/model-entry.js'
import { fixturePath, readFixtureManifest, TEST_CONFIG } from '../helper.js'

export async function startApp(overrides: Partial<AppConfig> = {}): Promise<FastifyInstance> {
  const app = await buildApp({ ...TEST_CONFIG, ...overrides })
  await app.ready()
  return app
}

/**
 * The API routes alone over a stand-in runtime: for states a real app cannot be put in on demand
 * (nothing ready, a model that returns garbage). `state(entry)` adjusts each fixture model entry;
 * every inference call (tensor, pixels or image) answers with `answer()`.
 */
export async function routesOverFakeRuntime(
  t: TestContext,
  state: (entry: ModelEntry) => ModelEntry,
  answer: () => Promise<InferenceResult>,
): Promise<FastifyInstance> {
  const inference: ModelRunner = {
    run: answer,
    runImage: answer,
    prepareImage: () => Promise.reject(new Error('no preprocessing in the fake runtime')),
  }
  const manifest = await readFixtureManifest()
  const entries = manifest.models.map(({ latencyMs: _pipeline, ...m }) =>
    state({ ...m, path: `/nonexistent/${m.file}`, ready: true, latencyMs: { p50: 1, p95: 2, samples: 3 } }),
  )
  const zoo: ZooView = {
    list: () => entries,
    names: () => entries.map((e) => e.name),
    get: (name) => entries.find((e) => e.name === name),
    readyModels: () => entries.filter((e) => e.ready),
    isReady: () => entries.some((e) => e.ready),
    defaultModelName: () => manifest.defaultModel ?? '',
    cascades: () => [],
  }
  return appOverRuntime(t, zoo, inference)
}

/**
 * The API routes (and with `withOpenInference` the /v2 routes) over a given zoo view and runner,
 * with the test configuration, metrics and error handlers; closed after the test.
 */
export async function appOverRuntime(
  t: TestContext,
  zoo: ZooView,
  inference: ModelRunner,
  { withOpenInference = false } = {},
): Promise<FastifyInstance> {
  const app = Fastify()
  t.after(() => app.close())
  app.decorate('config', resolveConfig({ overrides: TEST_CONFIG }).config)
  app.decorate('zoo', zoo)
  app.decorate('inference', inference)
  app.decorate(
    'metrics',
    new ServerMetrics({ modelNames: () => zoo.names(), modelReadiness: () => zoo.list() }),
  )
  registerErrorHandlers(app)
  await app.register(apiRoutes)
  if (withOpenInference) await app.register(openInference, { prefix: '/v2' })
  await app.ready()
  return app
}

export const fixtureImage = (name: string): Promise<Buffer> => readFile(fixturePath('images', name))

export interface ErrorBodyLike {
  statusCode: number
  code: string
  error: string
  message: string
  [detail: string]: unknown
}

/** Asserts a catalogue error response: status, code, and the standard fields. */
export function assertError(res: Response, code: ErrorCode): ErrorBodyLike {
  const body = res.body as ErrorBodyLike
  const status = errorDefinition(code).statusCode
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(body)}`)
  assert.equal(body.code, code, body.message)
  assert.equal(body.statusCode, status)
  assert.equal(typeof body.error, 'string')
  assert.equal(typeof body.message, 'string')
  assert.ok(body.message.length > 0)
  assert.ok((ERROR_CODES as readonly string[]).includes(body.code), body.code)
  assert.match(String(res.headers['content-type']), /^application\/json/)
  return body
}
