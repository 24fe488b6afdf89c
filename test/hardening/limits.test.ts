/**
 * Limits enforced on real connections (Node's HTTP parser runs only there, never under inject):
 * headers and URLs over MAX_HEADER_BYTES → 431 HEADERS_TOO_LARGE, requests slower than
 * REQUEST_TIMEOUT_MS → 408 REQUEST_TIMEOUT, unparseable requests → 400 MALFORMED_REQUEST — all
 * coded JSON, the connection closed, the server still serving. Also: long path parameters and
 * query strings, and the security headers on every kind of answer.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { ERROR_CODES } from '../../server/errors.js'
import { API_CSP, HTML_CSP } from '../../server/plugins/security.js'
import { fixtureImage, startApp } from '../routes/support.js'
import { rawExchange, type RawResponse } from './support.js'

const MAX_HEADER_BYTES = 4096
const REQUEST_TIMEOUT_MS = 800
const MAX_BODY_BYTES = 64 * 1024
const MAX_CONNECTIONS = 8

function assertCoded(response: RawResponse, status: number, code: string): void {
  assert.equal(response.status, status, response.raw.slice(0, 400))
  assert.match(response.headers['content-type'] ?? '', /^application\/json/)
  const body = JSON.parse(response.body) as { statusCode: number; code: string; message: string }
  assert.equal(body.statusCode, status)
  assert.equal(body.code, code)
  assert.ok((ERROR_CODES as readonly string[]).includes(body.code))
  assert.ok(body.message.length > 0)
}

describe('HTTP limits on a listening server', () => {
  let app: FastifyInstance
  let port: number
  const get = (path: string, headers = '') =>
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`

  before(async () => {
    app = await startApp({
      maxHeaderBytes: MAX_HEADER_BYTES,
      requestTimeoutMs: REQUEST_TIMEOUT_MS,
      maxBodyBytes: MAX_BODY_BYTES,
      maxConnections: MAX_CONNECTIONS,
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = (app.server.address() as AddressInfo).port
  })
  after(() => app.close())

  async function assertStillServing(): Promise<void> {
    const { response } = await rawExchange(port, [get('/healthz')])
    assert.equal(response.status, 200, response.raw)
  }

  it('a normal request passes (baseline)', async () => {
    const { response } = await rawExchange(port, [get('/models')])
    assert.equal(response.status, 200)
  })

  it('headers over MAX_HEADER_BYTES → 431 HEADERS_TOO_LARGE, connection closed', async () => {
    const { response, closed } = await rawExchange(port, [
      get('/healthz', `X-Padding: ${'a'.repeat(MAX_HEADER_BYTES + 100)}\r\n`),
    ])
    assertCoded(response, 431, 'HEADERS_TOO_LARGE')
    assert.ok(closed)
    await assertStillServing()
  })

  it('many small headers adding up over the limit → 431', async () => {
    const many = Array.from({ length: 400 }, (_, i) => `X-H${i}: ${'v'.repeat(10)}\r\n`).join('')
    const { response } = await rawExchange(port, [get('/healthz', many)])
    assertCoded(response, 431, 'HEADERS_TOO_LARGE')
    await assertStillServing()
  })

  it('a URL over MAX_HEADER_BYTES → 431 (the request line counts)', async () => {
    const { response } = await rawExchange(port, [get(`/models?maxMflops=${'9'.repeat(MAX_HEADER_BYTES)}`)])
    assertCoded(response, 431, 'HEADERS_TOO_LARGE')
    await assertStillServing()
  })

  it('a long query within the limit is validated normally → 400 INVALID_PARAMETER', async () => {
    const query = Array.from({ length: 300 }, () => 'maxMflops=1').join('&')
    const { response } = await rawExchange(port, [get(`/models?${query}`)])
    assertCoded(response, 400, 'INVALID_PARAMETER')
  })

  it('path parameters longer than a model name can be → coded 4xx', async () => {
    for (const length of [65, 99, 100, 101, 500]) {
      const { response } = await rawExchange(port, [get(`/models/${'m'.repeat(length)}`)])
      assert.ok([400, 404].includes(response.status), `${length}: ${response.raw.slice(0, 300)}`)
      const body = JSON.parse(response.body) as { code: string }
      assert.ok(['INVALID_PARAMETER', 'ROUTE_NOT_FOUND', 'MODEL_NOT_FOUND'].includes(body.code))
    }
  })

  it('HTTP/1.1 without Host → 400 MALFORMED_REQUEST (coded, not Node’s empty 400); HTTP/1.0 may omit it', async () => {
    const missing = await rawExchange(port, ['GET /healthz HTTP/1.1\r\nAccept: */*\r\n\r\n'], {
      untilResponse: true,
    })
    assertCoded(missing.response, 400, 'MALFORMED_REQUEST')
    const old = await rawExchange(port, ['GET /healthz HTTP/1.0\r\n\r\n'], { untilResponse: true })
    assert.equal(old.response.status, 200, old.response.raw.slice(0, 300))
  })

  it('unparseable requests → 400 MALFORMED_REQUEST', async () => {
    const cases = [
      'NOT A REQUEST\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
      'POST /v1/select HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'POST /v1/select HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
      'POST /v1/select HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n',
    ]
    for (const text of cases) {
      const { response, closed } = await rawExchange(port, [text])
      assertCoded(response, 400, 'MALFORMED_REQUEST')
      assert.ok(closed, JSON.stringify(text))
    }
    await assertStillServing()
  })

  it('headers trickling in slower than REQUEST_TIMEOUT_MS → 408 REQUEST_TIMEOUT', async () => {
    const started = Date.now()
    const { response, closed } = await rawExchange(port, ['GET /healthz HTTP/1.1\r\n', 'Host: x\r\n'], {
      gapMs: 50,
      timeoutMs: 30_000,
    })
    assertCoded(response, 408, 'REQUEST_TIMEOUT')
    assert.ok(closed)
    // Node checks timeouts on an interval; app.ts makes it follow a short timeout.
    assert.ok(Date.now() - started < REQUEST_TIMEOUT_MS + 5_000, `took ${Date.now() - started} ms`)
    await assertStillServing()
  })

  it('a body that stops arriving → the request times out, the server keeps serving', async () => {
    const head =
      'POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 50000\r\n\r\n'
    const { response, closed } = await rawExchange(port, [head, Buffer.alloc(1000, 1)], { timeoutMs: 30_000 })
    assert.ok(closed, 'the server closed the stalled connection')
    if (response.status) assert.ok([400, 408].includes(response.status), response.raw.slice(0, 300))
    await assertStillServing()
  })

  it('a chunked body over MAX_BODY_BYTES is cut off with 413, and a declared one refused up front', async () => {
    const head = 'POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n'
    const chunk = Buffer.alloc(16 * 1024, 7)
    const chunks = Array.from({ length: 8 }, () =>
      Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
    )
    const chunked = await rawExchange(port, [
      `${head}Transfer-Encoding: chunked\r\n\r\n`,
      ...chunks,
      '0\r\n\r\n',
    ])
    assertCoded(chunked.response, 413, 'BODY_TOO_LARGE')
    const declared = await rawExchange(port, [`${head}Content-Length: ${100 * 1024 * 1024}\r\n\r\n`, chunk])
    assertCoded(declared.response, 413, 'BODY_TOO_LARGE')
    await assertStillServing()
  })

  it('connections beyond MAX_CONNECTIONS are closed on accept; capacity returns when one closes', async () => {
    const idle = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, async () => {
        const socket = connect({ host: '127.0.0.1', port })
        await once(socket, 'connect')
        socket.on('error', () => undefined)
        return socket
      }),
    )
    try {
      // Give the server a moment to count them.
      await new Promise((resolve) => setTimeout(resolve, 100))
      const refused = await rawExchange(port, [get('/healthz')], { timeoutMs: 5_000 })
      assert.ok(refused.closed, 'the extra connection was closed')
      assert.ok(Number.isNaN(refused.response.status), refused.response.raw)
    } finally {
      for (const socket of idle) socket.destroy()
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
    await assertStillServing()
  })

  it('security headers on JSON answers, errors, the docs and the demo page', async () => {
    const png = await fixtureImage('gray.png')
    const answers = [
      await app.inject({ method: 'GET', url: '/models' }),
      await app.inject({ method: 'GET', url: '/nope' }),
      await app.inject({
        method: 'POST',
        url: '/v1/classify',
        headers: { 'content-type': 'image/png' },
        payload: png,
      }),
      await app.inject({
        method: 'POST',
        url: '/v1/classify',
        headers: { 'content-type': 'text/plain' },
        payload: 'x',
      }),
      await app.inject({ method: 'GET', url: '/v2/health/ready' }),
    ]
    for (const res of answers) {
      assert.equal(res.headers['x-content-type-options'], 'nosniff', res.body.slice(0, 200))
      assert.equal(res.headers['x-frame-options'], 'DENY')
      assert.equal(res.headers['referrer-policy'], 'no-referrer')
      assert.equal(res.headers['content-security-policy'], API_CSP)
    }
    const docs = await app.inject({ method: 'GET', url: '/docs/' })
    assert.equal(docs.statusCode, 200)
    assert.equal(docs.headers['content-security-policy'], HTML_CSP)
    // Swagger UI loads only same-origin scripts; the policy must allow exactly those.
    for (const [, src] of docs.body.matchAll(/<script src="([^"]+)"/g)) {
      assert.ok(!/^https?:/.test(src ?? ''), `docs load an external script: ${src ?? ''}`)
    }
    assert.doesNotMatch(
      docs.body,
      /<script>(?!\s*<\/script>)/,
      'docs carry an inline script the policy would block',
    )
    const page = await app.inject({ method: 'GET', url: '/' })
    assert.equal(page.statusCode, 200)
    // The demo page's own (stricter) policy is kept, not overwritten.
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/)
    assert.doesNotMatch(String(page.headers['content-security-policy']), /unsafe-inline/)
    assert.equal(page.headers['x-frame-options'], 'DENY')
  })
})
