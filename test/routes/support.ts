/**
 * Shared pieces of the API route tests: one app per test file over the fixture zoo (building one
 * spawns a worker and warms four models, so files share it), fixture images, and an assertion for
 * the catalogue error shape.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'
import type { Response } from 'supertest'
import { buildApp } from '../../server/app.js'
import type { AppConfig } from '../../server/config.js'
import { ERROR_CODES, errorDefinition, type ErrorCode } from '../../server/errors.js'
import { fixturePath, TEST_CONFIG } from '../helper.js'

export async function startApp(overrides: Partial<AppConfig> = {}): Promise<FastifyInstance> {
  const app = await buildApp({ ...TEST_CONFIG, ...overrides })
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
