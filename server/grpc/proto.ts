/**
 * The gRPC service definitions, loaded from the committed .proto files (server/grpc/proto/) with
 * @grpc/proto-loader, for the server and for the clients the tests and the bench build. Fields
 * keep the proto's snake_case names (as every OIP client writes them), 64-bit integers are JS
 * numbers (shapes and parameters stay far below 2^53), bytes are Buffers, and `oneofs` names
 * which member of InferParameter is set.
 */
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import { projectRoot } from '../config.js'

export const PROTO_DIR = join(projectRoot(), 'server', 'grpc', 'proto')
export const INFERENCE_PROTO = join(PROTO_DIR, 'open_inference_grpc.proto')
export const HEALTH_PROTO = join(PROTO_DIR, 'health.proto')

/** Fully qualified service names, as clients and probes address them. */
export const INFERENCE_SERVICE = 'inference.GRPCInferenceService'
export const HEALTH_SERVICE = 'grpc.health.v1.Health'

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
}

interface Services {
  inference: grpc.ServiceClientConstructor
  health: grpc.ServiceClientConstructor
}

let loaded: Services | undefined

function service(definition: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  let node: unknown = definition
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part]
  if (typeof node !== 'function') throw new Error(`${path} is not a service of the loaded protos`)
  return node as grpc.ServiceClientConstructor
}

/** Both services (the constructors are clients; `.service` is the server-side definition). */
export function loadServices(): Services {
  if (!loaded) {
    const definition = grpc.loadPackageDefinition(
      protoLoader.loadSync([INFERENCE_PROTO, HEALTH_PROTO], LOADER_OPTIONS),
    )
    loaded = {
      inference: service(definition, INFERENCE_SERVICE),
      health: service(definition, HEALTH_SERVICE),
    }
  }
  return loaded
}
