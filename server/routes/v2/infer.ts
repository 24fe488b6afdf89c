/**
 * POST /v2/models/{name}[/versions/{v}]/infer — Open Inference Protocol inference.
 *
 * One FP32 input [N, C, H, W] (already preprocessed: the model's mean/std applied, see GET
 * /models/{name}), as JSON `data` (flat or nested) or binary tensor data. Outputs `logits` and/or
 * `probabilities` by name (all when none are requested), each optionally as Triton
 * classification strings (`parameters.classification: k`) and/or binary (`binary_data`, or the
 * request-level `binary_data_output`). The request `id` is echoed (else this server's request id).
 *
 * Budgets: request `parameters` may carry maxMflops, maxLatencyMs, minTop1 and onInfeasible, with
 * the meaning they have on POST /v1/classify. On a zoo model they are checked against it; on the
 * virtual model `alphanet-auto` they choose the model: the most accurate ready model within the
 * budget among those whose input matches the tensor's name and [C, H, W]. The response's
 * `model_name` is then the model that ran, and `parameters` say why (selectedModel,
 * selectionReason, budgetMet).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { clientGoneSignal } from '../../client-gone.js'
import type { RunOptions } from '../../decorators.js'
import { apiError } from '../../errors.js'
import type { InferenceObservation } from '../../metrics.js'
import { softmax } from '../../postprocess.js'
import { BudgetProperties, OnInfeasibleSchema } from '../../schemas/common.js'
import { hasBudget } from '../../selection/budget.js'
import { isCascade, type Servable } from '../../cascade/candidates.js'
import { runCascadeOnBatch } from '../../cascade/serve.js'
import { chooseOrThrow, contractModel, type SelectionFields } from '../../selection/choose.js'
import type { SelectionRequest } from '../../selection/selector.js'
import type { ModelEntry } from '../../zoo/model-entry.js'
import { frameBinaryResponse, HEADER_LENGTH_HEADER, parseJsonHeader, splitBody } from './body.js'
import { classify } from './classification.js'
import { observations, v2ErrorResponses } from './errors.js'
import {
  AUTO_MODEL,
  inputDims,
  MODEL_VERSION,
  OUTPUT_LOGITS,
  OUTPUT_NAMES,
  resolveTarget,
  type OutputName,
  type Target,
} from './models.js'
import {
  InferRequestSchema,
  InferResponseSchema,
  ModelParamsSchema,
  VersionedModelParamsSchema,
  type InferRequest,
  type InferResponse,
  type Parameters,
  type RequestInput,
  type RequestOutput,
  type ResponseOutput,
} from './schemas.js'
import { bytesToBinary, elementCount, float32FromBinary, float32FromJson, float32ToBinary } from './tensor.js'

const checkRequest = Compile(InferRequestSchema)
const BudgetParametersSchema = Type.Object({
  ...BudgetProperties,
  onInfeasible: Type.Optional(OnInfeasibleSchema),
})
const checkBudget = Compile(BudgetParametersSchema)
const BUDGET_PARAMETERS = Object.keys(BudgetParametersSchema.properties)

function invalid(message: string, parameter: string): never {
  throw apiError('INVALID_PARAMETER', message, { parameter, location: 'body' })
}

export function validateRequest(value: unknown): InferRequest {
  if (checkRequest.Check(value)) return value
  const [error] = checkRequest.Errors(value)
  const path = error?.instancePath ? error.instancePath.replace(/^\//, '').replaceAll('/', '.') : '(root)'
  invalid(`invalid inference request: ${path} ${error?.message ?? 'does not match the protocol'}`, path)
}

interface RequestOptions {
  binaryOutput: boolean
  fields: SelectionFields
}

/** Request-level parameters this server interprets; others (priority, timeout, …) are ignored. */
function readParameters(parameters: Parameters | undefined): RequestOptions {
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

interface OutputSpec {
  name: OutputName
  /** Top-k classification strings instead of the tensor; 0 = the tensor. */
  classification: number
  binary: boolean
}

function readOutputs(
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
function singleInput(request: InferRequest, modelName: string): RequestInput {
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

function accepts(model: ModelEntry, input: RequestInput): boolean {
  const dims = inputDims(model)
  return model.input.name === input.name && dims.every((d, i) => input.shape[i + 1] === d)
}

/** The tensor of `input` for `model`, from JSON data or the binary section. */
function readTensor(
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

interface Choice {
  model: Servable
  selection: SelectionRequest
  reason: string
  budgetMet: boolean
}

/**
 * Which model runs: the named model or cascade (a budget, if any, checked against it), or for
 * `alphanet-auto` the one selection over the models and cascades that accept the input tensor.
 */
function choose(app: FastifyInstance, target: Target, input: RequestInput, fields: SelectionFields): Choice {
  if (target.kind === 'auto' && !app.zoo.list({ liveFor: '' }).some((m) => accepts(m, input))) {
    const accepted = [
      ...new Set(
        app.zoo.list({ liveFor: '' }).map((m) => `'${m.input.name}' [-1,${inputDims(m).join(',')}]`),
      ),
    ]
    invalid(
      `no model of the zoo accepts input '${input.name}' of shape [${input.shape.join(',')}]; ${AUTO_MODEL} can serve inputs ${accepted.join(', ')}`,
      input.name,
    )
  }
  const { selection, outcome } = chooseOrThrow(app.zoo, {
    fields: target.kind === 'model' ? { ...fields, model: target.model.name } : fields,
    accepts: (model) => accepts(model, input),
  })
  return { model: outcome.model, selection, reason: outcome.reason, budgetMet: outcome.budgetMet }
}

function buildOutputs(
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

/** One inference call, whatever transport carried it (REST here, gRPC in server/grpc/). */
export interface InferCall {
  target: Target
  /** The request in its JSON shape; binary inputs declare `binary_data_size`. */
  request: InferRequest
  /** The binary tensor data, in input order (empty when every input carries `data`). */
  binary: Buffer
  /** Echoed as the response `id` when the request has none. */
  requestId: string
  run: RunOptions
  /** Filled in as the model is chosen, for the metrics of the transport. */
  observation: InferenceObservation
}

export interface InferOutcome {
  response: InferResponse
  /** Bytes of the outputs whose `parameters.binary_data_size` is set, in output order. */
  tensors: Buffer[]
}

/**
 * Parameters → model choice (selection, admission by the runtime) → run → outputs: the whole of
 * an Open Inference Protocol inference but the framing. Throws catalogue errors.
 */
export async function runInference(app: FastifyInstance, call: InferCall): Promise<InferOutcome> {
  const { target, request: inferRequest, binary, observation } = call
  const name = target.kind === 'model' ? target.model.name : AUTO_MODEL
  const options = readParameters(inferRequest.parameters)
  const input = singleInput(inferRequest, name)
  const choice = choose(app, target, input, options.fields)
  const chosen = choice.model
  // The input contract and labels (a cascade's are its first stage's, shared by every stage).
  const model = contractModel(chosen)
  observation.model = chosen.name
  observation.selectionReason = choice.reason
  const budgeted = hasBudget(choice.selection.budget)
  observation.budget = budgeted ? (choice.budgetMet ? 'met' : 'missed') : 'none'

  const specs = readOutputs(inferRequest.outputs, options.binaryOutput, chosen.name)
  const { tensor, dims } = readTensor(input, binary, model)
  const batch = dims[0] ?? 1

  let logits: Float32Array
  let answeredBy: string | undefined
  if (isCascade(chosen)) {
    const ran = await runCascadeOnBatch(app.inference, chosen, tensor, batch, call.run)
    logits = ran.logits
    answeredBy = ran.outcomes.map((o) => o.model.name).join(',')
  } else {
    const result = await app.inference.run(model.name, tensor, dims, call.run)
    logits = result.logits
    app.metrics.recordExecution(model.name, {
      batchSize: batch,
      queueMs: result.queueMs,
      inferenceMs: result.inferenceMs,
    })
  }
  const classes = model.labels.length
  if (logits.length !== batch * classes) {
    throw apiError(
      'INFERENCE_FAILED',
      `${chosen.name} returned ${logits.length} values for a batch of ${batch} × ${classes} classes`,
    )
  }

  const { outputs, binary: tensors } = buildOutputs(specs, logits, batch, model)
  const response: InferResponse = {
    model_name: chosen.name,
    model_version: MODEL_VERSION,
    id: inferRequest.id ?? call.requestId,
    outputs,
  }
  if (target.kind === 'auto' || budgeted) {
    response.parameters = {
      selectedModel: chosen.name,
      selectionReason: choice.reason,
      budgetMet: choice.budgetMet,
    }
  }
  // Which stage answered each row (comma-separated, row order), for a cascade.
  if (answeredBy !== undefined)
    response.parameters = { ...response.parameters, cascadeAnsweredBy: answeredBy }
  return { response, tensors }
}

interface InferParams {
  name: string
  version?: string
}

async function infer(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const { name, version } = request.params as InferParams
  const observation = observations.get(request) ?? { api: 'v2' as const }
  const target = resolveTarget(app.zoo, name, version)
  const { json, binary } = splitBody(request.body, request.headers[HEADER_LENGTH_HEADER])

  let inferRequest: InferRequest
  if (json === null) {
    // Raw binary request: one input, batch 1, every output binary.
    if (target.kind !== 'model') {
      invalid(
        `a raw binary request (${HEADER_LENGTH_HEADER}: 0) needs a concrete model; ${AUTO_MODEL} needs the JSON header to know the tensor shape`,
        HEADER_LENGTH_HEADER,
      )
    }
    const { model } = target
    inferRequest = {
      inputs: [
        {
          name: model.input.name,
          datatype: 'FP32',
          shape: [1, ...inputDims(model)],
          parameters: { binary_data_size: binary.length },
        },
      ],
      parameters: { binary_data_output: true },
    }
  } else {
    inferRequest = validateRequest(parseJsonHeader(json))
  }

  const { response, tensors } = await runInference(app, {
    target,
    request: inferRequest,
    binary,
    requestId: request.id,
    run: { signal: clientGoneSignal(reply) },
    observation,
  })
  app.metrics.recordServed(observation, reply.elapsedTime)

  if (response.outputs.some((o) => o.parameters?.binary_data_size !== undefined)) {
    const framed = frameBinaryResponse(response, tensors)
    return reply
      .header(HEADER_LENGTH_HEADER, framed.headerLength)
      .type('application/octet-stream')
      .send(framed.body)
  }
  return reply.type('application/json; charset=utf-8').send(JSON.stringify(response))
}

const routeSchema = {
  tags: ['open-inference'],
  consumes: ['application/json', 'application/octet-stream'],
  body: InferRequestSchema,
  response: { 200: InferResponseSchema, ...v2ErrorResponses(400, 404, 413, 500, 503) },
}

const description = `Open Inference Protocol inference, with Triton's classification and binary tensor data extensions. The model name may be the virtual \`${AUTO_MODEL}\`: the request's \`parameters\` (maxMflops, maxLatencyMs, minTop1, onInfeasible) then select the most accurate ready model within the budget among those accepting the tensor's shape.`

const inferRoutes: FastifyPluginAsync = async (app) => {
  const bodyLimit = app.config.maxBodyBytes
  // Bodies are JSON or JSON + binary tensors, whatever the Content-Type says: read them as bytes.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => {
    done(null, body)
  })
  const options = {
    bodyLimit,
    // The body schema documents the JSON header; it is validated after splitting off binary data.
    validatorCompiler: () => () => true,
    onRequest: async (request: FastifyRequest) => {
      observations.set(request, { api: 'v2' })
    },
  }
  app.post(
    '/models/:name/infer',
    {
      ...options,
      schema: {
        ...routeSchema,
        params: ModelParamsSchema,
        summary: 'Run a model (Open Inference Protocol)',
        description,
      },
    },
    (request, reply) => infer(app, request, reply),
  )
  app.post(
    '/models/:name/versions/:version/infer',
    {
      ...options,
      schema: {
        ...routeSchema,
        params: VersionedModelParamsSchema,
        summary: 'Run a model version (Open Inference Protocol)',
        description,
      },
    },
    (request, reply) => infer(app, request, reply),
  )
}

export default inferRoutes
