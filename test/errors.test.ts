/**
 * The error catalogue and the mapping of every failure onto it: unique documented codes, Fastify
 * and plugin errors translated, internals never leaked, and the draining guard.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import Fastify, { type FastifyRequest } from 'fastify'
import { logApiError, registerErrorHandlers, toApiError } from '../server/error-handler.js'
import { ApiError, apiError, ERROR_CODES, ERROR_DEFINITIONS } from '../server/errors.js'
import { ROOT } from './helper.js'

interface OpenApi {
  components: { schemas: Record<string, { properties: { code: { enum: string[]; description: string } } }> }
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>
  >
}

const openapi = JSON.parse(await readFile(join(ROOT, 'openapi', 'openapi.json'), 'utf8')) as OpenApi

/** A Fastify-style error as the framework and its plugins raise them. */
function frameworkError(code: string, statusCode: number, message = 'framework message'): Error {
  return Object.assign(new Error(message), { code, statusCode })
}

describe('error catalogue', () => {
  it('codes are unique, UPPER_SNAKE, with a 4xx/5xx status and a description', () => {
    assert.equal(new Set(ERROR_CODES).size, ERROR_CODES.length)
    for (const d of ERROR_DEFINITIONS) {
      assert.match(d.code, /^[A-Z][A-Z0-9_]*$/)
      assert.ok(d.statusCode >= 400 && d.statusCode <= 599, d.code)
      assert.ok(d.description.length > 20, d.code)
    }
  })

  it('every code is documented in the OpenAPI ErrorResponse schema (enum and description)', () => {
    const code = openapi.components.schemas.ErrorResponse!.properties.code
    assert.deepEqual([...code.enum].sort(), [...ERROR_CODES].sort())
    for (const d of ERROR_DEFINITIONS)
      assert.ok(code.description.includes(`\`${d.code}\` (${d.statusCode})`), d.code)
  })

  it('every documented error response of every route is an ErrorResponse', () => {
    let checked = 0
    for (const [path, operations] of Object.entries(openapi.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const [status, response] of Object.entries(operation.responses)) {
          // /v2 answers Open Inference Protocol errors ({error}); test/routes/v2-openapi.test.ts checks those.
          if (Number(status) < 400 || path === '/readyz' || path.startsWith('/v2')) continue
          assert.deepEqual(
            response.content?.['application/json']?.schema,
            { $ref: '#/components/schemas/ErrorResponse' },
            `${method.toUpperCase()} ${path} ${status}`,
          )
          checked++
        }
      }
    }
    assert.ok(checked >= 10)
  })

  it('ApiError renders the standard body and refuses details that shadow it', () => {
    const error = apiError('MODEL_NOT_FOUND', 'no model named x', { model: 'x' })
    assert.deepEqual(error.toBody(), {
      statusCode: 404,
      code: 'MODEL_NOT_FOUND',
      error: 'Not Found',
      message: 'no model named x',
      model: 'x',
    })
    assert.throws(() => apiError('INVALID_PARAMETER', 'x', { code: 'OTHER' }), /shadow/)
  })
})

describe('toApiError', () => {
  it('passes catalogue errors through unchanged', () => {
    const error = apiError('BUDGET_INFEASIBLE', 'too tight')
    assert.equal(toApiError(error), error)
  })

  it('maps schema validation errors to INVALID_PARAMETER naming the parameter', () => {
    const validation = Object.assign(new Error('querystring/maxMflops must be > 0'), {
      statusCode: 400,
      code: 'FST_ERR_VALIDATION',
      validationContext: 'querystring',
      validation: [
        { instancePath: '/maxMflops', keyword: 'exclusiveMinimum', message: 'must be > 0', params: {} },
      ],
    })
    const mapped = toApiError(validation)
    assert.equal(mapped.code, 'INVALID_PARAMETER')
    assert.equal(mapped.message, 'query parameter "maxMflops" must be > 0')
    assert.deepEqual(mapped.details, { parameter: 'maxMflops', location: 'querystring' })

    const missing = Object.assign(new Error('x'), {
      validationContext: 'body',
      validation: [{ instancePath: '', keyword: 'required', params: { missingProperty: 'name' } }],
    })
    assert.equal(toApiError(missing).message, 'missing body field "name"')
  })

  it('maps Fastify and multipart error codes onto the catalogue', () => {
    const cases: [string, number, string][] = [
      ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'BODY_TOO_LARGE'],
      ['FST_REQ_FILE_TOO_LARGE', 413, 'BODY_TOO_LARGE'],
      ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['FST_INVALID_MULTIPART_CONTENT_TYPE', 406, 'UNSUPPORTED_MEDIA_TYPE'],
      ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'MALFORMED_BODY'],
      ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'MALFORMED_BODY'],
      ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'MALFORMED_BODY'],
      ['FST_PROTO_VIOLATION', 400, 'MALFORMED_BODY'],
      ['FST_FILES_LIMIT', 413, 'MALFORMED_BODY'],
      ['FST_PARTS_LIMIT', 413, 'MALFORMED_BODY'],
      ['FST_ERR_BAD_URL', 400, 'INVALID_PARAMETER'],
      ['SOME_FUTURE_CLIENT_ERROR', 400, 'INVALID_PARAMETER'],
      ['SOME_FUTURE_NOT_FOUND', 404, 'ROUTE_NOT_FOUND'],
    ]
    for (const [code, status, expected] of cases) {
      const mapped = toApiError(frameworkError(code, status))
      assert.equal(mapped.code, expected, code)
      assert.ok(mapped.statusCode < 500, code)
    }
  })

  it('names the refused Content-Type when the request is known', () => {
    const mapped = toApiError(frameworkError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), {
      method: 'POST',
      url: '/v1/classify?topK=3',
      headers: { 'content-type': 'text/csv' },
    })
    assert.equal(mapped.message, 'Content-Type "text/csv" is not accepted by POST /v1/classify')
  })

  it('anything else is INTERNAL_ERROR with a generic message (no internals leak)', () => {
    for (const thrown of [
      new Error('secret path /etc/x'),
      frameworkError('FST_WEIRD', 500, 'boom'),
      'a string',
      null,
    ]) {
      const mapped = toApiError(thrown)
      assert.equal(mapped.code, 'INTERNAL_ERROR')
      assert.equal(mapped.message, 'internal server error')
    }
  })
})

describe('registerErrorHandlers', () => {
  it('renders thrown errors and unknown routes as catalogue bodies; 5xx never shows the cause', async (t) => {
    const app = Fastify({ logger: false })
    t.after(() => app.close())
    registerErrorHandlers(app)
    app.get('/crash', async () => {
      throw new Error('database password is hunter2')
    })
    app.get('/coded', async () => {
      throw apiError('MODEL_NOT_READY', 'warming up', { model: 'm' })
    })
    const crash = await app.inject({ method: 'GET', url: '/crash' })
    assert.equal(crash.statusCode, 500)
    assert.deepEqual(crash.json(), {
      statusCode: 500,
      code: 'INTERNAL_ERROR',
      error: 'Internal Server Error',
      message: 'internal server error',
    })
    const coded = await app.inject({ method: 'GET', url: '/coded' })
    assert.equal(coded.statusCode, 503)
    assert.equal(coded.json<{ model: string }>().model, 'm')
    const missing = await app.inject({ method: 'GET', url: '/nowhere?x=1' })
    assert.equal(missing.statusCode, 404)
    assert.deepEqual(missing.json(), {
      statusCode: 404,
      code: 'ROUTE_NOT_FOUND',
      error: 'Not Found',
      message: 'no route GET /nowhere',
    })
  })

  it('once close() begins, requests still arriving get 503 SHUTTING_DOWN', async (t) => {
    const app = Fastify({ logger: false, return503OnClosing: false, forceCloseConnections: 'idle' })
    registerErrorHandlers(app)
    app.get('/ping', async () => ({ pong: true }))
    // preClose hooks run in order once close() starts; this one (after the guard's) sends the next
    // request on the pooled connection, which the server has not closed yet.
    let duringClose: () => Promise<void> = async () => undefined
    app.addHook('preClose', async () => {
      await duringClose()
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }

    // A pooled keep-alive connection, as a load balancer holds one.
    const socket = connect(port, '127.0.0.1')
    t.after(() => socket.destroy())
    let received = ''
    let onData: () => void = () => undefined
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8')
      onData()
    })
    // Headers, blank line, then the whole JSON body (every answer here is one JSON object).
    const COMPLETE_RESPONSE = /\r\n\r\n\{[\s\S]*\}$/
    const exchange = async (until: RegExp): Promise<string> => {
      received = ''
      socket.write('GET /ping HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')
      await new Promise<void>((resolve) => {
        onData = () => {
          if (until.test(received)) resolve()
        }
      })
      return received
    }
    assert.match(await exchange(COMPLETE_RESPONSE), /^HTTP\/1\.1 200[\s\S]*\{"pong":true\}$/)

    let answer = ''
    duringClose = async () => {
      answer = await exchange(COMPLETE_RESPONSE)
    }
    await app.close()
    assert.match(answer, /^HTTP\/1\.1 503/)
    assert.match(answer, /connection: close/i)
    assert.match(answer, /"code":"SHUTTING_DOWN"/)
  })

  it('keeps ApiError instances intact for instanceof checks', () => {
    assert.ok(apiError('NOT_READY', 'x') instanceof ApiError)
  })
})

describe('logApiError', () => {
  function recorder() {
    const entries: { level: string; obj: Record<string, unknown>; msg: string }[] = []
    const log = (level: string) => (obj: Record<string, unknown>, msg: string) =>
      entries.push({ level, obj, msg })
    const request = { log: { error: log('error'), info: log('info') } } as unknown as FastifyRequest
    return { entries, request }
  }

  it('logs a server fault at error level with its cause', () => {
    const { entries, request } = recorder()
    const cause = new Error('session.run exploded')
    logApiError(request, cause, apiError('INFERENCE_FAILED', 'model broke'))
    assert.equal(entries.at(0)?.level, 'error')
    assert.equal(entries.at(0)?.obj.err, cause)
  })

  it('logs shedding, deadlines and departed clients at info, with the code only', () => {
    for (const code of [
      'OVERLOADED',
      'DEADLINE_EXCEEDED',
      'SHUTTING_DOWN',
      'CLIENT_CLOSED',
      'MODEL_NOT_READY',
    ] as const) {
      const { entries, request } = recorder()
      const refusal = apiError(code, 'refused', { candidates: [{ name: 'a', live: {} }] })
      logApiError(request, refusal, refusal)
      assert.equal(entries.at(0)?.level, 'info', code)
      assert.deepEqual(entries.at(0)?.obj, { code }, 'no details: a refusal must stay cheap')
    }
  })
})
