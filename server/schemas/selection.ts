/**
 * Schemas of what a selection decided: the served model, and each candidate's verdict (used by
 * POST /v1/select and by the 422 BUDGET_INFEASIBLE body).
 */
import { Type, type Static } from 'typebox'
import { ModelName } from './common.js'

export const ServedModelSchema = Type.Object(
  {
    name: ModelName,
    mflops: Type.Number(),
    top1: Type.Number(),
    resolution: Type.Integer(),
    inputSize: Type.Integer(),
    executionProvider: Type.Union([Type.Literal('cuda'), Type.Literal('cpu'), Type.Null()]),
  },
  { additionalProperties: false, description: 'The model that served (or would serve) the request.' },
)

export const SelectionReasonSchema = Type.Union(
  [
    Type.Literal('explicit'),
    Type.Literal('default'),
    Type.Literal('default-unavailable'),
    Type.Literal('best-within-budget'),
    Type.Literal('smallest-fallback'),
  ],
  {
    description:
      '`explicit`: named by `model`; `default`: no budget, the default model; `default-unavailable`: no budget and the default model is not ready, so the most accurate ready model; `best-within-budget`: the most accurate ready model satisfying the budget; `smallest-fallback`: budget infeasible and onInfeasible=smallest.',
  },
)

export const ViolationSchema = Type.Object(
  {
    constraint: Type.Union([
      Type.Literal('ready'),
      Type.Literal('maxMflops'),
      Type.Literal('maxLatencyMs'),
      Type.Literal('minTop1'),
    ]),
    limit: Type.Union([Type.Number(), Type.Null()], { description: "The budget's bound (null for ready)." }),
    actual: Type.Union([Type.Number(), Type.Null()], {
      description: "The model's value (null for ready, or when no latency was measured).",
    }),
    message: Type.String(),
  },
  { additionalProperties: false },
)

export const CandidateSchema = Type.Object(
  {
    name: ModelName,
    mflops: Type.Number(),
    top1: Type.Number(),
    latencyMs: Type.Union([Type.Number(), Type.Null()], {
      description: 'p50 latency measured on this server (ms), null if not measured.',
    }),
    ready: Type.Boolean(),
    considered: Type.Boolean({ description: 'False when an explicit `model` excluded this one.' }),
    accepted: Type.Boolean({ description: 'Ready and within every budget constraint.' }),
    violations: Type.Array(ViolationSchema, { description: 'Every constraint this model fails.' }),
  },
  { additionalProperties: false },
)

/** A model named in an infeasible answer: the cheapest and the fastest ready ones. */
export const AlternativeSchema = Type.Union(
  [
    Type.Object(
      {
        name: ModelName,
        mflops: Type.Number(),
        top1: Type.Number(),
        latencyMs: Type.Union([Type.Number(), Type.Null()]),
      },
      { additionalProperties: false },
    ),
    Type.Null(),
  ],
  { description: 'null when no ready model qualifies.' },
)

export type ServedModel = Static<typeof ServedModelSchema>
export type Candidate = Static<typeof CandidateSchema>
export type Alternative = Static<typeof AlternativeSchema>
