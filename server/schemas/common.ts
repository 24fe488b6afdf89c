/**
 * Schema atoms shared by the routes: the error body, model names and the budget fields. Route
 * schemas are built from these so validation, serialization and the OpenAPI document agree.
 */
import { Type, type TSchema } from 'typebox'
import { ERROR_CODES, ERROR_DEFINITIONS, type ErrorCode } from '../errors.js'
import { ModelNamePattern } from '../zoo/manifest-schema.js'

export const ERROR_RESPONSE_ID = 'ErrorResponse'

const codeTable = ERROR_DEFINITIONS.map((d) => `- \`${d.code}\` (${d.statusCode}): ${d.description}`).join(
  '\n',
)

/** Registered once with app.addSchema (see error-handler.ts) and referenced by every route. */
export const ErrorResponseSchema = Type.Object(
  {
    statusCode: Type.Integer({ minimum: 400, maximum: 599, description: 'HTTP status, repeated.' }),
    code: Type.Unsafe<ErrorCode>({
      type: 'string',
      enum: [...ERROR_CODES],
      description: `Stable machine-readable code:\n${codeTable}`,
    }),
    error: Type.String({ description: 'HTTP reason phrase.' }),
    message: Type.String({ description: 'Human-readable explanation; wording may change.' }),
  },
  {
    $id: ERROR_RESPONSE_ID,
    additionalProperties: true,
    description:
      'Every error. Some codes add details at the top level (e.g. `parameter` for INVALID_PARAMETER; `budget`, `cheapest`, `fastest`, `candidates` for BUDGET_INFEASIBLE).',
  },
)

const ErrorRef = Type.Ref(`${ERROR_RESPONSE_ID}#`)

/** `{ 400: ErrorResponse, 404: ErrorResponse, … }` for a route's response schema. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((status) => [status, ErrorRef]))
}

export const ModelName = Type.String({
  pattern: ModelNamePattern,
  maxLength: 64,
  description: 'Model name as listed by GET /models.',
})

export const MaxMflops = Type.Number({
  exclusiveMinimum: 0,
  maximum: 1e6,
  description: 'Largest acceptable compute cost in MFLOPs (multiply-accumulates / 1e6).',
})

export const MaxLatencyMs = Type.Number({
  exclusiveMinimum: 0,
  maximum: 600_000,
  description:
    "Largest acceptable latency in ms, counted from the request's arrival. The most accurate model predicted to meet it under the current load serves (see `live.predictedLatencyMs` in GET /models); a request that can no longer meet it is answered 504 DEADLINE_EXCEEDED before any compute rather than late.",
})

export const MinTop1 = Type.Number({
  minimum: 0,
  maximum: 1,
  description: 'Smallest acceptable top-1 accuracy, as a fraction in [0, 1].',
})

export const OnInfeasibleSchema = Type.Union([Type.Literal('reject'), Type.Literal('smallest')], {
  description:
    'When no ready model satisfies the budget: `reject` answers 422 BUDGET_INFEASIBLE; `smallest` serves the cheapest ready model (fewest MFLOPs) and reports `budget.met: false`. Default `reject`.',
})

/** The budget constraints, each optional. */
export const BudgetProperties = {
  maxMflops: Type.Optional(MaxMflops),
  maxLatencyMs: Type.Optional(MaxLatencyMs),
  minTop1: Type.Optional(MinTop1),
}

/** The budget as echoed in responses, with whether the served model met it. */
export const BudgetEcho = Type.Object(
  {
    maxMflops: Type.Optional(Type.Number()),
    maxLatencyMs: Type.Optional(Type.Number()),
    minTop1: Type.Optional(Type.Number()),
    onInfeasible: OnInfeasibleSchema,
    met: Type.Boolean({
      description: 'False only when no model met the budget and onInfeasible=smallest served one anyway.',
    }),
  },
  { additionalProperties: false },
)
