/**
 * Builds the service as a Fastify instance without listening: config, zoo + inference runtime,
 * error handling, OpenAPI and routes. main.ts listens; tests drive it with supertest/inject.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { resolveConfig, type AppConfig } from './config.js'
import './decorators.js'
import health from './routes/health.js'
import zooRuntime from './runtime/plugin.js'
import apiRoutes from './routes/index.js'

export async function buildApp(options: Partial<AppConfig> = {}): Promise<FastifyInstance> {
  const { config } = resolveConfig({ overrides: options })
  const app = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: config.maxBodyBytes,
    // Requests that arrive once close() has begun get 503 while in-flight ones finish.
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  })
  app.decorate('config', config)

  await app.register(zooRuntime)

  await app.register(health)
  await app.register(apiRoutes)
  return app
}
