/**
 * inference.GRPCInferenceService: the Open Inference Protocol over gRPC, answered from the same
 * places as its REST twin under /v2 — readiness and metadata from routes/v2/models.ts, inference
 * from runInference() (the selection, the runtime's admission and batching, the outputs) — and
 * admitted by `app.admission`, the front door HTTP requests pass too. ModelInfer honours the
 * client's deadline (refused with DEADLINE_EXCEEDED, before any compute, once it cannot be met) and
 * drops the work of a call the client cancelled.
 */
import type * as grpc from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import { toApiError } from '../error-handler.js'
import type { InferenceObservation } from '../metrics.js'
import { requestIdFrom, REQUEST_ID_HEADER } from '../request-id.js'
import { runInference } from '../routes/v2/infer.js'
import { validateRequest } from '../routes/v2/infer-request.js'
import { EXTENSIONS, SERVER_NAME, serverVersion } from '../routes/v2/metadata.js'
import {
  autoMetadata,
  isModelReady,
  isServerReady,
  modelMetadata,
  resolveTarget,
} from '../routes/v2/models.js'
import { toServiceError } from './status.js'
import { toGrpcResponse, toRestRequest, type GrpcInferRequest, type GrpcInferResponse } from './tensors.js'

interface ModelRequest {
  name: string
  version: string
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void

/** The version a request names; proto3 sends an unset string as "" (= the server's choice). */
const versionOf = (version: string) => (version === '' ? undefined : version)

/** The absolute deadline on performance.now()'s clock, from the call's (wall-clock) deadline. */
function runDeadline(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const deadline = call.getDeadline()
  const at = deadline instanceof Date ? deadline.getTime() : deadline
  if (!Number.isFinite(at)) return undefined
  return performance.now() + (at - Date.now())
}

/** Aborted when the client cancels the call or its deadline passes (grpc-js cancels it then). */
function cancelledSignal(call: grpc.ServerUnaryCall<unknown, unknown>): AbortSignal {
  const controller = new AbortController()
  if (call.cancelled) controller.abort()
  else
    call.once('cancelled', () => {
      controller.abort()
    })
  return controller.signal
}

function requestId(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const [given] = call.metadata.get(REQUEST_ID_HEADER)
  return requestIdFrom({ headers: { [REQUEST_ID_HEADER]: typeof given === 'string' ? given : undefined } })
}

export function inferenceService(app: FastifyInstance): grpc.UntypedServiceImplementation {
  const version = serverVersion()

  /** A handler whose thrown errors become gRPC statuses (logged as REST logs them). */
  function unary<Req, Res>(
    method: string,
    handle: (call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>,
    onError?: (call: grpc.ServerUnaryCall<Req, Res>, code: string) => void,
  ): Unary<Req, Res> {
    return (call, callback) => {
      Promise.resolve()
        .then(() => handle(call))
        .then(
          (response) => {
            callback(null, response)
          },
          (error: unknown) => {
            const apiErr = toApiError(error)
            const log = { grpcMethod: method, code: apiErr.code }
            if (apiErr.statusCode === 500) app.log.error({ ...log, err: error }, apiErr.message)
            else app.log.info(log, apiErr.message)
            onError?.(call, apiErr.code)
            callback(toServiceError(apiErr))
          },
        )
    }
  }

  const observations = new WeakMap<object, InferenceObservation>()

  const modelInfer = unary<GrpcInferRequest, GrpcInferResponse>(
    'ModelInfer',
    async (call) => {
      const started = performance.now()
      const observation: InferenceObservation = { api: 'grpc' }
      observations.set(call, observation)
      const leave = app.admission.admit()
      try {
        const message = call.request
        const target = resolveTarget(app.zoo, message.model_name, versionOf(message.model_version))
        const { request, binary } = toRestRequest(message)
        const outcome = await runInference(app, {
          target,
          request: validateRequest(request),
          binary,
          requestId: message.id === '' ? requestId(call) : message.id,
          run: { signal: cancelledSignal(call), deadline: runDeadline(call) },
          observation,
        })
        app.metrics.recordServed(observation, performance.now() - started)
        return toGrpcResponse(outcome)
      } finally {
        leave()
      }
    },
    (call, code) => {
      const observation = observations.get(call) ?? { api: 'grpc' }
      app.metrics.recordFailure(observation, code)
      app.metrics.recordRefusal(observation.model, code)
    },
  )

  return {
    ServerLive: unary('ServerLive', () => ({ live: true })),
    ServerReady: unary('ServerReady', () => ({ ready: isServerReady(app.zoo) })),
    ModelReady: unary<ModelRequest, { ready: boolean }>('ModelReady', (call) => ({
      ready: isModelReady(
        app.zoo,
        resolveTarget(app.zoo, call.request.name, versionOf(call.request.version)),
      ),
    })),
    ServerMetadata: unary('ServerMetadata', () => ({
      name: SERVER_NAME,
      version,
      extensions: [...EXTENSIONS],
    })),
    ModelMetadata: unary<ModelRequest, unknown>('ModelMetadata', (call) => {
      const target = resolveTarget(app.zoo, call.request.name, versionOf(call.request.version))
      return target.kind === 'model' ? modelMetadata(target.model) : autoMetadata(app.zoo)
    }),
    ModelInfer: modelInfer,
  }
}
