/**
 * The OpenAPI document exactly as the server serves it at /docs/json: the app is built over the
 * fixture zoo (the document does not depend on which zoo is served) without listening.
 */
import { buildApp } from '../server/app.js'
import { FIXTURE_ZOO_DIR } from '../server/config.js'

export async function openApiDocument(): Promise<unknown> {
  const app = await buildApp({
    zooDir: FIXTURE_ZOO_DIR,
    logLevel: 'silent',
    executionProvider: 'cpu',
    workerThreads: 1,
    intraOpThreads: 1,
    warmupRuns: 1,
  })
  try {
    await app.ready()
    return app.swagger()
  } finally {
    await app.close()
  }
}
