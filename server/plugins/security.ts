/**
 * Hardening of the HTTP surface, registered on the root before any route:
 *
 * - Security headers on every response (`nosniff`, no framing, no referrer, same-origin
 *   isolation) and a Content-Security-Policy where the route set none: JSON and binary answers get
 *   `default-src 'none'` (nothing in them may ever execute); HTML without its own policy — the
 *   Swagger UI under /docs — gets one allowing only its own scripts and styles. The demo page at /
 *   sets its own stricter policy, which is kept. No HSTS: TLS ends at the proxy in front.
 * - Load shedding (@fastify/under-pressure): while the mean event-loop delay, the V8 heap or the RSS
 *   is over its configured limit, requests get 503 OVERLOADED with Retry-After. This plugin wires
 *   the front-door checks into Fastify's hooks; the refusals themselves are admission's
 *   (server/admission/admit.ts, where every reason a request is refused is listed). Probes and metrics
 *   are exempt: an orchestrator that sees the liveness probe fail restarts the pod, which turns an
 *   overload into an outage.
 * - Optional per-client rate limiting (@fastify/rate-limit, off unless RATE_LIMIT_MAX > 0): 429
 *   RATE_LIMITED with Retry-After, probes and metrics exempt. It keys on the peer address; behind a
 *   proxy that address is the proxy's, so limit per client at the proxy instead.
 * - At most MAX_CONNECTIONS open connections (Node closes further ones on accept), and at most
 *   MAX_IN_FLIGHT requests being handled (503 OVERLOADED beyond, probes exempt), gRPC calls
 *   included: `app.admission` admits those by the in-flight bound and the pressure limits.
 * - `handleClientError`: what Node's HTTP parser refuses before Fastify sees a request (headers
 *   over MAX_HEADER_BYTES, a request slower than REQUEST_TIMEOUT_MS, unparseable framing) is
 *   answered with a catalogue JSON error too, then the connection is closed.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { admit, PRESSURE_RETRY_AFTER_S } from '../admission/admit.js'
import { InFlightLimit, type Admission } from '../admission/front-door.js'
import { apiError, type ErrorCode } from '../errors.js'

/** Paths never shed nor rate limited: liveness/readiness probes (both protocols) and scraping. */
export const EXEMPT_PATHS: ReadonlySet<string> = new Set([
  '/healthz',
  '/readyz',
  '/metrics',
  '/v2/health/live',
  '/v2/health/ready',
])

export { PRESSURE_RETRY_AFTER_S }

/** under-pressure's sampling interval (its default), ms. */
const SAMPLE_INTERVAL_MS = 1000

/**
 * After the app is ready, event-loop delay is not acted on for two sampling intervals (plus timer
 * slack): the first sample after start-up still covers the start-up itself (compiling schemas,
 * loading the zoo), which can block the loop for over a second — under-pressure then reports an
 * infinite delay and would refuse the first requests of a perfectly idle server.
 */
export const STARTUP_GRACE_MS = 2 * SAMPLE_INTERVAL_MS + 200

/** For responses that carry no executable content (JSON, binary tensors, plain text). */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

/**
 * For HTML that sets no policy of its own: Swagger UI loads its scripts and styles from /docs,
 * sets inline style attributes, uses data: images, and calls the API on this origin.
 */
export const HTML_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

const FIXED_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

function pathOf(request: FastifyRequest): string {
  const url = request.url
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

export function isExempt(request: FastifyRequest): boolean {
  return EXEMPT_PATHS.has(pathOf(request))
}

function addSecurityHeaders(reply: FastifyReply): void {
  for (const [name, value] of Object.entries(FIXED_HEADERS)) {
    if (!reply.hasHeader(name)) void reply.header(name, value)
  }
  if (reply.hasHeader('content-security-policy')) return
  const type = String(reply.getHeader('content-type') ?? '')
  void reply.header('content-security-policy', /^text\/html\b/i.test(type) ? HTML_CSP : API_CSP)
}

const security: FastifyPluginAsync = async (app) => {
  const { config } = app
  // Every connection holds a socket and a file descriptor until it closes; beyond the limit Node
  // closes new ones on accept, so a flood of idle connections cannot exhaust the process.
  if (config.maxConnections > 0) app.server.maxConnections = config.maxConnections

  app.addHook('onSend', async (_request, reply, payload) => {
    addSecurityHeaders(reply)
    return payload
  })

  // HTTP/1.1 requires Host (RFC 9112 §3.2); app.ts lets such requests through Node's parser so
  // the refusal carries a catalogue code.
  app.addHook('onRequest', async (request) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      throw apiError('MALFORMED_REQUEST', 'an HTTP/1.1 request needs a Host header')
    }
  })

  let readyAt = Number.POSITIVE_INFINITY
  app.addHook('onReady', async () => {
    readyAt = performance.now()
  })

  // Front-door bound: at most MAX_IN_FLIGHT requests in the server at once. The stages behind it
  // have their own bounds; this one holds whatever they do, so a backlog can never grow without
  // limit in memory. A request counts until its response has finished or its connection closed.
  // The bound is shared with gRPC calls (app.admission, below).
  const inFlight = new InFlightLimit(config.maxInFlight)
  if (config.maxInFlight > 0) {
    app.addHook('onRequest', async (request, reply) => {
      if (isExempt(request)) return
      reply.raw.once('close', inFlight.enter())
    })
  }

  await app.register(underPressure, {
    sampleInterval: SAMPLE_INTERVAL_MS,
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    maxHeapUsedBytes: config.maxHeapUsedBytes,
    maxRssBytes: config.maxRssBytes,
    // Never shed probes and scraping; shed everything else with a catalogue error.
    pressureHandler: (request, _reply, type, value) => {
      if (isExempt(request)) return undefined
      if (type === 'eventLoopDelay' && performance.now() - readyAt < STARTUP_GRACE_MS) return undefined
      const measured = typeof value === 'number' ? Math.round(value) : value
      request.log.warn({ pressure: type, value: measured }, 'shedding load')
      return Promise.reject(admit({ stage: 'pressure', underPressure: true, pressure: type, measured }))
    },
  })

  // Transports without Fastify's hooks (gRPC) are admitted here, by the same bounds.
  const admission: Admission = {
    admit: () => {
      const graced = performance.now() - readyAt < STARTUP_GRACE_MS
      const refused = admit({ stage: 'pressure', underPressure: !graced && app.isUnderPressure() })
      if (refused) throw refused
      return inFlight.enter()
    },
  }
  app.decorate('admission', admission)

  if (config.rateLimitMax > 0) {
    await app.register(rateLimit, {
      global: true,
      max: config.rateLimitMax,
      timeWindow: config.rateLimitWindowMs,
      allowList: (request) => isExempt(request),
      errorResponseBuilder: (_request, context) =>
        admit({
          stage: 'rate-limit',
          max: context.max,
          windowMs: config.rateLimitWindowMs,
          retryAfterS: Math.max(1, Math.ceil(context.ttl / 1000)),
        }),
    })
  }
}

export default fp(security, { name: 'security' })

/** The catalogue error for what Node's HTTP parser refused (see Fastify's `clientErrorHandler`). */
function clientErrorCode(error: Error & { code?: string }): ErrorCode {
  if (error.code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE'
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT'
  return 'MALFORMED_REQUEST'
}

const CLIENT_ERROR_MESSAGES: Readonly<Partial<Record<ErrorCode, string>>> = {
  HEADERS_TOO_LARGE: 'the request line and headers are larger than this server accepts',
  REQUEST_TIMEOUT: 'the request did not arrive completely in time',
  MALFORMED_REQUEST: 'the HTTP request cannot be parsed',
}

/**
 * Fastify `clientErrorHandler`: answers with a coded JSON body (Fastify's default has no `code`)
 * and closes the connection, whose parser state is unusable after such an error.
 */
export function handleClientError(
  this: FastifyInstance,
  error: Error & { code?: string },
  socket: Socket,
): void {
  // A reset connection cannot be answered; nothing else to do.
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const code = clientErrorCode(error)
  const apiErr = apiError(code, CLIENT_ERROR_MESSAGES[code] ?? 'bad request')
  const body = JSON.stringify(apiErr.toBody())
  this.log.info({ code, reason: error.code ?? error.message }, apiErr.message)
  if (socket.writable) {
    const headers = [
      `HTTP/1.1 ${apiErr.statusCode} ${STATUS_CODES[apiErr.statusCode] ?? 'Error'}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `Content-Security-Policy: ${API_CSP}`,
      'X-Content-Type-Options: nosniff',
      'Connection: close',
    ]
    socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`)
  } else {
    socket.destroy(error)
  }
}
