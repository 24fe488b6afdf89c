/**
 * gRPC test clients: an app over the fixture zoo listening for gRPC on a free port, and promise
 * wrappers over grpc-js clients built from the same committed protos the server loads.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import * as grpc from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import type { AppConfig } from '../../server/config.js'
import { loadServices } from '../../server/grpc/proto.js'
import { startApp } from '../routes/support.js'

/** A port nothing listens on right now (the OS's choice; GRPC_PORT=0 means "no gRPC"). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface GrpcClients {
  inference: grpc.Client
  health: grpc.Client
  /** Calls a unary method; rejects with the ServiceError. */
  call<Res = Record<string, unknown>>(
    client: grpc.Client,
    method: string,
    request: unknown,
    options?: { deadline?: Date | number; metadata?: grpc.Metadata },
  ): Promise<Res>
  close(): void
}

export function grpcClients(port: number, options: grpc.ClientOptions = {}): GrpcClients {
  const services = loadServices()
  const address = `127.0.0.1:${port}`
  const credentials = grpc.credentials.createInsecure()
  const inference = new services.inference(address, credentials, options)
  const health = new services.health(address, credentials, options)
  return {
    inference,
    health,
    call: (client, method, request, callOptions = {}) =>
      new Promise((resolve, reject) => {
        type Unary = (
          this: grpc.Client,
          request: unknown,
          metadata: grpc.Metadata,
          options: grpc.CallOptions,
          callback: (error: grpc.ServiceError | null, response: unknown) => void,
        ) => void
        const fn = (client as unknown as Record<string, Unary | undefined>)[method]
        if (fn === undefined) throw new Error(`no method ${method}`)
        const metadata = callOptions.metadata ?? new grpc.Metadata()
        const opts = callOptions.deadline === undefined ? {} : { deadline: callOptions.deadline }
        fn.call(client, request, metadata, opts, (error, response) => {
          if (error) reject(error)
          else resolve(response as never)
        })
      }),
    close: () => {
      inference.close()
      health.close()
    },
  }
}

/** An app over the fixture zoo with gRPC listening on a free port, and clients for it. */
export async function startGrpcApp(
  overrides: Partial<AppConfig> = {},
): Promise<{ app: FastifyInstance; port: number; clients: GrpcClients }> {
  const app = await startApp({ grpcPort: await freePort(), ...overrides })
  const port = await app.grpc.listen()
  if (port === undefined) throw new Error('gRPC did not listen')
  return { app, port, clients: grpcClients(port) }
}

/** Asserts a gRPC error status (and its message); returns the error. */
export function assertStatus(error: unknown, code: grpc.status, pattern?: RegExp): grpc.ServiceError {
  const serviceError = error as grpc.ServiceError
  assert.equal(serviceError.code, code, `${grpc.status[serviceError.code]}: ${serviceError.details}`)
  if (pattern) assert.match(serviceError.details, pattern)
  return serviceError
}
