/**
 * Errors under /v2 follow the Open Inference Protocol: the body is `{"error": "<message>"}` and the
 * status is the catalogue error's, except that 422 (an infeasible budget) becomes 400, the
 * protocol's status for a request that cannot be served as asked. So: 400 invalid request, 404
 * unknown model or route, 413 body too large, 415 media type, 500 server fault, 503 not ready or
 * shutting down. Failed inference requests are counted in the metrics with their catalogue code.
 */
import type { FastifyInstance } from 'fastify'
import type { ApiError } from '../../errors.js'
import { logApiError, setRetryAfter, toApiError } from '../../error-handler.js'
import { observations } from '../../plugins/metrics.js'
import { V2ErrorSchema } from './schemas.js'

export function v2Status(error: ApiError): number {
  return error.statusCode === 422 ? 400 : error.statusCode
}

/** `{ 404: V2Error, … }` for a route's response schema. */
export function v2ErrorResponses(...statuses: number[]): Record<number, typeof V2ErrorSchema> {
  return Object.fromEntries(statuses.map((status) => [status, V2ErrorSchema]))
}

export function registerV2Errors(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const apiErr = toApiError(error, request)
    logApiError(request, error, apiErr)
    const observation = observations.get(request)
    if (observation) app.metrics.recordFailure(observation, apiErr.code)
    app.metrics.recordRefusal(observation?.model, apiErr.code)
    // Load shedding and rate limits tell OIP clients when to retry too.
    setRetryAfter(reply, apiErr)
    return reply
      .code(v2Status(apiErr))
      .type('application/json; charset=utf-8')
      .send({ error: apiErr.message })
  })

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? ''
    return reply.code(404).send({ error: `no route ${request.method} ${path}` })
  })
}
