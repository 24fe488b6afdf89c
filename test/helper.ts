/**
 * Test helpers: an app over the committed fixture zoo with quiet logs, one worker thread and a
 * short warm-up (the test machine has 2 shared cores), closed automatically after the test.
 */
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../server/app.js'
import { FIXTURE_ZOO_DIR, projectRoot, type AppConfig } from '../server/config.js'

export { FIXTURE_ZOO_DIR }
export const ROOT = projectRoot()
export const fixturePath = (...parts: string[]): string => join(ROOT, 'test', 'fixtures', ...parts)

export const TEST_CONFIG: Partial<AppConfig> = {
  zooDir: FIXTURE_ZOO_DIR,
  logLevel: 'silent',
  executionProvider: 'cpu',
  workerThreads: 1,
  intraOpThreads: 1,
  warmupRuns: 3,
}

/** Builds and readies an app (Fastify inject/supertest need no listen); closes it after the test. */
export async function buildTestApp(
  t: TestContext,
  overrides: Partial<AppConfig> = {},
): Promise<FastifyInstance> {
  const app = await buildApp({ ...TEST_CONFIG, ...overrides })
  t.after(() => app.close())
  await app.ready()
  return app
}
