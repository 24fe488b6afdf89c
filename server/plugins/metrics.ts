/**
 * Metrics wiring: decorates the app with `metrics` (server/metrics.ts), counts every HTTP
 * response, and observes POST /v1/classify from its documented response body (served model,
 * selection reason, budget verdict, timing) or error body (code) — so the classify route needs no
 * metrics code of its own — and counts every catalogue answer with a shedding code as shed. Register it before the API routes (its hooks must cover them).
 * `metricsRoute` serves GET /metrics; register it after the OpenAPI plugin so it is documented.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ServerMetrics, type BudgetOutcome, type InferenceObservation } from '../metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServerMetrics
  }
}

const CLASSIFY_URL = '/v1/classify'

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const BUDGET_FIELDS = ['maxMflops', 'maxLatencyMs', 'minTop1'] as const

/** Reads a classify response body (ClassifyResponseSchema) into an observation. */
function classifyObservation(body: Record<string, unknown>): {
  observation: InferenceObservation
  totalMs?: number
  execution?: { queueMs: number; inferenceMs: number }
} {
  const observation: InferenceObservation = { api: 'v1' }
  const model = body.model
  if (isRecord(model) && typeof model.name === 'string') observation.model = model.name
  const selection = body.selection
  if (isRecord(selection) && typeof selection.reason === 'string') {
    observation.selectionReason = selection.reason
  }
  const budget = body.budget
  if (isRecord(budget)) {
    const budgeted = BUDGET_FIELDS.some((key) => budget[key] !== undefined)
    const outcome: BudgetOutcome = budget.met === false ? 'missed' : 'met'
    observation.budget = budgeted ? outcome : 'none'
  }
  const timing = body.timing
  if (!isRecord(timing)) return { observation }
  const { totalMs, queueMs, inferenceMs } = timing
  return {
    observation,
    ...(typeof totalMs === 'number' && { totalMs }),
    ...(typeof queueMs === 'number' &&
      typeof inferenceMs === 'number' && { execution: { queueMs, inferenceMs } }),
  }
}

function isClassify(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.routeOptions.url === CLASSIFY_URL
}

function observeClassify(app: FastifyInstance, elapsedMs: number, payload: unknown): void {
  if (!isRecord(payload)) return
  if (typeof payload.code === 'string') {
    // An error body; MODEL_NOT_READY and BUDGET_INFEASIBLE name a model in their details.
    const model = typeof payload.model === 'string' ? payload.model : undefined
    app.metrics.recordFailure({ api: 'v1', model }, payload.code)
    return
  }
  const { observation, totalMs, execution } = classifyObservation(payload)
  if (observation.model === undefined) return
  app.metrics.recordServed(observation, totalMs ?? elapsedMs)
  if (execution) app.metrics.recordExecution(observation.model, { batchSize: 1, ...execution })
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
    if (isClassify(request)) observeClassify(app, reply.elapsedTime, payload)
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
