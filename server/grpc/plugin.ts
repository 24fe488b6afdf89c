/**
 * The gRPC endpoint beside the HTTP one: inference.GRPCInferenceService and grpc.health.v1.Health
 * on GRPC_PORT (0: none), sharing the app's zoo, runtime, admission and metrics. It listens when
 * `app.grpc.listen()` is called (main.ts does, after the HTTP listener), so apps built by tests
 * that never listen open no port. Messages are bounded by MAX_BODY_BYTES, as HTTP bodies are
 * (grpc-js answers RESOURCE_EXHAUSTED beyond). On close (SIGTERM) it drains with HTTP: health turns
 * NOT_SERVING, new calls are refused, calls in flight finish before the runtime closes.
 */
import * as grpc from '@grpc/grpc-js'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { HealthService } from './health-service.js'
import { inferenceService } from './inference-service.js'
import { loadServices } from './proto.js'

export interface GrpcEndpoint {
  /** Starts listening on HOST:GRPC_PORT; resolves with the bound port (undefined when GRPC_PORT is 0). */
  listen(): Promise<number | undefined>
  /** The bound port once listening. */
  readonly port: number | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    grpc: GrpcEndpoint
  }
}

function address(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`
}

const grpcEndpoint: FastifyPluginAsync = async (app) => {
  const { config } = app
  const services = loadServices()
  const health = new HealthService(app.zoo)
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxBodyBytes,
  })
  server.addService(services.inference.service, inferenceService(app))
  server.addService(services.health.service, health.implementation())

  let port: number | undefined
  let listening = false
  app.decorate('grpc', {
    get port() {
      return port
    },
    listen: async () => {
      if (config.grpcPort === 0) return undefined
      if (listening) return port
      port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(
          address(config.host, config.grpcPort),
          grpc.ServerCredentials.createInsecure(),
          (error, bound) => {
            if (error) reject(error)
            else resolve(bound)
          },
        )
      })
      listening = true
      app.log.info({ grpcPort: port }, `gRPC (${services.inference.serviceName}, health) listening`)
      return port
    },
  } satisfies GrpcEndpoint)

  let drained: Promise<void> = Promise.resolve()
  app.addHook('preClose', async () => {
    health.drain()
    if (!listening) return
    drained = new Promise<void>((resolve) => {
      server.tryShutdown((error) => {
        if (error) app.log.error({ err: error }, 'gRPC drain failed')
        resolve()
      })
    })
  })
  // The runtime closes in its own onClose hook: gRPC calls still in flight finish first (onClose
  // hooks run in reverse order of registration, and this plugin is registered after the runtime).
  app.addHook('onClose', async () => {
    await drained
    if (!listening) server.forceShutdown()
  })
}

export default fp(grpcEndpoint, { name: 'grpc', dependencies: ['zoo-runtime', 'metrics', 'security'] })
