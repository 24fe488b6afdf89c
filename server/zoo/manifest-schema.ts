/**
 * The zoo manifest, schema version 1: the one contract between training/ (which writes zoos) and
 * server/ (which serves them). `models/manifest.schema.json` is generated from these definitions
 * by `npm run generate`, so both languages validate against the same rules.
 * @see docs/zoo-contract.md
 */
import { Type, type Static } from 'typebox'

export const MANIFEST_SCHEMA_VERSION = 1
export const MANIFEST_SCHEMA_ID = 'https://alphanet-zoo.dev/schemas/manifest-v1.json'

const Fraction = (description: string) => Type.Number({ minimum: 0, maximum: 1, description })

/** A plain file name inside the zoo directory: no separators, not "." or "..". */
const ZooFileName = Type.String({
  pattern: '^(?!\\.{1,2}$)[^/\\\\]+$',
  maxLength: 255,
  description: 'File name relative to the zoo directory (no "/" or "..").',
})

export const ModelNamePattern = '^[a-z0-9][a-z0-9._-]{0,63}$'
const ModelName = Type.String({ pattern: ModelNamePattern, description: 'Unique model name.' })

const IntList = (length: number, description: string) =>
  Type.Array(Type.Integer({ minimum: 1 }), { minItems: length, maxItems: length, description })

export const ModelInputSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, description: 'ONNX input tensor name.' }),
    size: Type.Integer({ minimum: 1, description: 'H = W of the tensor fed to the model (the crop size).' }),
    channels: Type.Union([Type.Literal(1), Type.Literal(3)], {
      description: '1 = grayscale (luminance), 3 = RGB.',
    }),
    mean: Type.Array(Type.Number(), {
      minItems: 1,
      maxItems: 3,
      description: 'Per-channel mean, applied to pixel/255.',
    }),
    std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
      minItems: 1,
      maxItems: 3,
      description: 'Per-channel standard deviation (> 0), applied to pixel/255.',
    }),
    resizeShortSide: Type.Integer({
      minimum: 1,
      description: 'Resize the decoded image so its shorter side is this (aspect kept); ≥ size.',
    }),
    crop: Type.Literal('center', { description: 'Then take the centre size×size crop.' }),
    interpolation: Type.Union([Type.Literal('bilinear'), Type.Literal('bicubic'), Type.Literal('nearest')], {
      description: 'Interpolation of that resize.',
    }),
    layout: Type.Literal('NCHW'),
    dtype: Type.Literal('float32'),
  },
  { additionalProperties: false, description: 'How an image becomes the model input tensor.' },
)

export const ModelManifestSchema = Type.Object(
  {
    name: ModelName,
    file: ZooFileName,
    sha256: Type.String({
      pattern: '^[0-9a-f]{64}$',
      description: 'SHA-256 of the ONNX file, lowercase hex.',
    }),
    mflops: Type.Number({
      exclusiveMinimum: 0,
      description: 'Multiply-accumulates of conv and linear layers / 1e6 at the network resolution.',
    }),
    params: Type.Integer({ minimum: 1, description: 'Parameter count of the exported network.' }),
    top1: Fraction('Top-1 accuracy as a fraction.'),
    top5: Type.Optional(Fraction('Top-5 accuracy as a fraction.')),
    evaluation: Type.Object(
      {
        dataset: Type.String({ minLength: 1 }),
        split: Type.String({ minLength: 1 }),
        samples: Type.Integer({ minimum: 1 }),
        runtime: Type.Optional(
          Type.String({ minLength: 1, description: 'Runtime that produced the figures.' }),
        ),
      },
      { additionalProperties: false, description: 'Where top1/top5 were measured.' },
    ),
    latencyMs: Type.Optional(
      Type.Object(
        {
          p50: Type.Number({ minimum: 0 }),
          p95: Type.Number({ minimum: 0 }),
          batchSize: Type.Integer({ minimum: 1 }),
          host: Type.String(),
        },
        { additionalProperties: false, description: 'Latency measured by the pipeline on its host.' },
      ),
    ),
    input: ModelInputSchema,
    resolution: Type.Integer({
      minimum: 1,
      description:
        "The network's own resolution; the graph resizes size→resolution (bicubic) when they differ.",
    }),
    labels: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description: 'Index → label; length = number of classes (the logits width).',
    }),
    arch: Type.Object(
      {
        space: Type.String({ minLength: 1 }),
        resolution: Type.Integer({ minimum: 1 }),
        width: IntList(9, 'stem, mb1..mb7, head'),
        depth: IntList(7, 'blocks per stage'),
        kernelSize: IntList(7, 'kernel size per stage'),
        expandRatio: IntList(7, 'expand ratio per stage'),
      },
      { additionalProperties: false, description: 'The sub-network this model was sliced from.' },
    ),
    opset: Type.Integer({ minimum: 7, description: 'ONNX opset of the exported graph.' }),
    reference: Type.Optional(
      Type.Object(
        { file: ZooFileName },
        {
          additionalProperties: false,
          description: 'Parity fixture: {input: {shape, data}, output: {shape, data}} written at export.',
        },
      ),
    ),
  },
  { additionalProperties: false },
)

const ExitFractions = Type.Array(Fraction('Share of the images answered by this stage.'), {
  minItems: 2,
  maxItems: 3,
  description: 'Per stage: the share of the images it answered (they sum to 1).',
})

/**
 * A confidence cascade over 2-3 models of the zoo (docs/zoo-contract.md, "Cascades"): stage i
 * answers an image when its top-1 softmax probability is at least thresholds[i]; the last stage
 * always answers. Thresholds were picked on a held-out split; top1 is measured on the evaluation
 * split through the server's cascade logic.
 */
export const CascadeManifestSchema = Type.Object(
  {
    name: Type.String({
      pattern: ModelNamePattern,
      description: 'Unique among the models and cascades of the zoo; requests name it like a model.',
    }),
    stages: Type.Array(Type.String({ pattern: ModelNamePattern }), {
      minItems: 2,
      maxItems: 3,
      description: 'Model names, strictly increasing MFLOPs, one input contract and label set.',
    }),
    rule: Type.Literal('top1Probability', {
      description: 'A stage answers when its top-1 softmax probability is ≥ its threshold.',
    }),
    thresholds: Type.Array(Fraction('Top-1 probability at or above which the stage answers.'), {
      minItems: 1,
      maxItems: 2,
      description: 'One per stage but the last.',
    }),
    expectedMflops: Type.Number({
      exclusiveMinimum: 0,
      description: 'Mean over the held-out split of the MFLOPs of the stages that ran.',
    }),
    worstMflops: Type.Number({
      exclusiveMinimum: 0,
      description: 'Every stage ran: the sum of the stages’ MFLOPs.',
    }),
    heldOut: Type.Object(
      {
        dataset: Type.String({ minLength: 1 }),
        split: Type.String({ minLength: 1 }),
        samples: Type.Integer({ minimum: 1 }),
        top1: Fraction('Top-1 on the held-out split (where the thresholds were picked).'),
        exitFractions: ExitFractions,
        note: Type.Optional(Type.String({ description: 'Caveat about this split.' })),
      },
      { additionalProperties: false, description: 'The split the stages and thresholds were picked on.' },
    ),
    top1: Fraction('Top-1 on the evaluation split through the cascade rule.'),
    evaluation: Type.Object(
      {
        dataset: Type.String({ minLength: 1 }),
        split: Type.String({ minLength: 1 }),
        samples: Type.Integer({ minimum: 1 }),
        runtime: Type.String({ minLength: 1, description: 'Runtime that produced the figures.' }),
        exitFractions: ExitFractions,
        meanMflops: Type.Number({
          exclusiveMinimum: 0,
          description: 'Mean MFLOPs of the stages that ran on this split.',
        }),
      },
      { additionalProperties: false, description: 'Where top1 was measured.' },
    ),
    latencyMs: Type.Optional(
      Type.Object(
        {
          expected: Type.Number({
            minimum: 0,
            description: 'Σ over stages of (share of held-out images reaching it) × its batch-1 p50.',
          }),
          worst: Type.Number({ minimum: 0, description: 'Σ of the stages’ batch-1 p50 (every stage ran).' }),
          batchSize: Type.Integer({ minimum: 1 }),
          host: Type.String(),
        },
        { additionalProperties: false, description: 'Latency on the publishing host.' },
      ),
    ),
  },
  { additionalProperties: false },
)

export const ManifestSchema = Type.Object(
  {
    schemaVersion: Type.Literal(MANIFEST_SCHEMA_VERSION, {
      description: 'Manifest schema version; readers reject versions they do not know.',
    }),
    zoo: Type.Object(
      {
        name: Type.String({ pattern: '^[a-z0-9][a-z0-9._-]*$' }),
        description: Type.String(),
        createdAt: Type.String({ format: 'date-time', description: 'ISO-8601 timestamp.' }),
        source: Type.Optional(
          Type.Record(Type.String(), Type.Unknown(), {
            description: 'Provenance of the family (space, checkpoint, trainingConfig, gitCommit, …).',
          }),
        ),
      },
      { additionalProperties: false },
    ),
    defaultModel: Type.Optional(ModelName),
    models: Type.Array(ModelManifestSchema, { minItems: 1 }),
    cascades: Type.Optional(
      Type.Array(CascadeManifestSchema, {
        description: 'Confidence cascades over the models; optional (a zoo without cascades is valid).',
      }),
    ),
  },
  {
    $id: MANIFEST_SCHEMA_ID,
    title: 'AlphaNet zoo manifest',
    description: 'manifest.json of a zoo directory (schema version 1). See docs/zoo-contract.md.',
    additionalProperties: false,
  },
)

export type Manifest = Static<typeof ManifestSchema>
export type ModelManifest = Static<typeof ModelManifestSchema>
export type ModelInput = Static<typeof ModelInputSchema>
export type CascadeManifest = Static<typeof CascadeManifestSchema>
