/**
 * The API: OpenAPI collection first, then the routes (models, classify, select). Wrapped with
 * fastify-plugin so the OpenAPI hook lives on the root instance and also collects routes app.ts
 * registers afterwards (health). Each route file stays its own encapsulated plugin, so classify's
 * image-only body parsers and multipart support do not leak into the others.
 */
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import openapi from '../plugins/openapi.js'
import classify from './classify.js'
import models from './models.js'
import select from './select.js'

const apiRoutes: FastifyPluginAsync = async (app) => {
  await app.register(openapi)
  await app.register(models)
  await app.register(classify)
  await app.register(select)
}

export default fp(apiRoutes, { name: 'api-routes' })
