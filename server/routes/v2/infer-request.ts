/**
 * An Open Inference Protocol inference request read and checked: the JSON header against the
 * protocol's schema, the request-level parameters this server interprets (budgets,
 * binary_data_output), the requested outputs, the one input tensor (arity, datatype, rank, then
 * shape against the chosen model) and its data, from JSON or the binary section. Every failure is
 * INVALID_PARAMETER, worded as Triton words it.
 */
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { apiError } from '../../errors.js'
import { BudgetProperties, OnInfeasibleSchema } from '../../schemas/common.js'
import type { SelectionFields } from '../../selection/choose.js'
import type { ModelEntry } from '../../zoo/model-entry.js'
import { HEADER_LENGTH_HEADER } from './body.js'
import { inputDims, OUTPUT_NAMES, type OutputName } from './models.js'
import {
  InferRequestSchema,
  type InferRequest,
  type Parameters,
  type RequestInput,
  type RequestOutput,
} from './schemas.js'
import { elementCount, float32FromBinary, float32FromJson } from './tensor.js'

const checkRequest = Compile(InferRequestSchema)
const BudgetParametersSchema = Type.Object({
  ...BudgetProperties,
  onInfeasible: Type.Optional(OnInfeasibleSchema),
})
const checkBudget = Compile(BudgetParametersSchema)
const BUDGET_PARAMETERS = Object.keys(BudgetParametersSchema.properties)

export function invalid(message: string, parameter: string): never {
  throw apiError('INVALID_PARAMETER', message, { parameter, location: 'body' })
}

export function validateRequest(value: unknown): InferRequest {
  if (checkRequest.Check(value)) return value
  const [error] = checkRequest.Errors(value)
  const path = error?.instancePath ? error.instancePath.replace(/^\//, '').replaceAll('/', '.') : '(root)'
  invalid(`invalid inference request: ${path} ${error?.message ?? 'does not match the protocol'}`, path)
}

export interface RequestOptions {
  binaryOutput: boolean
  fields: SelectionFields
}

/** Request-level parameters this server interprets; others (priority, timeout, …) are ignored. */
export function readParameters(parameters: Parameters | undefined): RequestOptions {
  const binary = parameters?.binary_data_output
  if (binary !== undefined && typeof binary !== 'boolean') {
    invalid('parameter "binary_data_output" must be a boolean', 'binary_data_output')
  }
  const budget = Object.fromEntries(
    Object.entries(parameters ?? {}).filter(([key]) => BUDGET_PARAMETERS.includes(key)),
  )
  if (!checkBudget.Check(budget)) {
    const [error] = checkBudget.Errors(budget)
    const name = error?.instancePath.replace(/^\//, '') ?? ''
    invalid(`parameter "${name}" ${error?.message ?? 'is invalid'}`, name)
  }
  return { binaryOutput: binary === true, fields: budget }
}

export interface OutputSpec {
  name: OutputName
  /** Top-k classification strings instead of the tensor; 0 = the tensor. */
  classification: number
  binary: boolean
}

export function readOutputs(
  outputs: RequestOutput[] | undefined,
  binaryDefault: boolean,
  model: string,
): OutputSpec[] {
  if (!outputs || outputs.length === 0) {
    return OUTPUT_NAMES.map((name) => ({ name, classification: 0, binary: binaryDefault }))
  }
  const seen = new Set<string>()
  return outputs.map((output) => {
    const { name } = output
    if (!(OUTPUT_NAMES as readonly string[]).includes(name)) {
      invalid(
        `unexpected inference output '${name}' for model '${model}' (outputs: ${OUTPUT_NAMES.join(', ')})`,
        name,
      )
    }
    if (seen.has(name)) invalid(`inference output '${name}' is requested more than once`, name)
    seen.add(name)
    const classification = output.parameters?.classification ?? 0
    if (typeof classification !== 'number' || !Number.isSafeInteger(classification) || classification < 0) {
      invalid(`parameter "classification" of output '${name}' must be a non-negative integer`, name)
    }
    const binary = output.parameters?.binary_data ?? binaryDefault
    if (typeof binary !== 'boolean')
      invalid(`parameter "binary_data" of output '${name}' must be a boolean`, name)
    return { name: name as OutputName, classification, binary }
  })
}

/** The one input tensor, checked for arity, datatype and rank before a model is chosen. */
export function singleInput(request: InferRequest, modelName: string): RequestInput {
  if (request.inputs.length !== 1) {
    invalid(`expected 1 inputs but got ${request.inputs.length} inputs for model '${modelName}'`, 'inputs')
  }
  const input = request.inputs[0] as RequestInput
  if (input.datatype !== 'FP32') {
    invalid(
      `inference input '${input.name}' data-type is '${input.datatype}', but model '${modelName}' expects 'FP32'`,
      input.name,
    )
  }
  if (input.shape.length !== 4 || (input.shape[0] ?? 0) < 1) {
    invalid(
      `unexpected shape [${input.shape.join(',')}] for input '${input.name}' of model '${modelName}': expected [N, C, H, W] with N ≥ 1`,
      input.name,
    )
  }
  return input
}

export function accepts(model: ModelEntry, input: RequestInput): boolean {
  const dims = inputDims(model)
  return model.input.name === input.name && dims.every((d, i) => input.shape[i + 1] === d)
}

/** The tensor of `input` for `model`, from JSON data or the binary section. */
export function readTensor(
  input: RequestInput,
  binary: Buffer,
  model: ModelEntry,
): { tensor: Float32Array; dims: number[] } {
  if (input.name !== model.input.name) {
    invalid(`unexpected inference input '${input.name}' for model '${model.name}'`, input.name)
  }
  if (!accepts(model, input)) {
    invalid(
      `unexpected shape for input '${input.name}' for model '${model.name}'. Expected [-1,${inputDims(model).join(',')}], got [${input.shape.join(',')}]`,
      input.name,
    )
  }
  const count = elementCount(input.shape, input.name)
  const binarySize = input.parameters?.binary_data_size
  const hasData = input.data !== undefined
  if (hasData === (binarySize !== undefined)) {
    invalid(
      `input '${input.name}' must set exactly one of 'data' and 'binary_data_size' in 'parameters'`,
      input.name,
    )
  }
  if (hasData) {
    if (binary.length > 0) {
      invalid(
        `the request has ${binary.length} bytes of binary data that no input claims`,
        HEADER_LENGTH_HEADER,
      )
    }
    return { tensor: float32FromJson(input.data, count, input.name), dims: [...input.shape] }
  }
  if (typeof binarySize !== 'number' || !Number.isSafeInteger(binarySize) || binarySize < 0) {
    invalid(
      `parameter "binary_data_size" of input '${input.name}' must be a non-negative integer`,
      input.name,
    )
  }
  if (binarySize !== binary.length) {
    invalid(
      `input '${input.name}' declares binary_data_size ${binarySize} but the request carries ${binary.length} bytes of binary data`,
      input.name,
    )
  }
  return { tensor: float32FromBinary(binary, count, input.name), dims: [...input.shape] }
}
