/**
 * The API routes (models, classify, select). Owned by the HTTP-API work; app.ts registers this
 * plugin after the zoo and inference decorators exist.
 */
import type { FastifyPluginAsync } from 'fastify'

const apiRoutes: FastifyPluginAsync = async () => {}

export default apiRoutes
