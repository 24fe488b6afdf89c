/**
 * Fuzzing the HTTP layer itself on a listening server (Node's parser runs only on real sockets):
 * valid raw requests — GET /models, POST /v1/select with JSON, POST /v1/classify with a PNG —
 * mutated at the byte level (bit flips, inserted or deleted bytes, CR/LF/NUL/space injection,
 * duplicated ranges, Content-Length rewritten, truncation). An incomplete request is answered
 * 408 after the (short) REQUEST_TIMEOUT_MS.
 * Whatever the server answers first must be a well-formed HTTP response with a status below 500
 * and, for 4xx, a JSON catalogue error; the server must stay healthy. Seeds: see support.ts.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import { ERROR_CODES } from '../../server/errors.js'
import { rawExchange } from '../hardening/support.js'
import { startApp } from '../routes/support.js'
import { buildCorpus } from './corpus.js'
import { fuzz } from './support.js'

const CODES = new Set<string>(ERROR_CODES)

function rawRequests(png: Buffer): Buffer[] {
  const json = Buffer.from('{"maxMflops": 1.5, "minTop1": 0.5}')
  return [
    Buffer.from('GET /models?maxMflops=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n'),
    Buffer.concat([
      Buffer.from(
        `POST /v1/select HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n`,
      ),
      json,
    ]),
    Buffer.concat([
      Buffer.from(
        `POST /v1/classify?topK=3 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: ${png.length}\r\n\r\n`,
      ),
      png,
    ]),
  ]
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'content-length'; value: string }

const INJECTED = [
  '\r\n',
  '\n',
  '\r',
  '\u0000',
  ' ',
  '\t',
  ':',
  '\r\n\r\n',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 5\r\n',
  'Host: other\r\n',
  'Expect: 100-continue\r\n',
  '%',
  '\u00ff',
]

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  {
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      text: fc.oneof(fc.constantFrom(...INJECTED), fc.string({ maxLength: 8 })),
    }),
    weight: 2,
  },
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('content-length' as const),
    value: fc.constantFrom('0', '1', '-1', '99999999999999999999', 'abc', ' 3', '0x10', '1e3', ''),
  }),
)

function mutate(input: Buffer, m: Mutation): Buffer {
  if (input.length === 0) return input
  const at = 'at' in m ? m.at % input.length : 0
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(input)
      out[at] = (out[at] ?? 0) ^ (1 << m.bit)
      return out
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at), Buffer.from(m.text, 'latin1'), input.subarray(at)])
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.length)])
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at + m.length), input.subarray(at)])
    case 'truncate':
      return input.subarray(0, at)
    case 'content-length':
      return Buffer.from(
        input.toString('latin1').replace(/Content-Length: [^\r\n]*/i, `Content-Length: ${m.value}`),
        'latin1',
      )
  }
}

describe('fuzz: raw HTTP on a listening server', () => {
  let app: FastifyInstance
  let port: number
  let requests: Buffer[]

  before(async () => {
    // Short, so a mutation that leaves the request incomplete is answered 408 quickly.
    app = await startApp({ requestTimeoutMs: 300 })
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = (app.server.address() as AddressInfo).port
    const png = (await buildCorpus()).find((s) => s.name === 'png-rgb')?.bytes ?? Buffer.alloc(0)
    requests = rawRequests(png)
  })
  after(() => app.close())

  it('unmutated requests are answered 200 (baseline)', async () => {
    for (const raw of requests) {
      const { response } = await rawExchange(port, [raw], { untilResponse: true, timeoutMs: 5_000 })
      assert.equal(response.status, 200, response.raw.slice(0, 300))
    }
  })

  it('mutated requests: a well-formed answer below 500, coded when 4xx', async (t) => {
    await fuzz(
      t,
      'raw http',
      100,
      fc.asyncProperty(
        fc.nat(),
        fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
        async (pick, mutations) => {
          const base = requests[pick % requests.length] ?? Buffer.alloc(0)
          const raw = mutations.reduce(mutate, base)
          const { response } = await rawExchange(port, [raw], { untilResponse: true, timeoutMs: 5_000 })
          const context = `${JSON.stringify(mutations)} → ${JSON.stringify(response.raw.slice(0, 200))}`
          // Nothing at all is acceptable only when nothing resembling a request line was sent.
          if (Number.isNaN(response.status)) {
            assert.ok(!/^[A-Z]+ \S+ HTTP\/1\.[01]\r?\n/.test(raw.toString('latin1')), `no answer: ${context}`)
            return
          }
          assert.ok(response.status >= 100 && response.status < 500, context)
          if (response.status >= 400) {
            const body = JSON.parse(response.body) as { code?: string; statusCode?: number }
            assert.ok(CODES.has(body.code ?? ''), context)
            assert.equal(body.statusCode, response.status, context)
          }
        },
      ),
    )
    const { response } = await rawExchange(port, [requests[0] ?? ''], { untilResponse: true })
    assert.equal(response.status, 200)
  })
})
