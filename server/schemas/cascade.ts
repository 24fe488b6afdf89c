/** The `cascade` object of a response served by a cascade: which stages ran and where it exited. */
import { Type, type Static } from 'typebox'

export const CascadeStageSchema = Type.Object(
  {
    model: Type.String(),
    confidence: Type.Number({ description: "This stage's top-1 softmax probability." }),
    threshold: Type.Union([Type.Number(), Type.Null()], {
      description: 'It answers at confidence ≥ threshold; null for the last stage (always answers).',
    }),
    answered: Type.Boolean(),
    queueMs: Type.Number(),
    inferenceMs: Type.Number(),
    batchSize: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
)

export const CascadeRunSchema = Type.Object(
  {
    name: Type.String(),
    stages: Type.Array(CascadeStageSchema, {
      description: 'The stages that ran, in order; the last one answered (its model is `model`).',
    }),
    exitStage: Type.Integer({ minimum: 0, description: '0-based index of the answering stage.' }),
    mflops: Type.Number({ description: 'MFLOPs of the stages that ran for this request.' }),
    expectedMflops: Type.Number({ description: 'The cascade’s mean MFLOPs on the held-out split.' }),
    worstMflops: Type.Number({ description: 'Every stage: the sum of their MFLOPs.' }),
  },
  {
    additionalProperties: false,
    description:
      'Present when a cascade served the request: the image was decoded once and each stage ran only when the previous one was unsure.',
  },
)

export type CascadeRun = Static<typeof CascadeRunSchema>
