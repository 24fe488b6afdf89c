/**
 * Test helpers: an app over the committed fixture zoo with quiet logs, one worker thread and a
 * short warm-up (the test machine has 2 shared cores), closed automatically after the test; and
 * throw-away zoo directories (copies, subsets, deliberately broken models) for load/reload tests.
 */
import { createHash } from 'node:crypto'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../server/app.js'
import { FIXTURE_ZOO_DIR, projectRoot, type AppConfig } from '../server/config.js'
import { ServingZoo } from '../server/runtime/serving-zoo.js'
import type { GenerationSettings } from '../server/runtime/zoo-generation.js'
import type { Manifest, ModelManifest } from '../server/zoo/manifest-schema.js'

export { FIXTURE_ZOO_DIR }
export const ROOT = projectRoot()
export const fixturePath = (...parts: string[]): string => join(ROOT, 'test', 'fixtures', ...parts)

/** The fixture zoo's models (see test/fixtures/zoo/generate_fixture_zoo.py). */
export const FIXTURE_MODELS = [
  'fixture-gray28-small',
  'fixture-gray28-large',
  'fixture-gray28-res20',
  'fixture-rgb32',
] as const

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

/**
 * buildTestApp with ADMIN_TOKEN set only while the app is built (the admin route reads it at
 * registration), so no test leaks the token into the environment of the next.
 */
export async function buildTestAppWithAdminToken(
  t: TestContext,
  token: string,
  overrides: Partial<AppConfig> = {},
): Promise<FastifyInstance> {
  const previous = process.env.ADMIN_TOKEN
  process.env.ADMIN_TOKEN = token
  try {
    return await buildTestApp(t, overrides)
  } finally {
    if (previous === undefined) delete process.env.ADMIN_TOKEN
    else process.env.ADMIN_TOKEN = previous
  }
}

/** A started ServingZoo with `settings` and a recording log, closed after the test. */
export async function startedServingZoo(
  t: { after(fn: () => Promise<void>): void },
  settings: GenerationSettings,
) {
  const log = recordingLog()
  const zoo = new ServingZoo(settings, log)
  t.after(() => zoo.close())
  await zoo.start()
  return { zoo, log }
}

export async function readFixtureManifest(): Promise<Manifest> {
  return JSON.parse(await readFile(join(FIXTURE_ZOO_DIR, 'manifest.json'), 'utf8')) as Manifest
}

export interface ZooCopyOptions {
  /** Keep only these fixture models (default: all). */
  models?: readonly string[]
  /** Edit the manifest before it is written. */
  mutate?: (manifest: Manifest) => void
}

/** A temporary copy of the fixture zoo (removed after the test); returns its directory. */
export async function copyFixtureZoo(t: TestContext, options: ZooCopyOptions = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'alphanet-zoo-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const manifest = await readFixtureManifest()
  if (options.models) {
    const keep = new Set(options.models)
    manifest.models = manifest.models.filter((m) => keep.has(m.name))
    if (manifest.defaultModel !== undefined && !keep.has(manifest.defaultModel)) delete manifest.defaultModel
  }
  for (const model of manifest.models) {
    await copyFile(join(FIXTURE_ZOO_DIR, model.file), join(dir, model.file))
    if (model.reference) {
      await copyFile(join(FIXTURE_ZOO_DIR, model.reference.file), join(dir, model.reference.file))
    }
  }
  options.mutate?.(manifest)
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return dir
}

export const BROKEN_MODELS = {
  missing: 'broken-missing-file',
  corrupt: 'broken-corrupt-file',
  checksum: 'broken-wrong-checksum',
} as const

/**
 * A zoo with three broken models besides (optionally) the good fixture ones: one whose file is
 * missing, one whose file is not ONNX (checksum correct, so only session creation fails) and one
 * whose checksum does not match its file.
 */
export async function createBrokenZoo(t: TestContext, { includeGood = true } = {}): Promise<string> {
  const template = (await readFixtureManifest()).models[0]
  if (!template) throw new Error('fixture manifest has no models')
  const garbage = Buffer.from('this is not an ONNX protobuf, just bytes pretending to be a model\n')
  const brokenEntry = (name: string, sha256: string): ModelManifest => ({
    ...template,
    name,
    file: `${name}.onnx`,
    sha256,
    reference: undefined,
  })
  const dir = await copyFixtureZoo(t, {
    models: includeGood ? FIXTURE_MODELS : [],
    mutate: (manifest) => {
      manifest.models.push(
        brokenEntry(BROKEN_MODELS.missing, template.sha256),
        brokenEntry(BROKEN_MODELS.corrupt, createHash('sha256').update(garbage).digest('hex')),
        brokenEntry(BROKEN_MODELS.checksum, '0'.repeat(64)),
      )
    },
  })
  await writeFile(join(dir, `${BROKEN_MODELS.corrupt}.onnx`), garbage)
  await copyFile(join(FIXTURE_ZOO_DIR, template.file), join(dir, `${BROKEN_MODELS.checksum}.onnx`))
  return dir
}

/** Polls `check` every 20 ms until it holds or `timeoutMs` passes. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A recording logger with the methods the runtime uses. */
export function recordingLog() {
  const entries: { level: 'info' | 'warn' | 'error'; obj: object; msg: string }[] = []
  return {
    entries,
    info: (obj: object, msg: string) => entries.push({ level: 'info', obj, msg }),
    warn: (obj: object, msg: string) => entries.push({ level: 'warn', obj, msg }),
    error: (obj: object, msg: string) => entries.push({ level: 'error', obj, msg }),
  }
}

/** The fixture model's reference pair: a fixed input and the PyTorch output for it. */
export async function readReference(
  name: string,
): Promise<{ input: { shape: number[]; data: number[] }; output: { shape: number[]; data: number[] } }> {
  const text = await readFile(join(FIXTURE_ZOO_DIR, `${name}.reference.json`), 'utf8')
  return JSON.parse(text) as {
    input: { shape: number[]; data: number[] }
    output: { shape: number[]; data: number[] }
  }
}
