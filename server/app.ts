/**
 * Builds the service as a Fastify instance without listening: config, error handling, the zoo
 * and its inference runtime, then the routes. main.ts listens; tests drive it with supertest/inject.
 */
import type { ServerOptions } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import { resolveConfig, type AppConfig } from './config.js'
import './decorators.js'
import { handleFrameworkError, registerErrorHandlers } from './error-handler.js'
import grpcEndpoint from './grpc/plugin.js'
import metrics, { metricsRoute } from './plugins/metrics.js'
import security, { handleClientError } from './plugins/security.js'
import requestId, { requestIdOptions } from './request-id.js'
import admin from './routes/admin.js'
import health from './routes/health.js'
import apiRoutes from './routes/index.js'
import openInference from './routes/v2/index.js'
import zooRuntime from './runtime/plugin.js'
import webPage from './web/route.js'

/**
 * Node HTTP server limits: MAX_HEADER_BYTES bounds the request line (so the URL) plus headers;
 * REQUEST_TIMEOUT_MS bounds the whole request, and the headers alone at most as long. Node checks
 * these timeouts on an interval (30 s by default), so the interval follows a short timeout.
 */
function httpServerOptions(config: AppConfig): ServerOptions {
  const options: ServerOptions = {
    maxHeaderSize: config.maxHeaderBytes,
    // Node would answer an HTTP/1.1 request without Host itself, with an empty uncoded 400;
    // security.ts refuses it with MALFORMED_REQUEST instead.
    requireHostHeader: false,
  }
  if (config.requestTimeoutMs > 0) {
    options.headersTimeout = Math.min(60_000, config.requestTimeoutMs)
    options.connectionsCheckingInterval = Math.min(
      30_000,
      Math.max(100, Math.floor(config.requestTimeoutMs / 4)),
    )
  }
  return options
}

/**
 * @param options settings over the defaults (main.ts passes the environment + flags already
 *   merged; tests pass what they need). Throws ConfigError for invalid settings; app.ready()
 *   rejects when the zoo cannot serve (see runtime/plugin.ts).
 */
export async function buildApp(options: Partial<AppConfig> = {}): Promise<FastifyInstance> {
  const { config } = resolveConfig({ overrides: options })
  const app = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: config.maxBodyBytes,
    // Draining is handled by registerErrorHandlers: new requests during close() get a coded
    // SHUTTING_DOWN 503 while in-flight ones finish (Fastify's own variant has no code).
    return503OnClosing: false,
    // Idle keep-alive sockets would hold close() open; busy ones finish their request first.
    forceCloseConnections: 'idle',
    // Loading and warming a zoo (zoo-runtime) takes as long as its models need: a few ImageNet models
    // on a busy CPU exceed Fastify's 10 s plugin timeout, which would abort start-up.
    pluginTimeout: 0,
    // Errors Fastify raises before routing (e.g. an undecodable URL) get catalogue codes too.
    frameworkErrors: handleFrameworkError,
    // What Node's HTTP parser refuses (oversized headers, slow or unparseable requests) gets a
    // coded JSON answer too; the limits themselves are Node's, set from the config.
    clientErrorHandler: handleClientError,
    http: httpServerOptions(config),
    requestTimeout: config.requestTimeoutMs,
    ...requestIdOptions,
  })
  app.decorate('config', config)
  registerErrorHandlers(app)

  await app.register(requestId)
  // Before the routes: rate limiting attaches to each route as it is registered.
  await app.register(security)
  await app.register(zooRuntime)
  await app.register(metrics)
  // The API plugin registers OpenAPI collection first, so routes registered after it (health) are
  // documented too.
  await app.register(apiRoutes)
  await app.register(health)
  await app.register(admin)
  await app.register(openInference, { prefix: '/v2' })
  // gRPC twin of /v2 on GRPC_PORT; listens when main.ts calls app.grpc.listen().
  await app.register(grpcEndpoint)
  await app.register(metricsRoute)
  await app.register(webPage)
  return app
}
