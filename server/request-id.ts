/**
 * Request ids: a caller's `x-request-id` is honoured when it is a sane token (so one id follows a
 * request through a proxy, this server's logs and the caller's), otherwise a fresh UUID is used;
 * either way it is in every log line of the request (pino's `reqId`) and in the response's
 * `x-request-id` header. `requestIdOptions` goes into the Fastify constructor; the default export
 * is the plugin that sets the response header.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'

export const REQUEST_ID_HEADER = 'x-request-id'

/**
 * Printable token characters only and a bounded length: the id lands in logs and a response
 * header, so anything that could forge a log line or smuggle a header is replaced.
 */
const ACCEPTED_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/

export function requestIdFrom(req: Pick<IncomingMessage, 'headers'>): string {
  const given = req.headers[REQUEST_ID_HEADER]
  return typeof given === 'string' && ACCEPTED_ID.test(given) ? given : randomUUID()
}

/** Fastify constructor options (the header is read by genReqId itself, to validate it). */
export const requestIdOptions = {
  requestIdHeader: false,
  genReqId: requestIdFrom,
} as const

const requestId: FastifyPluginAsync = async (app) => {
  // onSend rather than onRequest: it also runs for responses to requests refused by an earlier
  // onRequest hook (the draining guard) and for the 404 handler.
  app.addHook('onSend', async (request, reply, payload) => {
    void reply.header(REQUEST_ID_HEADER, request.id)
    return payload
  })
}

export default fp(requestId, { name: 'request-id' })
