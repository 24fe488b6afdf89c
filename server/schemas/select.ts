/** POST /v1/select (dry run): request and response schemas. */
import { Type, type Static } from 'typebox'
import { BudgetEcho, BudgetProperties, ModelName, OnInfeasibleSchema } from './common.js'
import { AlternativeSchema, CandidateSchema, SelectionReasonSchema, ServedModelSchema } from './selection.js'

/** The same fields whether sent as query parameters or as a JSON body. */
export const SelectRequestSchema = Type.Object(
  {
    ...BudgetProperties,
    model: Type.Optional(ModelName),
    onInfeasible: Type.Optional(OnInfeasibleSchema),
  },
  { additionalProperties: false },
)

export const SelectResponseSchema = Type.Object(
  {
    outcome: Type.Union(
      [
        Type.Literal('selected'),
        Type.Literal('infeasible'),
        Type.Literal('model-not-ready'),
        Type.Literal('no-ready-model'),
      ],
      { description: 'What POST /v1/classify would do with this budget.' },
    ),
    model: Type.Union([ServedModelSchema, Type.Null()], {
      description: 'The model that would serve; null if none.',
    }),
    reason: Type.Union([SelectionReasonSchema, Type.Null()]),
    explanation: Type.String(),
    budget: BudgetEcho,
    predictedLatencyMs: Type.Union([Type.Number(), Type.Null()]),
    cheapest: AlternativeSchema,
    fastest: AlternativeSchema,
    candidates: Type.Array(CandidateSchema, {
      description: 'Every model and cascade of the zoo with its verdict (a cascade has live: null).',
    }),
    cascade: Type.Optional(
      Type.Object(
        {
          stages: Type.Array(Type.String()),
          thresholds: Type.Array(Type.Number()),
          expectedMflops: Type.Number(),
          worstMflops: Type.Number(),
        },
        {
          additionalProperties: false,
          description:
            'Present when a cascade would serve: `model` then names the cascade with its expected MFLOPs and first stage’s input.',
        },
      ),
    ),
    error: Type.Union(
      [
        Type.Object(
          { statusCode: Type.Integer(), code: Type.String(), message: Type.String() },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      {
        description:
          'The error POST /v1/classify would answer instead of classifying; null if it would classify.',
      },
    ),
  },
  { additionalProperties: false },
)

export type SelectResponse = Static<typeof SelectResponseSchema>
