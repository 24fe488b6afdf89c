/**
 * Shared pieces of the fuzz suites: reproducible fast-check settings, the one assertion every
 * refused request must pass (a JSON catalogue error with a 4xx status — never a 5xx, a dropped
 * connection or a crash) and the health check run after every batch.
 *
 * Reproducing a failure: fast-check prints `{ seed, path }` with the counterexample; rerun with
 *   FUZZ_SEED=<seed> npm test -- test/fuzz/<file>.test.ts
 * Each property derives its own seed from FUZZ_SEED and its name, so one property's seed does not
 * depend on how many others ran before it. FUZZ_RUNS scales every property's run count (default 1;
 * e.g. FUZZ_RUNS=20 for a long local campaign).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { TestContext } from 'node:test'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import fc from 'fast-check'
import { ERROR_CODES, errorDefinition, type ErrorCode } from '../../server/errors.js'

/** The base seed: FUZZ_SEED, else a fixed value so `npm test` is deterministic. */
export const BASE_SEED = (() => {
  const raw = process.env.FUZZ_SEED
  if (raw === undefined || raw === '') return 20_261_128
  const seed = Number(raw)
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`)
  return seed
})()

const RUN_SCALE = (() => {
  const raw = process.env.FUZZ_RUNS
  if (raw === undefined || raw === '') return 1
  const scale = Number(raw)
  if (!(scale > 0)) throw new Error(`FUZZ_RUNS must be a positive number, got ${JSON.stringify(raw)}`)
  return scale
})()

/** Every fuzz case counted, so the suite can report (and a test can require) its total. */
export const runCounter = { total: 0 }

/** A 32-bit seed for one property: stable across runs and independent of the other properties. */
export function propertySeed(name: string): number {
  const digest = createHash('sha256').update(`${BASE_SEED}:${name}`).digest()
  return digest.readInt32LE(0)
}

/**
 * Runs an async property `runs × FUZZ_RUNS` times with a seed derived from `name`, and logs the
 * seed as a test diagnostic so a failure report always carries it (fast-check adds seed + path).
 */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(
  t: TestContext,
  name: string,
  runs: number,
  property: fc.IAsyncPropertyWithHooks<Ts>,
): Promise<void> {
  const seed = propertySeed(name)
  const numRuns = Math.max(1, Math.round(runs * RUN_SCALE))
  t.diagnostic(`${name}: seed ${seed} (FUZZ_SEED=${BASE_SEED}), ${numRuns} runs`)
  try {
    await fc.assert(property, { seed, numRuns, endOnFailure: false })
  } catch (error) {
    // fast-check's report already names seed and path; the base seed is what a rerun needs.
    const message = error instanceof Error ? error.message : String(error)
    const cause =
      error instanceof Error && error.cause instanceof Error ? `\nCause: ${error.cause.message}` : ''
    throw new Error(`${name} failed — rerun with FUZZ_SEED=${BASE_SEED}\n${message}${cause}`, {
      cause: error,
    })
  }
  runCounter.total += numRuns
}

const CODES = new Set<string>(ERROR_CODES)

export interface ErrorBodyShape {
  statusCode: number
  code: ErrorCode
  error: string
  message: string
  [detail: string]: unknown
}

/** A human summary of a response for assertion messages (status, code, start of the body). */
export function describe(res: LightMyRequestResponse): string {
  return `${res.statusCode} ${String(res.headers['content-type'] ?? '')} ${res.body.slice(0, 300)}`
}

/**
 * The response is a catalogue error with a 4xx status: JSON, `statusCode` equal to the HTTP
 * status, a known `code` whose catalogue status is that status, and a message. Returns the body.
 */
export function assertClientError(
  res: LightMyRequestResponse,
  allowed?: readonly ErrorCode[],
  context = '',
): ErrorBodyShape {
  const where = `${context} → ${describe(res)}`
  assert.ok(res.statusCode >= 400 && res.statusCode < 500, `expected a 4xx: ${where}`)
  assert.match(String(res.headers['content-type']), /^application\/json/, `not JSON: ${where}`)
  const body = JSON.parse(res.body) as ErrorBodyShape
  assert.equal(body.statusCode, res.statusCode, where)
  assert.ok(CODES.has(body.code), `unknown code: ${where}`)
  assert.equal(errorDefinition(body.code).statusCode, res.statusCode, `code/status mismatch: ${where}`)
  assert.equal(typeof body.error, 'string', where)
  assert.ok(typeof body.message === 'string' && body.message.length > 0, where)
  if (allowed)
    assert.ok(allowed.includes(body.code), `code ${body.code} not in [${allowed.join(', ')}]: ${where}`)
  return body
}

/** Either a 200 (the input happened to be valid) or a catalogue 4xx: never a 5xx. */
export function assertAnsweredOrRefused(
  res: LightMyRequestResponse,
  allowed?: readonly ErrorCode[],
  context = '',
): void {
  if (res.statusCode === 200) {
    assert.match(String(res.headers['content-type']), /^application\/json/, `${context} → ${describe(res)}`)
    JSON.parse(res.body)
    return
  }
  assertClientError(res, allowed, context)
}

/** GET /healthz answers 200 and a valid image still classifies (200) — the app survived the batch. */
export async function assertHealthy(app: FastifyInstance, image: Buffer): Promise<void> {
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  assert.equal(health.statusCode, 200, describe(health))
  const classify = await app.inject({
    method: 'POST',
    url: '/v1/classify',
    headers: { 'content-type': 'image/png' },
    payload: image,
  })
  assert.equal(classify.statusCode, 200, describe(classify))
}
