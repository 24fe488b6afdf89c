/**
 * Request ids: every response carries `x-request-id`; a sane incoming one is kept (so a proxy's id
 * follows the request), anything else is replaced by a UUID; the served process logs the id on
 * its request lines (pino, JSON).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { requestIdFrom } from '../server/request-id.js'
import { FIXTURE_ZOO_DIR, ROOT } from './helper.js'
import { startApp } from './routes/support.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('x-request-id', () => {
  let app: FastifyInstance
  before(async () => {
    app = await startApp()
  })
  after(() => app.close())

  it('is generated when absent, and differs per request', async () => {
    const a = await app.inject({ method: 'GET', url: '/healthz' })
    const b = await app.inject({ method: 'GET', url: '/healthz' })
    assert.match(String(a.headers['x-request-id']), UUID)
    assert.notEqual(a.headers['x-request-id'], b.headers['x-request-id'])
  })

  it('is kept when the caller sends a sane one, on successes, errors and unknown routes', async () => {
    for (const url of ['/healthz', '/models/no-such-model', '/no/such/route', '/v2/models/x']) {
      const res = await app.inject({ method: 'GET', url, headers: { 'x-request-id': 'edge-7f3a:42' } })
      assert.equal(res.headers['x-request-id'], 'edge-7f3a:42', url)
    }
  })

  it('is replaced when the incoming one is too long or has unsafe characters', () => {
    for (const given of ['a'.repeat(129), 'two words', 'line\nbreak', '', 'x"y', 'ünïcode']) {
      assert.match(requestIdFrom({ headers: { 'x-request-id': given } }), UUID, JSON.stringify(given))
    }
    assert.equal(requestIdFrom({ headers: { 'x-request-id': 'a'.repeat(128) } }), 'a'.repeat(128))
    assert.match(requestIdFrom({ headers: { 'x-request-id': ['a', 'b'] } }), UUID)
  })
})

describe('request ids in the logs of the served process', () => {
  it('every log line of a request carries its id as reqId', async (t) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'server/main.ts', '--port', '0', '--host', '127.0.0.1'],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          ZOO_DIR: FIXTURE_ZOO_DIR,
          WORKER_THREADS: '1',
          INTRA_OP_THREADS: '1',
          WARMUP_RUNS: '1',
          EXECUTION_PROVIDER: 'cpu',
          LOG_LEVEL: 'info',
        },
      },
    )
    t.after(() => child.kill('SIGKILL'))
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    const deadline = Date.now() + 60_000
    let address: string | undefined
    while (address === undefined) {
      address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
      if (child.exitCode !== null) throw new Error(`server exited: ${out}`)
      if (Date.now() > deadline) throw new Error(`server did not start:\n${out}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const res = await fetch(`${address}/models/missing-model`, {
      headers: { 'x-request-id': 'trace-abc-123' },
    })
    assert.equal(res.status, 404)
    assert.equal(res.headers.get('x-request-id'), 'trace-abc-123')
    await new Promise((resolve) => setTimeout(resolve, 200))
    child.kill('SIGTERM')
    await once(child, 'exit')
    const lines = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { reqId?: string; msg?: string; level: number })
    const mine = lines.filter((l) => l.reqId === 'trace-abc-123')
    assert.ok(
      mine.some((l) => l.msg === 'incoming request'),
      JSON.stringify(mine),
    )
    assert.ok(
      mine.some((l) => l.msg === 'request completed'),
      JSON.stringify(mine),
    )
    assert.ok(mine.length >= 3, 'the 404 explanation is logged with the id too')
  })
})
