/**
 * Fastify plugin that loads and warms the zoo before the app is ready and decorates the instance
 * with `zoo`, `inference` and `zooManager`. Start-up fails (app.ready() rejects) only when the zoo
 * is unusable: invalid manifest, no model loads, or EXECUTION_PROVIDER=cuda without CUDA.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { DEFAULT_ZOO_DIR, FIXTURE_ZOO_DIR } from '../config.js'
import { ServingZoo } from './serving-zoo.js'

const zooRuntime: FastifyPluginAsync = async (app) => {
  const { config } = app
  if (config.zooDir === FIXTURE_ZOO_DIR && !existsSync(join(DEFAULT_ZOO_DIR, 'manifest.json'))) {
    app.log.warn(
      { zooDir: config.zooDir },
      `${join(DEFAULT_ZOO_DIR, 'manifest.json')} not found: serving the fixture zoo (tiny untrained test models); ` +
        'publish a trained zoo into models/ or set ZOO_DIR',
    )
  }
  const serving = new ServingZoo(
    {
      zooDir: config.zooDir,
      executionProvider: config.executionProvider,
      workerThreads: config.workerThreads,
      intraOpThreads: config.intraOpThreads,
      warmupRuns: config.warmupRuns,
      defaultModel: config.defaultModel,
      preprocessThreads: config.preprocessThreads,
      maxBatchSize: config.maxBatchSize,
      maxQueueDelayUs: config.maxQueueDelayUs,
      maxQueueSize: config.maxQueueSize,
      inferenceTimeoutMs: config.inferenceTimeoutMs,
      // Test-only switch (never a documented setting): lets a test make workers crash or models fail.
      faultInjection: process.env.ALPHANET_FAULT_INJECTION === '1',
    },
    app.log,
  )
  await serving.start()

  // One runtime object behind all three decorations (each typed to what its users need).
  app.decorate('zoo', serving)
  app.decorate('inference', serving)
  app.decorate('zooManager', serving)

  // Executed batch sizes go to the metrics (registered after this plugin) straight from the
  // scheduler: the routes only see requests, not how they were merged.
  app.addHook('onReady', async () => {
    if (!app.hasDecorator('metrics')) return
    serving.observe({
      onBatch: (model, observation) => {
        app.metrics.recordBatch(model, observation.batchSize)
      },
    })
  })

  // Readiness drops as soon as shutdown begins; the pool closes only after in-flight requests end.
  app.addHook('preClose', async () => {
    serving.beginShutdown()
  })
  app.addHook('onClose', async () => {
    await serving.close()
  })
}

export default fp(zooRuntime, { name: 'zoo-runtime' })
