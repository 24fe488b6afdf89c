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

/** A model's load-aware figures at the moment of the answer (ModelEntry.live). */
export const LiveFiguresSchema = Type.Object(
  {
    predictedLatencyMs: Type.Number({
      description:
        'Predicted latency of a one-image request arriving now — decode/preprocess (overlapping the queue wait), run of the batch it would join, hand-off — as a cautious estimate: the mean plus three mean deviations of the observed spread, ms. What maxLatencyMs is compared with.',
    }),
    expectedLatencyMs: Type.Number({ description: 'The same prediction as a plain mean, ms.' }),
    arrivalRatePerS: Type.Number({
      description: 'Inference requests per second over all models (moving average over about a second).',
    }),
    utilization: Type.Number({
      description:
        'Share of the inference workers this model would need to serve that whole rate at the batch size the rate leads to (≥ 1: it cannot keep up). The prediction includes the latency this load settles to.',
    }),
    idleLatencyMs: Type.Number({
      description:
        'The latency on an unloaded server (warm-up measurements, which the load cannot inflate), ms.',
    }),
    queueWaitMs: Type.Number({ description: 'Predicted wait until its batch starts, ms.' }),
    batchSize: Type.Integer({ description: 'Size of the batch the request would run in.' }),
    serviceMs: Type.Number({ description: 'Predicted session.run time of that batch, ms.' }),
    preprocessMs: Type.Number({
      description: 'Predicted decode + preprocessing time per image (moving average of measurements), ms.',
    }),
    queued: Type.Integer({ description: 'Requests waiting for this model.' }),
    inFlight: Type.Integer({ description: 'Requests of this model running now.' }),
    maxBatch: Type.Integer({ description: 'Largest batch this model runs.' }),
    contention: Type.Number({
      description:
        'Current run-time estimate ÷ start-up profile (moving average over completed batches; 1 = as at warm-up).',
    }),
    batches: Type.Array(
      Type.Object({ batchSize: Type.Integer(), ms: Type.Number() }, { additionalProperties: false }),
      { description: 'Predicted session.run time per profiled batch size (powers of two), ms.' },
    ),
    observedBatches: Type.Integer({ description: 'Batches run since start-up (behind the estimates).' }),
  },
  {
    additionalProperties: false,
    description: 'Live serving figures (execution provider and load), updated by every batch.',
  },
)

export const CandidateSchema = Type.Object(
  {
    name: ModelName,
    mflops: Type.Number(),
    top1: Type.Number(),
    latencyMs: Type.Union([Type.Number(), Type.Null()], {
      description:
        'The latency maxLatencyMs is compared with: predicted for a request arriving now, under the current load (ms); null if the model has no measurement.',
    }),
    ready: Type.Boolean(),
    live: Type.Union([LiveFiguresSchema, Type.Null()], {
      description: 'Load-aware figures behind `latencyMs`; null for a model that is not serving.',
    }),
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
