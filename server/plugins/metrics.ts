/**
 * Metrics wiring: decorates the app with `metrics` (server/metrics.ts), counts every HTTP
 * response, counts a failed POST /v1/classify by its error code (for the model its handler had
 * chosen, `observations`), and every catalogue answer with a shedding code as shed. Handlers
 * record what they served themselves. Register it before the API routes (its hooks must cover them).
 * `metricsRoute` serves GET /metrics; register it after the OpenAPI plugin so it is documented.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ServerMetrics, type InferenceObservation } from '../metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServerMetrics
  }
}

/**
 * What an inference request is known to have used so far (model, selection reason, budget
 * verdict), set by its handler as it decides: a failure after the choice is counted for that model.
 */
export const observations = new WeakMap<FastifyRequest, InferenceObservation>()

const CLASSIFY_URL = '/v1/classify'

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isClassify(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === CLASSIFY_URL
}

const metricsPlugin: FastifyPluginAsync = async (app) => {
  app.decorate(
    'metrics',
    new ServerMetrics({
      modelNames: () => app.zoo.names(),
      modelReadiness: () => app.zoo.list(),
    }),
  )

  app.addHook('preSerialization', async (request, reply, payload) => {
    // A served classify request is recorded by its handler; here its failures, by code.
    if (isClassify(request) && isRecord(payload) && typeof payload.code === 'string') {
      const model = typeof payload.model === 'string' ? payload.model : undefined
      app.metrics.recordFailure(observations.get(request) ?? { api: 'v1', model }, payload.code)
    }
    // Load shedding, deadlines and rate limits on any /v1 or /models route (/v2 counts its own).
    if (isRecord(payload) && typeof payload.code === 'string') {
      app.metrics.recordRefusal(typeof payload.model === 'string' ? payload.model : undefined, payload.code)
    }
    return payload
  })

  app.addHook('onResponse', async (request, reply) => {
    app.metrics.recordHttp(
      request.method,
      request.routeOptions.url,
      reply.statusCode,
      reply.elapsedTime / 1000,
    )
  })
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['zoo-runtime'] })

/** GET /metrics in the Prometheus text format. */
export const metricsRoute: FastifyPluginAsync = async (app) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['observability'],
        summary: 'Prometheus metrics',
        description:
          'Per-model request, failure, latency (queue, compute, total), batch-size, budget, selection and load-shedding metrics, HTTP metrics, and the default Node.js process metrics, in the Prometheus text exposition format.',
        produces: ['text/plain'],
        response: { 200: { type: 'string', description: 'Prometheus text format 0.0.4.' } },
      },
    },
    async (_request, reply) => {
      const text = await app.metrics.scrape()
      return reply.type(app.metrics.contentType).send(text)
    },
  )
}
