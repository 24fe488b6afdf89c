/**
 * The outputs of an Open Inference Protocol inference: `logits` and/or `probabilities` (softmax
 * per row), each as an FP32 tensor or as Triton classification strings, in JSON or as binary
 * tensor data.
 */
import { softmax } from '../../postprocess.js'
import type { ModelEntry } from '../../zoo/model-entry.js'
import { classify } from './classification.js'
import type { OutputSpec } from './infer-request.js'
import { OUTPUT_LOGITS, type OutputName } from './models.js'
import type { ResponseOutput } from './schemas.js'
import { bytesToBinary, float32ToBinary } from './tensor.js'

export function buildOutputs(
  specs: readonly OutputSpec[],
  logits: Float32Array,
  batch: number,
  model: ModelEntry,
): { outputs: ResponseOutput[]; binary: Buffer[] } {
  const classes = model.labels.length
  let probabilities: Float32Array | undefined
  const valuesOf = (name: OutputName): Float32Array => {
    if (name === OUTPUT_LOGITS) return logits
    if (!probabilities) {
      probabilities = new Float32Array(logits.length)
      for (let row = 0; row < batch; row++) {
        probabilities.set(softmax(logits.subarray(row * classes, (row + 1) * classes)), row * classes)
      }
    }
    return probabilities
  }
  const outputs: ResponseOutput[] = []
  const binary: Buffer[] = []
  for (const spec of specs) {
    const values = valuesOf(spec.name)
    let output: ResponseOutput
    let bytes: Buffer
    if (spec.classification > 0) {
      const { data, shape } = classify(values, batch, classes, spec.classification, model.labels)
      output = { name: spec.name, datatype: 'BYTES', shape, data }
      bytes = spec.binary ? bytesToBinary(data) : Buffer.alloc(0)
    } else {
      output = { name: spec.name, datatype: 'FP32', shape: [batch, classes], data: Array.from(values) }
      bytes = spec.binary ? float32ToBinary(values) : Buffer.alloc(0)
    }
    if (spec.binary) {
      delete output.data
      output.parameters = { binary_data_size: bytes.length }
      if (bytes.length > 0) binary.push(bytes)
    }
    outputs.push(output)
  }
  return { outputs, binary }
}
