/**
 * Zoo models as Open Inference Protocol models: names, the one version each serves ("1"), and
 * metadata (one FP32 input [-1, C, H, W]; outputs `logits` — the ONNX graph's output — and
 * `probabilities`, its softmax computed by this server). Plus the virtual model `alphanet-auto`,
 * which stands for "the model the request's budget selects" (see infer.ts).
 */
import { cascadeModelView } from '../../cascade/oip.js'
import type { ZooView } from '../../runtime/types.js'
import { apiError } from '../../errors.js'
import type { ModelEntry } from '../../zoo/model-entry.js'
import type { MetadataTensor, ModelMetadata } from './schemas.js'

export const AUTO_MODEL = 'alphanet-auto'
export const MODEL_VERSION = '1'
export const PLATFORM = 'onnxruntime_onnx'
export const OUTPUT_LOGITS = 'logits'
export const OUTPUT_PROBABILITIES = 'probabilities'
export const OUTPUT_NAMES = [OUTPUT_LOGITS, OUTPUT_PROBABILITIES] as const
export type OutputName = (typeof OUTPUT_NAMES)[number]

export type Target = { kind: 'model'; model: ModelEntry } | { kind: 'auto' }

/**
 * The model a /v2 path names. A zoo model called `alphanet-auto` would shadow the virtual one.
 * Unknown names and versions are MODEL_NOT_FOUND (404), worded as Triton words them.
 */
export function resolveTarget(zoo: ZooView, name: string, version: string | undefined): Target {
  // A cascade is addressed like a model (its first stage's contract; server/cascade/oip.ts).
  const model = zoo.get(name) ?? cascadeModelView(zoo, name)
  if (!model && name !== AUTO_MODEL) {
    throw apiError('MODEL_NOT_FOUND', `Request for unknown model: '${name}' is not found`, { model: name })
  }
  if (version !== undefined && version !== MODEL_VERSION) {
    throw apiError(
      'MODEL_NOT_FOUND',
      `Request for unknown model: '${name}' version ${version} is not found (this server serves version ${MODEL_VERSION})`,
      { model: name },
    )
  }
  return model ? { kind: 'model', model } : { kind: 'auto' }
}

/**
 * The protocol's "server ready": every model of the zoo serves (not merely one, which is what
 * GET /readyz checks), and the server is not shutting down.
 */
export function isServerReady(zoo: ZooView): boolean {
  // liveFor a name no model has: readiness needs no live latency figures.
  const models = zoo.list({ liveFor: '' })
  return zoo.isReady() && models.length > 0 && models.every((m) => m.ready)
}

/** A zoo model serves; `alphanet-auto` is ready while any model serves (it selects among those). */
export function isModelReady(zoo: ZooView, target: Target): boolean {
  return zoo.isReady() && (target.kind === 'auto' || target.model.ready)
}

export function inputDims(model: ModelEntry): [number, number, number] {
  return [model.input.channels, model.input.size, model.input.size]
}

function outputs(classes: number): MetadataTensor[] {
  return OUTPUT_NAMES.map((name) => ({ name, datatype: 'FP32', shape: [-1, classes] }))
}

export function modelMetadata(model: ModelEntry): ModelMetadata {
  return {
    name: model.name,
    versions: [MODEL_VERSION],
    platform: PLATFORM,
    inputs: [{ name: model.input.name, datatype: 'FP32', shape: [-1, ...inputDims(model)] }],
    outputs: outputs(model.labels.length),
  }
}

/** A value shared by every model, else -1 (the protocol's "variable"). */
function common(values: readonly number[]): number {
  const [first] = values
  return first !== undefined && values.every((v) => v === first) ? first : -1
}

/**
 * Metadata of `alphanet-auto` over the ready models (all models while none is ready): each
 * dimension is the models' common value, or -1 where they differ — the tensor sent decides which
 * models can be selected.
 */
export function autoMetadata(zoo: ZooView): ModelMetadata {
  const ready = zoo.readyModels()
  const models = ready.length > 0 ? ready : zoo.list()
  const names = [...new Set(models.map((m) => m.input.name))]
  const defaultModel = models.find((m) => m.name === zoo.defaultModelName()) ?? models[0]
  const inputName = names.length === 1 ? (names[0] ?? 'input') : (defaultModel?.input.name ?? 'input')
  const dims = [0, 1, 2].map((axis) => common(models.map((m) => inputDims(m)[axis] ?? -1)))
  return {
    name: AUTO_MODEL,
    versions: [MODEL_VERSION],
    platform: PLATFORM,
    inputs: [{ name: inputName, datatype: 'FP32', shape: [-1, ...dims] }],
    outputs: outputs(common(models.map((m) => m.labels.length))),
  }
}
