/** POST /v1/classify: query and response schemas. */
import { CascadeRunSchema } from './cascade.js'
import { Type, type Static } from 'typebox'
import { BudgetEcho, BudgetProperties, ModelName, OnInfeasibleSchema } from './common.js'
import { SelectionReasonSchema, ServedModelSchema } from './selection.js'

export const DEFAULT_TOP_K = 5
export const MAX_TOP_K = 1000

export const ClassifyQuerySchema = Type.Object(
  {
    ...BudgetProperties,
    model: Type.Optional({
      ...ModelName,
      description:
        'Serve this model. Budget constraints given with it are checked against it: outside the budget → 422, unless onInfeasible=smallest (then it is served with budget.met=false).',
    }),
    topK: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_TOP_K,
        description: `How many classes to return, best first (at most the model's class count). Default ${DEFAULT_TOP_K}, or the class count if smaller.`,
      }),
    ),
    onInfeasible: Type.Optional(OnInfeasibleSchema),
  },
  { additionalProperties: false },
)

export const PredictionSchema = Type.Object(
  {
    label: Type.String(),
    index: Type.Integer({ description: 'Class index in the model output.' }),
    score: Type.Number({ description: 'Softmax probability.' }),
  },
  { additionalProperties: false },
)

export const TimingSchema = Type.Object(
  {
    decodeMs: Type.Number({
      description:
        'Decoding the image plus preprocessing it for the model (resize, crop, normalise), in the inference worker; for a batch, the time to prepare all its images.',
    }),
    queueMs: Type.Number({
      description: 'From handing the request to the runtime until a worker started its batch.',
    }),
    inferenceMs: Type.Number({ description: 'Running the model on the batch the request ran in.' }),
    batchSize: Type.Integer({
      minimum: 1,
      description: 'Images in the batch this request ran in (dynamic batching merges concurrent requests).',
    }),
    totalMs: Type.Number({ description: 'From receiving the request to building the response.' }),
    predictedLatencyMs: Type.Union([Type.Number(), Type.Null()], {
      description:
        "The served model's latency the selection predicted for this request under the load at its arrival (queue wait + batch preprocessing and run + hand-off), ms.",
    }),
  },
  { additionalProperties: false },
)

export const ClassifyResponseSchema = Type.Object(
  {
    model: ServedModelSchema,
    predictions: Type.Array(PredictionSchema, { description: 'Top-K classes, highest score first.' }),
    budget: BudgetEcho,
    selection: Type.Object(
      { reason: SelectionReasonSchema, explanation: Type.String() },
      { additionalProperties: false },
    ),
    timing: TimingSchema,
    cascade: Type.Optional(CascadeRunSchema),
  },
  { additionalProperties: false },
)

export type ClassifyResponse = Static<typeof ClassifyResponseSchema>
