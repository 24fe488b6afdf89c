/**
 * POST /v1/select — dry run of the selection POST /v1/classify would make: no image, no inference.
 * The fields (maxMflops, maxLatencyMs, minTop1, model, onInfeasible) come as query parameters, as
 * a JSON body, or both as long as no field is given twice. The answer is 200 whenever the request
 * itself is valid, even when classify would refuse (infeasible budget, model not ready): `outcome`
 * and `error` say what classify would do and `candidates` shows every model's verdict with the
 * values compared. Only an unknown `model` is a 404 — the request names something that is not there.
 */
import { isCascade, type Servable } from '../cascade/candidates.js'
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { apiError } from '../errors.js'
import { errorResponses } from '../schemas/common.js'
import { SelectRequestSchema, SelectResponseSchema, type SelectResponse } from '../schemas/select.js'
import { strictBody, strictQuery } from '../schemas/strict-query.js'
import { choose, contractModel, type SelectionFields } from '../selection/choose.js'
import { alternativeView, budgetView, candidateView, servedModel } from '../selection/views.js'

/** Query and body merged; a field in both is ambiguous and refused. */
function mergeFields(query: SelectionFields, body: SelectionFields | null | undefined): SelectionFields {
  const merged: Record<string, unknown> = { ...query }
  for (const [key, value] of Object.entries(body ?? {})) {
    if (Object.hasOwn(merged, key)) {
      throw apiError('INVALID_PARAMETER', `"${key}" is given both as a query parameter and in the body`, {
        parameter: key,
        location: 'body',
      })
    }
    merged[key] = value
  }
  return merged
}

/** The served view of a model, or of a cascade: its name and expected MFLOPs, its first stage's input. */
function servedView(servable: Servable) {
  if (!isCascade(servable)) return servedModel(servable)
  return {
    ...servedModel(contractModel(servable)),
    name: servable.name,
    mflops: servable.mflops,
    top1: servable.top1,
  }
}

const select: FastifyPluginAsync = async (app) => {
  // JSON bodies only (Fastify would also parse text/plain, which can never be a valid request).
  app.removeContentTypeParser('text/plain')

  const api = app.withTypeProvider<TypeBoxTypeProvider>()
  api.post(
    '/v1/select',
    {
      schema: {
        tags: ['inference'],
        summary: 'Dry run: which model a budget gets, and why',
        description:
          'Same selection as POST /v1/classify, without an image. Fields as query parameters and/or a JSON body. Answers 200 with `outcome` for any valid request; `error` holds what classify would answer instead of classifying.',
        querystring: SelectRequestSchema,
        body: Type.Union([SelectRequestSchema, Type.Null()]),
        response: { 200: SelectResponseSchema, ...errorResponses(400, 404, 413, 415) },
      },
      preValidation: [strictQuery(SelectRequestSchema), strictBody(SelectRequestSchema)],
    },
    async (request, reply): Promise<SelectResponse> => {
      // Judged like a classify request arriving now: the time this request has spent counts.
      const { selection, outcome, error } = choose(app.zoo, {
        fields: mergeFields(request.query, request.body),
        elapsedMs: reply.elapsedTime,
      })
      if (error?.code === 'MODEL_NOT_FOUND') throw error

      const base = {
        explanation: outcome.explanation,
        candidates: outcome.candidates.map(candidateView),
        cheapest: null,
        fastest: null,
        error: error ? { statusCode: error.statusCode, code: error.code, message: error.message } : null,
      }
      switch (outcome.kind) {
        case 'selected':
          return {
            ...base,
            outcome: 'selected',
            model: servedView(outcome.model),
            ...(isCascade(outcome.model) && {
              cascade: {
                stages: outcome.model.cascade.stages,
                thresholds: outcome.model.cascade.thresholds,
                expectedMflops: outcome.model.cascade.expectedMflops,
                worstMflops: outcome.model.cascade.worstMflops,
              },
            }),
            reason: outcome.reason,
            budget: budgetView(selection, outcome.budgetMet),
            predictedLatencyMs: outcome.predictedLatencyMs,
          }
        case 'infeasible':
          return {
            ...base,
            outcome: 'infeasible',
            model: null,
            reason: null,
            budget: budgetView(selection, false),
            predictedLatencyMs: null,
            cheapest: alternativeView(outcome.cheapest),
            fastest: alternativeView(outcome.fastest),
          }
        case 'model-not-ready':
        case 'no-ready-model':
          return {
            ...base,
            outcome: outcome.kind,
            model: null,
            reason: null,
            budget: budgetView(selection, false),
            predictedLatencyMs: null,
          }
        case 'model-not-found':
          throw apiError('INTERNAL_ERROR', 'unreachable: model-not-found is answered above')
      }
    },
  )
}

export default select
