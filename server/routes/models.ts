/**
 * GET /models — every zoo model with its cost, accuracy, measured latency and readiness; with
 * budget parameters, only the models that could serve that budget now (ready and within every
 * constraint, exactly as selection judges them).
 * GET /models/:name — one model in full (input contract, labels, provenance). The name is only
 * ever looked up in the loaded zoo, never used as a path.
 */
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { apiError } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import {
  ModelDetailSchema,
  ModelParamsSchema,
  ModelsQuerySchema,
  ModelsResponseSchema,
  modelDetail,
  modelSummary,
} from '../schemas/models.js'
import { strictQuery } from '../schemas/strict-query.js'
import { cascadeCandidates } from '../cascade/candidates.js'
import { cascadeSummary } from '../schemas/cascades.js'
import { hasBudget, violations, type Budget, type SelectableModel } from '../selection/budget.js'

const NoQuery = Type.Object({}, { additionalProperties: false })

const models: FastifyPluginAsync = async (app) => {
  const api = app.withTypeProvider<TypeBoxTypeProvider>()

  api.get(
    '/models',
    {
      schema: {
        tags: ['models'],
        summary: 'List the zoo models',
        description:
          'Every model with MFLOPs, parameters, top-1, resolution, latency measured on this server, execution provider and readiness, and every cascade with its expected and worst-case figures. With maxMflops / maxLatencyMs / minTop1, only the ready models and cascades satisfying all of them.',
        querystring: ModelsQuerySchema,
        response: { 200: ModelsResponseSchema, ...errorResponses(400) },
      },
      preValidation: strictQuery(ModelsQuerySchema),
    },
    async (request) => {
      const budget: Budget = request.query
      const defaultName = app.zoo.defaultModelName()
      const all = app.zoo.list()
      const cascades = cascadeCandidates(app.zoo.cascades(), all)
      const fits = (m: SelectableModel) => !hasBudget(budget) || violations(m, budget).length === 0
      return {
        models: all.filter(fits).map((m) => modelSummary(m, defaultName)),
        cascades: cascades.filter(fits).map(cascadeSummary),
      }
    },
  )

  api.get(
    '/models/:name',
    {
      schema: {
        tags: ['models'],
        summary: 'One model in full',
        params: ModelParamsSchema,
        querystring: NoQuery,
        response: { 200: ModelDetailSchema, ...errorResponses(400, 404) },
      },
      preValidation: strictQuery(NoQuery),
    },
    async (request) => {
      const entry = app.zoo.get(request.params.name)
      if (!entry) {
        throw apiError(
          'MODEL_NOT_FOUND',
          `no model named "${request.params.name}" in the zoo (see GET /models)`,
          {
            model: request.params.name,
          },
        )
      }
      return modelDetail(entry, app.zoo.defaultModelName())
    },
  )
}

export default models
