/**
 * Liveness and readiness probes. /healthz answers as long as the process serves HTTP; /readyz only
 * when a zoo is loaded and warm (load balancers route traffic on it; Fastify itself answers 503
 * to new requests once close() has begun, see return503OnClosing in app.ts).
 */
import type { FastifyPluginAsync } from 'fastify'
import { Type } from 'typebox'
import { apiError } from '../errors.js'

const Live = Type.Object({ status: Type.Literal('ok') })
const Ready = Type.Object({
  status: Type.Literal('ready'),
  models: Type.Integer({ description: 'Models ready to serve.' }),
})
const NotReady = Type.Object({
  statusCode: Type.Literal(503),
  code: Type.Literal('NOT_READY'),
  error: Type.String(),
  message: Type.String(),
})

const health: FastifyPluginAsync = async (app) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness probe', response: { 200: Live } } },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness probe: 200 once the zoo is loaded and warm, else 503',
        response: { 200: Ready, 503: NotReady },
      },
    },
    async (_request, reply) => {
      if (app.zoo.isReady()) return { status: 'ready' as const, models: app.zoo.readyModels().length }
      const error = apiError('NOT_READY', 'no model is loaded and warm, or the server is shutting down')
      return reply.code(503).send(error.toBody())
    },
  )
}

export default health
