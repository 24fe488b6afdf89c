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
import { clientGoneSignal } from '../../client-gone.js'
import type { RunOptions } from '../../runtime/types.js'
import { apiError } from '../../errors.js'
import type { InferenceObservation } from '../../metrics.js'
import { choiceObservation } from '../../selection/views.js'
import { isCascade, type Servable } from '../../cascade/candidates.js'
import { runCascadeOnBatch } from '../../cascade/serve.js'
import { chooseOrThrow, contractModel, type SelectionFields } from '../../selection/choose.js'
import type { SelectionRequest } from '../../selection/selector.js'
import { frameBinaryResponse, HEADER_LENGTH_HEADER, parseJsonHeader, splitBody } from './body.js'
import { observations } from '../../plugins/metrics.js'
import { v2ErrorResponses } from './errors.js'
import { buildOutputs } from './infer-outputs.js'
import {
  accepts,
  invalid,
  readOutputs,
  readParameters,
  readTensor,
  singleInput,
  validateRequest,
} from './infer-request.js'
import { AUTO_MODEL, inputDims, MODEL_VERSION, resolveTarget, type Target } from './models.js'
import {
  InferRequestSchema,
  InferResponseSchema,
  ModelParamsSchema,
  VersionedModelParamsSchema,
  type InferRequest,
  type InferResponse,
  type RequestInput,
} from './schemas.js'

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
function chooseTarget(
  app: FastifyInstance,
  target: Target,
  input: RequestInput,
  fields: SelectionFields,
): Choice {
  // liveFor a name no model has: whether any model accepts the input needs no live figures.
  const models = target.kind === 'auto' ? app.zoo.list({ liveFor: '' }) : []
  if (target.kind === 'auto' && !models.some((m) => accepts(m, input))) {
    const accepted = [...new Set(models.map((m) => `'${m.input.name}' [-1,${inputDims(m).join(',')}]`))]
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
  const choice = chooseTarget(app, target, input, options.fields)
  const chosen = choice.model
  // The input contract and labels (a cascade's are its first stage's, shared by every stage).
  const model = contractModel(chosen)
  Object.assign(observation, choiceObservation(choice.selection, choice))

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
  if (target.kind === 'auto' || observation.budget !== 'none') {
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
