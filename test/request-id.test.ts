/**
 * Request ids, on the real process (server/main.ts, pino JSON logs on stdout): every response
 * carries `x-request-id`; a sane incoming one is kept (so a proxy's id follows the request),
 * anything else is replaced by a UUID; the id is on the request's log lines as `reqId`.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import { requestIdFrom } from '../server/request-id.js'
import { FIXTURE_ZOO_DIR, ROOT } from './helper.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('requestIdFrom', () => {
  it('keeps sane ids, replaces long, empty, repeated or unsafe ones with a UUID', () => {
    assert.equal(requestIdFrom({ headers: { 'x-request-id': 'edge-7f3a:42' } }), 'edge-7f3a:42')
    assert.equal(requestIdFrom({ headers: { 'x-request-id': 'a'.repeat(128) } }), 'a'.repeat(128))
    for (const given of ['a'.repeat(129), 'two words', 'line\nbreak', '', 'x"y', 'ünïcode']) {
      assert.match(requestIdFrom({ headers: { 'x-request-id': given } }), UUID, JSON.stringify(given))
    }
    assert.match(requestIdFrom({ headers: { 'x-request-id': ['a', 'b'] } }), UUID)
    assert.match(requestIdFrom({ headers: {} }), UUID)
  })
})

describe('x-request-id on the served process', () => {
  let child: ChildProcessWithoutNullStreams
  let out = ''
  let origin = ''
  before(async () => {
    child = spawn(
      process.execPath,
      ['--import', 'tsx', 'server/main.ts', '--port', '0', '--grpc-port', '0', '--host', '127.0.0.1'],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          ZOO_DIR: FIXTURE_ZOO_DIR,
          WORKER_THREADS: '1',
          INTRA_OP_THREADS: '1',
          WARMUP_RUNS: '1',
          MAX_BATCH_SIZE: '1',
          EXECUTION_PROVIDER: 'cpu',
          LOG_LEVEL: 'info',
        },
      },
    )
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    const deadline = Date.now() + 90_000
    for (;;) {
      const address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1]
      if (address !== undefined) {
        origin = address
        break
      }
      if (child.exitCode !== null) throw new Error(`server exited: ${out}`)
      if (Date.now() > deadline) throw new Error(`server did not start:\n${out}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })
  after(async () => {
    if (child.exitCode !== null) return
    child.kill('SIGTERM')
    await once(child, 'exit')
  })

  it('is generated when absent, and differs per request', async () => {
    const a = (await fetch(`${origin}/healthz`)).headers.get('x-request-id')
    const b = (await fetch(`${origin}/healthz`)).headers.get('x-request-id')
    assert.match(a ?? '', UUID)
    assert.match(b ?? '', UUID)
    assert.notEqual(a, b)
  })

  it('is kept when the caller sends a sane one: successes, errors, unknown routes, /v2', async () => {
    for (const path of ['/healthz', '/models/no-such-model', '/no/such/route', '/v2/models/x', '/']) {
      const res = await fetch(`${origin}${path}`, { headers: { 'x-request-id': 'edge-7f3a:42' } })
      assert.equal(res.headers.get('x-request-id'), 'edge-7f3a:42', path)
    }
  })

  it('is replaced when unsafe', async () => {
    const res = await fetch(`${origin}/healthz`, { headers: { 'x-request-id': 'a'.repeat(200) } })
    assert.match(res.headers.get('x-request-id') ?? '', UUID)
  })

  it('is on every log line of the request as reqId', async () => {
    const res = await fetch(`${origin}/models/missing-model`, {
      headers: { 'x-request-id': 'trace-abc-123' },
    })
    assert.equal(res.status, 404)
    const deadline = Date.now() + 10_000
    let mine: { reqId?: string; msg?: string }[] = []
    while (Date.now() < deadline) {
      mine = out
        .split('\n')
        .filter((l) => l.startsWith('{') && l.includes('trace-abc-123'))
        .map((l) => JSON.parse(l) as { reqId?: string; msg?: string })
      if (mine.some((l) => l.msg === 'request completed')) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.ok(mine.every((l) => l.reqId === 'trace-abc-123'))
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
