/**
 * ModelInferRequest / ModelInferResponse (open_inference_grpc.proto) ↔ the JSON shape of the
 * REST protocol that runInference() takes and gives, so both transports share one inference path.
 *
 * Inputs come as typed `contents` (fp32_contents for this server's FP32 input) or as
 * `raw_input_contents` (little-endian bytes, one entry per input): never both. Outputs mirror the
 * request: raw_output_contents when the inputs were raw, typed contents otherwise; the request
 * parameter `binary_data_output` (bool) overrides that. The protocol allows either for all outputs
 * of a response, not a mix, so the REST per-output `binary_data` parameter has no meaning here and
 * is ignored.
 */
import { apiError } from '../errors.js'
import type { InferOutcome } from '../routes/v2/infer.js'
import type { InferRequest, Parameters, RequestInput } from '../routes/v2/schemas.js'

/** InferParameter as proto-loader decodes it (`oneofs: true` names the member that is set). */
export interface GrpcParameter {
  parameter_choice?: 'bool_param' | 'int64_param' | 'string_param' | 'double_param' | 'uint64_param'
  bool_param?: boolean
  int64_param?: number
  string_param?: string
  double_param?: number
  uint64_param?: number
}

export interface GrpcContents {
  bool_contents?: boolean[]
  int_contents?: number[]
  int64_contents?: number[]
  uint_contents?: number[]
  uint64_contents?: number[]
  fp32_contents?: number[]
  fp64_contents?: number[]
  bytes_contents?: Buffer[]
}

export interface GrpcInputTensor {
  name: string
  datatype: string
  shape: number[]
  parameters?: Record<string, GrpcParameter>
  contents?: GrpcContents | null
}

export interface GrpcInferRequest {
  model_name: string
  model_version: string
  id: string
  parameters?: Record<string, GrpcParameter>
  inputs: GrpcInputTensor[]
  outputs: { name: string; parameters?: Record<string, GrpcParameter> }[]
  raw_input_contents: Buffer[]
}

export interface GrpcOutputTensor {
  name: string
  datatype: string
  shape: number[]
  parameters: Record<string, GrpcParameter>
  contents?: GrpcContents
}

export interface GrpcInferResponse {
  model_name: string
  model_version: string
  id: string
  parameters: Record<string, GrpcParameter>
  outputs: GrpcOutputTensor[]
  raw_output_contents: Buffer[]
}

const CONTENT_FIELDS = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
] as const

function invalid(message: string, parameter: string): never {
  throw apiError('INVALID_PARAMETER', message, { parameter, location: 'body' })
}

function parameterValue(name: string, parameter: GrpcParameter): string | number | boolean {
  const choice = parameter.parameter_choice
  const value = choice === undefined ? undefined : parameter[choice]
  if (value === undefined) invalid(`parameter "${name}" has no value`, name)
  return value
}

export function fromGrpcParameters(parameters: Record<string, GrpcParameter> | undefined): Parameters {
  return Object.fromEntries(
    Object.entries(parameters ?? {}).map(([name, parameter]) => [name, parameterValue(name, parameter)]),
  )
}

export function toGrpcParameters(parameters: Parameters | undefined): Record<string, GrpcParameter> {
  const out: Record<string, GrpcParameter> = {}
  for (const [name, value] of Object.entries(parameters ?? {})) {
    if (typeof value === 'boolean') out[name] = { bool_param: value }
    else if (typeof value === 'string') out[name] = { string_param: value }
    else if (Number.isSafeInteger(value)) out[name] = { int64_param: value }
    else out[name] = { double_param: value }
  }
  return out
}

/** The typed contents field holding data, if any (proto3 sends empty repeated fields as []). */
function filledContents(contents: GrpcContents | null | undefined): (typeof CONTENT_FIELDS)[number][] {
  if (!contents) return []
  return CONTENT_FIELDS.filter((key) => (contents[key]?.length ?? 0) > 0)
}

/** One input tensor in its REST shape: `data` from typed contents, or a binary size for raw bytes. */
function toRestInput(input: GrpcInputTensor, raw: Buffer | undefined): RequestInput {
  const rest: RequestInput = {
    name: input.name,
    datatype: input.datatype,
    shape: input.shape,
    parameters: fromGrpcParameters(input.parameters),
  }
  const filled = filledContents(input.contents)
  if (raw !== undefined) {
    if (filled.length > 0) {
      invalid(
        `input '${input.name}' carries both contents and raw_input_contents; send its data in one of them`,
        input.name,
      )
    }
    rest.parameters = { ...rest.parameters, binary_data_size: raw.length }
    return rest
  }
  if (filled.length === 0) {
    invalid(
      `input '${input.name}' has no data: set contents.fp32_contents or send raw_input_contents`,
      input.name,
    )
  }
  if (input.datatype === 'FP32' && !filled.includes('fp32_contents')) {
    invalid(
      `FP32 input '${input.name}' carries its data in ${filled.join(', ')}; an FP32 tensor's contents go in fp32_contents`,
      input.name,
    )
  }
  // The datatype decides which field is read (another datatype is refused with the REST wording).
  const field = input.datatype === 'FP32' ? 'fp32_contents' : (filled[0] ?? 'fp32_contents')
  rest.data = input.contents?.[field] ?? []
  return rest
}

export interface RestCall {
  request: InferRequest
  /** The raw input bytes, in input order. */
  binary: Buffer
}

/** A ModelInferRequest as the REST request runInference() takes. */
export function toRestRequest(message: GrpcInferRequest): RestCall {
  const raws = message.raw_input_contents
  if (raws.length > 0 && raws.length !== message.inputs.length) {
    invalid(
      `raw_input_contents holds ${raws.length} tensors but the request has ${message.inputs.length} inputs; send one per input, in input order`,
      'raw_input_contents',
    )
  }
  const useRaw = raws.length > 0
  const parameters = fromGrpcParameters(message.parameters)
  if (parameters.binary_data_output === undefined) parameters.binary_data_output = useRaw
  const request: InferRequest = {
    parameters,
    inputs: message.inputs.map((input, i) => toRestInput(input, useRaw ? raws[i] : undefined)),
    outputs: message.outputs.map((output) => {
      const { binary_data: _ignored, ...outputParameters } = fromGrpcParameters(output.parameters)
      return { name: output.name, parameters: outputParameters }
    }),
  }
  if (message.id !== '') request.id = message.id
  return { request, binary: Buffer.concat(raws) }
}

/** runInference()'s outcome as a ModelInferResponse. */
export function toGrpcResponse(outcome: InferOutcome): GrpcInferResponse {
  const { response, tensors } = outcome
  const raw: Buffer[] = []
  let next = 0
  const outputs = response.outputs.map((output): GrpcOutputTensor => {
    const { binary_data_size: binarySize, ...parameters } = output.parameters ?? {}
    const tensor: GrpcOutputTensor = {
      name: output.name,
      datatype: output.datatype,
      shape: output.shape,
      parameters: toGrpcParameters(parameters),
    }
    if (binarySize !== undefined) {
      // runInference() lists the bytes of every binary output that has any, in output order.
      raw.push(binarySize === 0 ? Buffer.alloc(0) : (tensors[next++] ?? Buffer.alloc(0)))
    } else if (output.datatype === 'BYTES') {
      tensor.contents = { bytes_contents: (output.data ?? []).map((s) => Buffer.from(String(s), 'utf8')) }
    } else {
      tensor.contents = { fp32_contents: (output.data ?? []).map(Number) }
    }
    return tensor
  })
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id,
    parameters: toGrpcParameters(response.parameters),
    outputs,
    raw_output_contents: raw,
  }
}
