/**
 * A per-request AbortSignal that fires when the client goes away before its answer was written.
 *
 * Fastify's own `request.signal` is tied to the IncomingMessage's 'close', which Node emits as soon
 * as the request body has been read — it would abort every request with a body. The response's
 * 'close' is the right event: it fires when the answer has been sent (writableFinished is then
 * true) or when the connection dropped first, which is the case this signal reports. The runtime
 * uses it to drop work still queued for a request nobody will read.
 */
import type { FastifyReply } from 'fastify'

export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController()
  const response = reply.raw
  if (response.destroyed && !response.writableFinished) controller.abort()
  else {
    response.once('close', () => {
      if (!response.writableFinished) controller.abort()
    })
  }
  return controller.signal
}
