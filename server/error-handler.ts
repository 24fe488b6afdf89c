/**
 * Every failure leaves the server as a catalogue error (server/errors.ts). Fastify's own errors
 * (schema validation, body parsing, size limits, media types) and @fastify/multipart's are mapped
 * onto the catalogue here, so a client never sees a Fastify-internal code and bad input never
 * turns into a 5xx. Anything unexpected becomes INTERNAL_ERROR with the details only in the log.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiError, apiError, type ErrorCode } from './errors.js'
import { ErrorResponseSchema } from './schemas/common.js'

/** Fastify / plugin error codes that have a direct catalogue equivalent. */
const CODE_MAP: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_REQ_FILE_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_BODY',
  FST_PROTO_VIOLATION: 'MALFORMED_BODY',
  FST_MP_PREMATURE_CLOSE: 'MALFORMED_BODY',
  FST_INVALID_JSON_FIELD_ERROR: 'MALFORMED_BODY',
  FST_PARTS_LIMIT: 'MALFORMED_BODY',
  FST_FILES_LIMIT: 'MALFORMED_BODY',
  FST_FIELDS_LIMIT: 'MALFORMED_BODY',
  FST_ERR_BAD_URL: 'INVALID_PARAMETER',
}

/** Better wording than the plugins' terse messages ("reach files limit"). */
const MESSAGES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'the request body is larger than this server accepts',
  FST_REQ_FILE_TOO_LARGE: 'the uploaded image is larger than this server accepts',
  FST_PARTS_LIMIT: 'the multipart body has too many parts; send one file part named "image"',
  FST_FILES_LIMIT: 'the multipart body has too many files; send one file part named "image"',
  FST_FIELDS_LIMIT: 'the multipart body has too many fields; send one file part named "image"',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'the body is declared as JSON but is empty',
}

/** Catalogue codes for 4xx statuses that arrive without a mapped code. */
const STATUS_FALLBACK: Readonly<Record<number, ErrorCode>> = {
  404: 'ROUTE_NOT_FOUND',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
}

interface ValidationIssue {
  instancePath?: string
  message?: string
  keyword?: string
  params?: Record<string, unknown>
}

const LOCATIONS: Readonly<Record<string, string>> = {
  querystring: 'query parameter',
  body: 'body field',
  params: 'path parameter',
  headers: 'header',
}

/** One Ajv issue → the parameter it concerns and a sentence a client can act on. */
function describeValidation(issue: ValidationIssue, context: string): { parameter: string; message: string } {
  const path = (issue.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.')
  const params = issue.params ?? {}
  const named =
    typeof params.missingProperty === 'string'
      ? params.missingProperty
      : typeof params.additionalProperty === 'string'
        ? params.additionalProperty
        : undefined
  const parameter = path || named || '(root)'
  const where = LOCATIONS[context] ?? context
  let message: string
  switch (issue.keyword) {
    case 'additionalProperties':
      message = `unknown ${where} "${parameter}"`
      break
    case 'required':
      message = `missing ${where} "${parameter}"`
      break
    case 'enum':
      message = `${where} "${parameter}" must be one of ${JSON.stringify(params.allowedValues)}`
      break
    default:
      message = `${where} "${parameter}" ${issue.message ?? 'is invalid'}`
  }
  return { parameter, message }
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error
}

/** The request facts some messages name. */
export type RequestContext = Pick<FastifyRequest, 'method' | 'url' | 'headers'>

function mediaTypeMessage(request: RequestContext | undefined): string | undefined {
  if (!request) return undefined
  const type = request.headers['content-type']
  const route = `${request.method} ${request.url.split('?')[0] ?? ''}`
  return type === undefined
    ? `${route} needs a Content-Type for its body`
    : `Content-Type ${JSON.stringify(type)} is not accepted by ${route}`
}

/** Maps anything thrown while handling a request onto the catalogue. */
export function toApiError(error: unknown, request?: RequestContext): ApiError {
  if (error instanceof ApiError) return error
  if (!isFastifyError(error)) return apiError('INTERNAL_ERROR', 'internal server error', {}, { cause: error })

  const validation = error.validation as ValidationIssue[] | undefined
  if (validation && validation.length > 0) {
    const context = error.validationContext ?? 'request'
    const { parameter, message } = describeValidation(validation[0] ?? {}, context)
    return apiError('INVALID_PARAMETER', message, { parameter, location: context }, { cause: error })
  }

  const mapped = error.code ? CODE_MAP[error.code] : undefined
  if (mapped) {
    const message =
      (mapped === 'UNSUPPORTED_MEDIA_TYPE' ? mediaTypeMessage(request) : MESSAGES[error.code]) ??
      error.message
    return apiError(mapped, message, {}, { cause: error })
  }

  const status = error.statusCode ?? 500
  if (status >= 400 && status < 500) {
    return apiError(STATUS_FALLBACK[status] ?? 'INVALID_PARAMETER', error.message, {}, { cause: error })
  }
  return apiError('INTERNAL_ERROR', 'internal server error', {}, { cause: error })
}

/**
 * An error that says when to come back (OVERLOADED, RATE_LIMITED, … with a numeric `retryAfterS`
 * detail) also sets the standard Retry-After header, in whole seconds, unless one is set already.
 */
export function setRetryAfter(reply: FastifyReply, error: ApiError): void {
  const seconds = error.details.retryAfterS
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || reply.hasHeader('retry-after')) return
  void reply.header('retry-after', String(Math.max(1, Math.ceil(seconds))))
}

/**
 * Logs an error answer. Only a server fault (500: INFERENCE_FAILED, INTERNAL_ERROR) is an error,
 * logged with its cause and stack. Everything else — bad input, and the 503/504/499 answers of
 * load shedding, deadlines and departed clients — is an expected outcome, logged at info with its
 * code alone: under overload the server refuses thousands of requests a second, and logging each
 * refusal at error level with its details (a shed request carries every candidate's figures)
 * would cost more CPU than serving them (RELIABILITY.md, bug 9).
 * Metrics count these outcomes by code.
 */
export function logApiError(request: FastifyRequest, error: unknown, apiErr: ApiError): void {
  if (apiErr.statusCode === 500) request.log.error({ err: error, code: apiErr.code }, apiErr.message)
  else request.log.info({ code: apiErr.code }, apiErr.message)
}

/**
 * Installs the error handler, the 404 handler, the shared ErrorResponse schema and the draining
 * guard on the root instance (call before registering routes). While the server closes, new requests get SHUTTING_DOWN (503) and a
 * `Connection: close`, in-flight ones finish; this replaces Fastify's uncoded return503OnClosing.
 */
export function registerErrorHandlers(app: FastifyInstance): void {
  // Shared so every route's error responses reference one schema (one OpenAPI component).
  app.addSchema(ErrorResponseSchema)

  app.setErrorHandler((error, request, reply) => {
    const apiErr = toApiError(error, request)
    logApiError(request, error, apiErr)
    setRetryAfter(reply, apiErr)
    return reply.code(apiErr.statusCode).send(apiErr.toBody())
  })

  app.setNotFoundHandler((request, reply) => {
    const apiErr = apiError(
      'ROUTE_NOT_FOUND',
      `no route ${request.method} ${request.url.split('?')[0] ?? ''}`,
    )
    return reply.code(apiErr.statusCode).send(apiErr.toBody())
  })

  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    void reply.header('connection', 'close')
    throw apiError('SHUTTING_DOWN', 'the server is shutting down; retry on another instance')
  })
  // Requests in flight when the drain began end their connection with their answer: a keep-alive
  // client (fetch, a proxy) would otherwise hold the socket open and close() would never finish.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close')
    return payload
  })
}

/**
 * For Fastify's `frameworkErrors` option: errors raised before routing (an undecodable URL such
 * as `/models/%E0%A4%A`) bypass the error handler and would otherwise get Fastify's uncoded body.
 */
export function handleFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const apiErr = toApiError(error, request)
  request.log.info({ code: apiErr.code }, apiErr.message)
  void reply.code(apiErr.statusCode).send(apiErr.toBody())
}
