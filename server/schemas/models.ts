/**
 * How a zoo model is shown by GET /models (summary) and GET /models/:name (detail), and the
 * functions that build those views from a ModelEntry.
 */
import { CascadeSummarySchema } from './cascades.js'
import { Type, type Static } from 'typebox'
import { ModelInputSchema } from '../zoo/manifest-schema.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { BudgetProperties, ModelName } from './common.js'
import { LiveFiguresSchema } from './selection.js'

const Latency = Type.Object(
  {
    p50: Type.Number({ description: 'Median batch-1 latency, ms.' }),
    p95: Type.Number({ description: '95th percentile batch-1 latency, ms.' }),
    samples: Type.Integer({ description: 'Timed runs behind the estimate.' }),
  },
  { additionalProperties: false },
)

export const ModelSummarySchema = Type.Object(
  {
    name: ModelName,
    mflops: Type.Number({ description: 'Compute cost: multiply-accumulates of conv + linear layers / 1e6.' }),
    params: Type.Integer({ description: 'Parameter count.' }),
    top1: Type.Number({ description: 'Top-1 accuracy (fraction) on the evaluation set.' }),
    top5: Type.Optional(Type.Number({ description: 'Top-5 accuracy (fraction), when published.' })),
    resolution: Type.Integer({ description: "The network's own input resolution (px)." }),
    inputSize: Type.Integer({ description: 'Side of the square crop fed to the model (px).' }),
    channels: Type.Integer({ description: '1 = grayscale, 3 = RGB.' }),
    classes: Type.Integer({ description: 'Number of output classes.' }),
    latencyMs: Type.Union([Latency, Type.Null()], {
      description: 'Batch-1 session.run latency measured on this server at warm-up; null if not measured.',
    }),
    live: Type.Union([LiveFiguresSchema, Type.Null()], {
      description:
        'Load-aware figures now: `live.predictedLatencyMs` is what maxLatencyMs is compared with. Null for a model that is not serving.',
    }),
    executionProvider: Type.Union([Type.Literal('cuda'), Type.Literal('cpu'), Type.Null()], {
      description: 'onnxruntime execution provider running the model; null if not loaded.',
    }),
    ready: Type.Boolean({ description: 'Whether the model is loaded, warm and selectable.' }),
    reason: Type.Optional(Type.String({ description: 'Why the model is not ready.' })),
    default: Type.Boolean({ description: 'Whether requests without a budget get this model.' }),
  },
  { additionalProperties: false },
)

export const ModelDetailSchema = Type.Object(
  {
    ...ModelSummarySchema.properties,
    input: ModelInputSchema,
    labels: Type.Array(Type.String(), { description: 'Class index → label.' }),
    evaluation: Type.Object(
      {
        dataset: Type.String(),
        split: Type.String(),
        samples: Type.Integer(),
        runtime: Type.Optional(Type.String()),
      },
      { additionalProperties: false, description: 'Where top1/top5 were measured.' },
    ),
    pipelineLatencyMs: Type.Union(
      [
        Type.Object(
          { p50: Type.Number(), p95: Type.Number(), batchSize: Type.Integer(), host: Type.String() },
          { additionalProperties: false },
        ),
        Type.Null(),
      ],
      {
        description:
          'Latency the publishing pipeline measured on its own host (informational); null if absent.',
      },
    ),
    arch: Type.Object(
      {
        space: Type.String(),
        resolution: Type.Integer(),
        width: Type.Array(Type.Integer()),
        depth: Type.Array(Type.Integer()),
        kernelSize: Type.Array(Type.Integer()),
        expandRatio: Type.Array(Type.Integer()),
      },
      { additionalProperties: false, description: 'The sub-network this model was sliced from.' },
    ),
    opset: Type.Integer(),
    sha256: Type.String({ description: 'SHA-256 of the ONNX file.' }),
  },
  { additionalProperties: false },
)

export const ModelsQuerySchema = Type.Object(BudgetProperties, { additionalProperties: false })

export const ModelsResponseSchema = Type.Object(
  {
    models: Type.Array(ModelSummarySchema),
    cascades: Type.Array(CascadeSummarySchema, {
      description:
        'Confidence cascades over the models (empty when the zoo has none); with a budget, only the ready ones satisfying it (maxMflops against expectedMflops, maxLatencyMs against latencyMs).',
    }),
  },
  { additionalProperties: false },
)

export const ModelParamsSchema = Type.Object({ name: ModelName }, { additionalProperties: false })

export type ModelSummary = Static<typeof ModelSummarySchema>
export type ModelDetail = Static<typeof ModelDetailSchema>

export function modelSummary(entry: ModelEntry, defaultModel: string): ModelSummary {
  const summary: ModelSummary = {
    name: entry.name,
    mflops: entry.mflops,
    params: entry.params,
    top1: entry.top1,
    resolution: entry.resolution,
    inputSize: entry.input.size,
    channels: entry.input.channels,
    classes: entry.labels.length,
    latencyMs: entry.latencyMs
      ? { p50: entry.latencyMs.p50, p95: entry.latencyMs.p95, samples: entry.latencyMs.samples }
      : null,
    live: entry.live ?? null,
    executionProvider: entry.executionProvider ?? null,
    ready: entry.ready,
    default: entry.name === defaultModel,
  }
  if (entry.top5 !== undefined) summary.top5 = entry.top5
  if (entry.reason !== undefined) summary.reason = entry.reason
  return summary
}

export function modelDetail(entry: ModelEntry, defaultModel: string): ModelDetail {
  return {
    ...modelSummary(entry, defaultModel),
    input: entry.input,
    labels: entry.labels,
    evaluation: entry.evaluation,
    pipelineLatencyMs: entry.pipelineLatencyMs ?? null,
    arch: entry.arch,
    opset: entry.opset,
    sha256: entry.sha256,
  }
}
