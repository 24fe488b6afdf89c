/**
 * Process entry: settings from the environment and flags, build the app (zoo loaded and warm),
 * listen on HOST:PORT, and for gRPC on HOST:GRPC_PORT. SIGTERM/SIGINT drain both: stop accepting,
 * finish in-flight requests and calls, exit 0 (or 1 after SHUTDOWN_TIMEOUT_MS). SIGHUP reloads the
 * zoo from ZOO_DIR without downtime.
 */
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { ConfigError, helpText, resolveConfig, type AppConfig } from './config.js'

function readConfig(): AppConfig {
  try {
    const { config, help } = resolveConfig({ env: process.env, argv: process.argv.slice(2) })
    if (help) {
      console.log(helpText())
      process.exit(0)
    }
    return config
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`${error.message}\nRun with --help for the list of settings.`)
      process.exit(2)
    }
    throw error
  }
}

function installSignalHandlers(app: FastifyInstance, config: AppConfig): void {
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal while draining: exiting now')
      process.exit(1)
    }
    stopping = true
    app.log.info({ signal }, 'shutting down: refusing new requests, finishing in-flight ones')
    const timer = setTimeout(() => {
      app.log.error(
        { timeoutMs: config.shutdownTimeoutMs },
        'in-flight requests did not finish in time: exiting',
      )
      process.exit(1)
    }, config.shutdownTimeoutMs)
    timer.unref()
    app.close().then(
      () => {
        app.log.info('shut down cleanly')
        process.exit(0)
      },
      (error: unknown) => {
        app.log.error({ err: error }, 'error while shutting down')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  process.on('SIGHUP', () => {
    app.log.info({ zooDir: config.zooDir }, 'SIGHUP: reloading the zoo')
    app.zooManager.reload().then(
      (result) => {
        app.log.info({ result }, 'zoo reloaded')
      },
      // ReloadError is logged where it happens; the previous zoo keeps serving.
      () => undefined,
    )
  })
}

async function main(): Promise<void> {
  const config = readConfig()
  let app: FastifyInstance | undefined
  try {
    // Loading the zoo happens inside buildApp/ready: invalid zoo, no loadable model, or
    // EXECUTION_PROVIDER=cuda without CUDA end the process here with the reason.
    app = await buildApp(config)
    await app.ready()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    if (app) app.log.fatal({ err: error }, `cannot start: ${message}`)
    console.error(`cannot start: ${message}`)
    await app?.close().catch(() => undefined)
    process.exit(1)
  }
  installSignalHandlers(app, config)
  await app.listen({ host: config.host, port: config.port })
  try {
    await app.grpc.listen()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    app.log.fatal({ err: error, grpcPort: config.grpcPort }, `cannot start gRPC: ${message}`)
    console.error(`cannot start gRPC on port ${config.grpcPort}: ${message}`)
    await app.close().catch(() => undefined)
    process.exit(1)
  }
}

await main()
