/**
 * Fuzzing everything around the image: query parameters (unknown, repeated, NaN, infinite,
 * negative, huge, hex, blank, non-ASCII), model names including path-traversal attempts (`../`,
 * `%2e%2e`, absolute paths, NUL bytes, backslashes, file names of the zoo itself), Content-Types,
 * multipart bodies (bad or missing boundary, missing or doubled field, huge field, broken framing),
 * JSON bodies of /v1/select, Open Inference Protocol bodies, and methods × paths. Every request ends
 * in a 200 or a 4xx with a catalogue code (OIP routes: their `{error}` body) — never a 5xx — and
 * the app stays healthy after each batch. Seeds and reruns: see support.ts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import fc from 'fast-check'
import { FIXTURE_MODELS } from '../helper.js'
import { startApp } from '../routes/support.js'
import { buildCorpus, IMAGE_TYPES } from './corpus.js'
import {
  assertAnsweredOrRefused,
  assertClientError,
  assertHealthy,
  describe as show,
  fuzz,
} from './support.js'

const QUERY_KEYS = ['maxMflops', 'maxLatencyMs', 'minTop1', 'model', 'topK', 'onInfeasible'] as const

/** Values that have broken parsers before: non-finite, signed, exponent, hex, blank, long, odd. */
const WEIRD_VALUES = [
  '',
  ' ',
  '0',
  '-0',
  '-1',
  '1',
  '0.5',
  '1e3',
  '1e-300',
  '1e309',
  '-1e309',
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '0b1',
  '1_000',
  ' 5 ',
  '5abc',
  'true',
  'null',
  'undefined',
  '[]',
  '{}',
  '9'.repeat(400),
  '0.' + '0'.repeat(400) + '1',
  'reject',
  'smallest',
  'largest',
  'fixture-rgb32',
  '../fixture-rgb32',
  '%00',
  '\u0000',
  'é',
  '𝟙',
  '%',
  '%zz',
  '%E0%A4%A',
]

/** Names a client might use to make the server read a file; all must be plain lookups. */
const HOSTILE_NAMES = [
  '..',
  '../',
  '../manifest.json',
  '../../../../etc/passwd',
  '..%2f..%2fetc%2fpasswd',
  '%2e%2e',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '%252e%252e%252f',
  '..%5c..%5cwindows',
  '..\\..\\windows',
  '/etc/passwd',
  '%2fetc%2fpasswd',
  'C:%5cWindows',
  'fixture-rgb32%00.onnx',
  'fixture-rgb32%00',
  '%00',
  'manifest.json',
  'fixture-rgb32.onnx',
  'fixture-rgb32.reference.json',
  '.',
  '~',
  '~root',
  'file:%2f%2f%2fetc%2fpasswd',
  'x'.repeat(300),
  '%C0%AE%C0%AE%2f',
  '%uff0e%uff0e',
  'fixture-rgb32%2f..%2ffixture-rgb32',
  'FIXTURE-RGB32',
  ' fixture-rgb32',
]

const queryValueArb = fc.oneof(
  fc.constantFrom(...WEIRD_VALUES),
  fc.double().map(String),
  fc.integer().map(String),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
)
const queryKeyArb = fc.oneof(
  { arbitrary: fc.constantFrom(...QUERY_KEYS), weight: 6 },
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'MAXMFLOPS', 'maxMflops[]', ''),
  fc.string({ maxLength: 12 }),
)
/** A query string: [key, value, encode?] triples joined raw or percent-encoded. */
const queryArb = fc
  .array(fc.tuple(queryKeyArb, queryValueArb, fc.boolean()), { maxLength: 5 })
  .map((pairs) =>
    pairs
      .map(([key, value, encode]) =>
        encode ? `${encodeURIComponent(key)}=${encodeURIComponent(value)}` : `${key}=${value}`,
      )
      .join('&'),
  )

/** Raw text may not be a legal URL; light-my-request refuses some before the server sees them. */
async function injectOrSkip(
  app: FastifyInstance,
  options: InjectOptions,
): Promise<LightMyRequestResponse | undefined> {
  try {
    return await app.inject(options)
  } catch (error) {
    // Only URL-construction failures of the test client are skipped; anything else is a finding.
    if (
      error instanceof TypeError &&
      /Invalid URL|invalid character|Request path contains/i.test(error.message)
    )
      return undefined
    throw error
  }
}

/** Whether `prefix + name` still names a path under `prefix` once dot segments are resolved. */
function resolvesUnder(prefix: string, name: string): boolean {
  try {
    return new URL(prefix + name, 'http://localhost').pathname.startsWith(prefix)
  } catch {
    return false
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

function assertOipAnswer(res: LightMyRequestResponse, context: string): void {
  assert.ok(res.statusCode < 500, `5xx: ${context} → ${show(res)}`)
  if (res.statusCode === 200) return
  assert.ok(res.statusCode >= 400, `${context} → ${show(res)}`)
  const body = JSON.parse(res.body) as { error?: unknown }
  assert.equal(typeof body.error, 'string', `${context} → ${show(res)}`)
}

describe('fuzz: requests', () => {
  let app: FastifyInstance
  let image: Buffer

  before(async () => {
    app = await startApp()
    image = (await buildCorpus()).find((s) => s.name === 'png-rgb')?.bytes ?? Buffer.alloc(0)
  })
  after(() => app.close())

  it('query parameters of POST /v1/classify, POST /v1/select and GET /models', async (t) => {
    await fuzz(
      t,
      'query parameters',
      300,
      fc.asyncProperty(fc.constantFrom('classify', 'select', 'models'), queryArb, async (route, query) => {
        const res =
          route === 'classify'
            ? await injectOrSkip(app, {
                method: 'POST',
                url: `/v1/classify?${query}`,
                headers: { 'content-type': 'image/png' },
                payload: image,
              })
            : route === 'select'
              ? await injectOrSkip(app, { method: 'POST', url: `/v1/select?${query}` })
              : await injectOrSkip(app, { method: 'GET', url: `/models?${query}` })
        if (res) assertAnsweredOrRefused(res, undefined, `${route} ?${query}`)
      }),
    )
    await assertHealthy(app, image)
  })

  it('hostile model names in paths and queries are lookups, never file paths', async (t) => {
    const check = async (name: string) => {
      const contexts: [string, Promise<LightMyRequestResponse | undefined>][] = [
        [`GET /models/${name}`, injectOrSkip(app, { method: 'GET', url: `/models/${name}` })],
        [
          `classify ?model=${name}`,
          injectOrSkip(app, {
            method: 'POST',
            url: `/v1/classify?model=${name}`,
            headers: { 'content-type': 'image/png' },
            payload: image,
          }),
        ],
        [`select ?model=${name}`, injectOrSkip(app, { method: 'POST', url: `/v1/select?model=${name}` })],
      ]
      for (const [context, pending] of contexts) {
        const res = await pending
        if (!res) continue
        assert.doesNotMatch(
          res.body,
          /root:x:0:|"schemaVersion"|"output": ?\{|pytorch/i,
          `${context} leaked file content`,
        )
        // URL semantics resolve `/models/..` to `/` (every HTTP client does): another route, fine.
        if (context.startsWith('GET') && !resolvesUnder('/models/', name)) {
          assert.ok(res.statusCode < 500, `${context} → ${show(res)}`)
          continue
        }
        // Only the exact name of a fixture model may be served.
        const exact = (FIXTURE_MODELS as readonly string[]).includes(safeDecode(name))
        if (res.statusCode === 200) assert.ok(exact, `${context} was served: ${show(res)}`)
        else assertClientError(res, ['MODEL_NOT_FOUND', 'INVALID_PARAMETER', 'ROUTE_NOT_FOUND'], context)
      }
      const oip = await injectOrSkip(app, {
        method: 'POST',
        url: `/v2/models/${name}/infer`,
        headers: { 'content-type': 'application/json' },
        payload: '{"inputs":[]}',
      })
      if (oip) assertOipAnswer(oip, `OIP infer ${name}`)
    }
    for (const name of HOSTILE_NAMES) await check(name)
    await fuzz(
      t,
      'model names',
      120,
      fc.asyncProperty(
        fc.array(
          fc.constantFrom('..', '.', '%2e', '%2f', '/', '\\', '%5c', '%00', 'etc', 'passwd', 'fixture-rgb32'),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        async (parts) => {
          await check(parts.join(''))
        },
      ),
    )
    await assertHealthy(app, image)
  })

  it('Content-Type variants of POST /v1/classify', async (t) => {
    const typeArb = fc.oneof(
      fc.constantFrom(...IMAGE_TYPES),
      fc.constantFrom(...IMAGE_TYPES).map((type) => type.toUpperCase()),
      fc.constantFrom(...IMAGE_TYPES).map((type) => `${type}; charset=binary; q=0.5`),
      fc.constantFrom(
        '',
        'image',
        'image/',
        '/png',
        'image/png/extra',
        'image/png;',
        'image/png;;;',
        'image/png, image/jpeg',
        'multipart/form-data',
        'multipart/form-data; boundary=',
        'multipart/form-data; boundary="unterminated',
        'multipart/mixed; boundary=x',
        'application/json',
        'application/octet-stream',
        'text/plain',
        'image/svg+xml',
        'image/x-icon',
        'image/heic',
        '*/*',
        `image/png; ${'x'.repeat(2000)}=1`,
      ),
      fc.string({ maxLength: 60 }),
    )
    await fuzz(
      t,
      'content types',
      150,
      fc.asyncProperty(typeArb, async (type) => {
        const res = await injectOrSkip(app, {
          method: 'POST',
          url: '/v1/classify',
          headers: { 'content-type': type },
          payload: image,
        })
        if (res) assertAnsweredOrRefused(res, undefined, `content-type ${JSON.stringify(type)}`)
      }),
    )
    // No Content-Type at all, with a body.
    const none = await app.inject({ method: 'POST', url: '/v1/classify', payload: image })
    assertClientError(none, ['UNSUPPORTED_MEDIA_TYPE', 'MISSING_IMAGE'])
    await assertHealthy(app, image)
  })

  it('multipart bodies: boundaries, parts, fields, framing', async (t) => {
    const partArb = fc.record({
      name: fc.oneof(
        fc.constantFrom('image', 'image', 'file', '', 'IMAGE', 'image[]'),
        fc.string({ maxLength: 8 }),
      ),
      filename: fc.option(fc.constantFrom('a.png', '', '../../etc/passwd', 'x'.repeat(300), 'a\u0000.png'), {
        nil: undefined,
      }),
      type: fc.option(fc.constantFrom('image/png', 'text/plain', 'application/octet-stream', ''), {
        nil: undefined,
      }),
      body: fc.oneof(
        { arbitrary: fc.constant('image'), weight: 3 },
        fc.constant('empty'),
        fc.constant('huge'),
        fc.constant('random'),
      ),
    })
    const framingArb = fc.constantFrom(
      'ok',
      'no-final',
      'no-crlf',
      'wrong-boundary',
      'truncate',
      'lf-only',
      'garbage-preamble',
    )
    await fuzz(
      t,
      'multipart',
      150,
      fc.asyncProperty(
        fc.array(partArb, { minLength: 0, maxLength: 3 }),
        framingArb,
        fc.constantFrom('XyZ', 'a'.repeat(70), '----b', '"quoted"', 'sp ace'),
        fc.uint8Array({ maxLength: 64 }),
        async (parts, framing, boundary, noise) => {
          const bare = boundary.replace(/^"|"$/g, '')
          const crlf = framing === 'lf-only' ? '\n' : '\r\n'
          const chunks: Buffer[] = []
          if (framing === 'garbage-preamble') chunks.push(Buffer.from(noise))
          for (const part of parts) {
            const delimiter = framing === 'wrong-boundary' ? 'other' : bare
            let disposition = `Content-Disposition: form-data; name="${part.name}"`
            if (part.filename !== undefined) disposition += `; filename="${part.filename}"`
            const headers = [disposition, ...(part.type !== undefined ? [`Content-Type: ${part.type}`] : [])]
            const body =
              part.body === 'image'
                ? image
                : part.body === 'huge'
                  ? Buffer.alloc(app.config.maxBodyBytes + 10, 1)
                  : part.body === 'random'
                    ? Buffer.from(noise)
                    : Buffer.alloc(0)
            chunks.push(Buffer.from(`--${delimiter}${crlf}${headers.join(crlf)}${crlf}${crlf}`), body)
            chunks.push(Buffer.from(framing === 'no-crlf' ? '' : crlf))
          }
          if (framing !== 'no-final') chunks.push(Buffer.from(`--${bare}--${crlf}`))
          let payload = Buffer.concat(chunks)
          if (framing === 'truncate') payload = payload.subarray(0, Math.floor(payload.length / 2))
          const res = await app.inject({
            method: 'POST',
            url: '/v1/classify',
            headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
            payload,
          })
          assertAnsweredOrRefused(
            res,
            undefined,
            `${framing} ${JSON.stringify(parts.map((p) => [p.name, p.body]))}`,
          )
        },
      ),
    )
    await assertHealthy(app, image)
  })

  it('JSON bodies of POST /v1/select', async (t) => {
    const fieldValueArb = fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(0, -1, 1e308, -0, 0.5, 1, 2, 'reject', 'smallest', 'fixture-rgb32', '../manifest.json'),
    )
    const objectArb = fc.dictionary(
      fc.oneof(
        fc.constantFrom('maxMflops', 'maxLatencyMs', 'minTop1', 'model', 'onInfeasible'),
        fc.string({ maxLength: 8 }),
      ),
      fieldValueArb,
      { maxKeys: 4 },
    )
    const textArb = fc.oneof(
      objectArb.map((o) => JSON.stringify(o)),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.constantFrom(
        '',
        '{',
        '{"maxMflops": 1, "maxMflops": 2}',
        '{"__proto__": {"polluted": true}}',
        '{"constructor": {"prototype": {"polluted": true}}}',
        '{"maxMflops": 1e999}',
        '{"maxMflops": NaN}',
        '['.repeat(5000),
        `{"model": "${'x'.repeat(100_000)}"}`,
        'null',
        '"string"',
        '\u0000',
      ),
      fc.string({ maxLength: 80 }),
    )
    await fuzz(
      t,
      'select bodies',
      200,
      fc.asyncProperty(
        textArb,
        fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain'),
        async (text, type) => {
          const res = await app.inject({
            method: 'POST',
            url: '/v1/select',
            headers: { 'content-type': type },
            payload: text,
          })
          assertAnsweredOrRefused(res, undefined, `${type} ${text.slice(0, 120)}`)
        },
      ),
    )
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was polluted')
    await assertHealthy(app, image)
  })

  it('Open Inference Protocol infer bodies never cause a 5xx', async (t) => {
    const tensorArb = fc.record(
      {
        name: fc.oneof(fc.constantFrom('input', 'x', ''), fc.string({ maxLength: 6 })),
        shape: fc.oneof(
          fc.constant([1, 3, 32, 32]),
          fc.constant([1, 1, 28, 28]),
          fc.array(fc.oneof(fc.integer({ min: -2, max: 64 }), fc.constant(2 ** 31), fc.constant(1e9)), {
            maxLength: 5,
          }),
        ),
        datatype: fc.constantFrom('FP32', 'FP16', 'INT64', 'BYTES', 'fp32', 'BOOL', ''),
        data: fc.oneof(
          fc.array(fc.double(), { maxLength: 8 }),
          fc.constant(new Array(3 * 32 * 32).fill(0.5)),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        parameters: fc.option(
          fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
          {
            nil: undefined,
          },
        ),
      },
      { requiredKeys: [] },
    )
    const bodyArb = fc.oneof(
      fc
        .record(
          {
            inputs: fc.array(tensorArb, { maxLength: 2 }),
            outputs: fc.option(fc.jsonValue(), { nil: undefined }),
          },
          { requiredKeys: [] },
        )
        .map((b) => JSON.stringify(b)),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 60 }),
    )
    await fuzz(
      t,
      'OIP infer bodies',
      150,
      fc.asyncProperty(
        fc.constantFrom('fixture-rgb32', 'fixture-gray28-small', 'alphanet-auto', 'nope'),
        bodyArb,
        fc.option(fc.constantFrom('0', '5', '-1', 'abc', '999999999999'), { nil: undefined }),
        async (model, body, headerLength) => {
          const res = await app.inject({
            method: 'POST',
            url: `/v2/models/${model}/infer`,
            headers: {
              'content-type': 'application/json',
              ...(headerLength !== undefined && { 'inference-header-content-length': headerLength }),
            },
            payload: body,
          })
          assertOipAnswer(res, `${model} ${body.slice(0, 120)}`)
        },
      ),
    )
    await assertHealthy(app, image)
  })

  it('methods × paths', async (t) => {
    const paths = [
      '/',
      '/healthz',
      '/readyz',
      '/models',
      '/models/fixture-rgb32',
      '/v1/classify',
      '/v1/select',
      '/metrics',
      '/docs',
      '/docs/json',
      '/admin/reload',
      '/v2',
      '/v2/health/ready',
      '/v2/models/fixture-rgb32',
      '/v2/models/fixture-rgb32/infer',
      '//models',
      '/models/',
      '/v1/classify/',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/ui/../../package.json',
    ]
    await fuzz(
      t,
      'methods and paths',
      120,
      fc.asyncProperty(
        fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.constantFrom(...paths),
        fc.option(fc.constantFrom('application/json', 'image/png', 'text/plain'), { nil: undefined }),
        async (method, path, type) => {
          const res = await app.inject({
            method: method as 'GET',
            url: path,
            ...(type !== undefined &&
              method !== 'GET' &&
              method !== 'HEAD' && {
                headers: { 'content-type': type },
                payload: type === 'image/png' ? image : '{}',
              }),
          })
          assert.ok(res.statusCode < 500, `${method} ${path} → ${show(res)}`)
          assert.doesNotMatch(res.body, /root:x:0|"devDependencies"/, `${method} ${path} leaked a file`)
        },
      ),
    )
    await assertHealthy(app, image)
  })
})
