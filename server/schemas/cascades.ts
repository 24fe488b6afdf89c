/** GET /models: how a cascade is listed (docs/api.md, "Cascades"). */
import { Type, type Static } from 'typebox'
import type { CascadeCandidate } from '../cascade/candidates.js'
import { latencyEstimate } from '../selection/budget.js'

export const CascadeSummarySchema = Type.Object(
  {
    name: Type.String({ description: 'Name it like a model: ?model=<name> in /v1, /v2/models/<name>.' }),
    stages: Type.Array(Type.String(), { description: 'Its models, cheapest first.' }),
    thresholds: Type.Array(Type.Number(), {
      description: 'Stage i answers when its top-1 softmax probability is ≥ thresholds[i].',
    }),
    top1: Type.Number({ description: 'Measured on the evaluation split through the cascade rule.' }),
    expectedMflops: Type.Number({
      description: 'Mean MFLOPs over the held-out split (what maxMflops compares).',
    }),
    worstMflops: Type.Number({ description: 'Every stage ran.' }),
    latencyMs: Type.Union([Type.Number(), Type.Null()], {
      description:
        'What maxLatencyMs compares: the summed live predictions of all stages (null: not measured).',
    }),
    publishedLatencyMs: Type.Union(
      [
        Type.Object(
          { expected: Type.Number(), worst: Type.Number(), host: Type.String() },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      { description: "The manifest's expected and worst-case latency on the publishing host." },
    ),
    ready: Type.Boolean(),
    reason: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
)

export type CascadeSummary = Static<typeof CascadeSummarySchema>

export function cascadeSummary(candidate: CascadeCandidate): CascadeSummary {
  const { cascade } = candidate
  const summary: CascadeSummary = {
    name: cascade.name,
    stages: cascade.stages,
    thresholds: cascade.thresholds,
    top1: cascade.top1,
    expectedMflops: cascade.expectedMflops,
    worstMflops: cascade.worstMflops,
    latencyMs: latencyEstimate(candidate),
    publishedLatencyMs: cascade.latencyMs
      ? { expected: cascade.latencyMs.expected, worst: cascade.latencyMs.worst, host: cascade.latencyMs.host }
      : null,
    ready: candidate.ready,
  }
  if (candidate.reason !== undefined) summary.reason = candidate.reason
  return summary
}
