/**
 * One served zoo "generation": a validated zoo directory, its worker pool with every model's
 * session, and the latency measured for each model on this host. A generation is built completely
 * (load, verify, create sessions, warm up, measure) before it may serve; reloading builds a new one
 * beside the current one and swaps.
 */
import type { ExecutionProviderMode } from '../config.js'
import { loadZoo, type Zoo } from '../zoo/load-zoo.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { resolveExecutionProvider, type ProviderDecision } from './execution-provider.js'
import { InferencePool } from './inference-pool.js'
import { measureLatency, syntheticInput } from './latency.js'
import type { WorkerModelSpec } from './worker-protocol.js'

export interface GenerationSettings {
  zooDir: string
  executionProvider: ExecutionProviderMode
  workerThreads: number
  intraOpThreads: number
  warmupRuns: number
  /** DEFAULT_MODEL; must name a model of the zoo when set. */
  defaultModel?: string | undefined
}

/** The subset of a pino logger this module needs (tests pass a recorder). */
export interface GenerationLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/** No model of the zoo can serve (or the zoo is unusable for another reason named in the message). */
export class ZooUnavailableError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ZooUnavailableError'
  }
}

export interface Generation {
  id: number
  zoo: Zoo
  pool: InferencePool
  provider: ProviderDecision
  defaultModel: string
  loadedAt: string
}

function describeFailures(zoo: Zoo): string {
  return zoo.models.map((m) => `${m.name}: ${m.reason ?? 'not ready'}`).join('\n  ')
}

/** DEFAULT_MODEL if ready, else the manifest's default if ready, else the most accurate ready model. */
export function chooseDefaultModel(
  models: readonly ModelEntry[],
  configured?: string,
  manifestDefault?: string,
): string {
  const ready = models.filter((m) => m.ready)
  for (const name of [configured, manifestDefault]) {
    if (name !== undefined && ready.some((m) => m.name === name)) return name
  }
  const best = [...ready].sort(
    (a, b) =>
      b.top1 - a.top1 ||
      (a.latencyMs?.p50 ?? Infinity) - (b.latencyMs?.p50 ?? Infinity) ||
      a.mflops - b.mflops,
  )[0]
  if (!best) throw new ZooUnavailableError('no ready model to serve as the default')
  return best.name
}

let nextId = 1

/**
 * Builds a generation from `settings.zooDir` (with `knownProvider`, the execution provider a
 * previous generation resolved, without probing CUDA again). Throws ManifestError (invalid zoo),
 * CudaUnavailableError (EXECUTION_PROVIDER=cuda without CUDA) or ZooUnavailableError (no model
 * loads, or DEFAULT_MODEL names no model); otherwise every model is either ready and measured or
 * carries the reason it is not.
 */
export async function startGeneration(
  settings: GenerationSettings,
  log: GenerationLog,
  knownProvider?: ProviderDecision,
): Promise<Generation> {
  const zoo = await loadZoo(settings.zooDir)
  if (settings.defaultModel !== undefined && !zoo.models.some((m) => m.name === settings.defaultModel)) {
    throw new ZooUnavailableError(
      `DEFAULT_MODEL "${settings.defaultModel}" is not a model of ${zoo.dir} (models: ${zoo.models.map((m) => m.name).join(', ')})`,
    )
  }
  for (const model of zoo.models) {
    if (!model.ready) log.warn({ model: model.name, reason: model.reason }, `model ${model.name} not ready`)
  }
  const verified = zoo.models.filter((m) => m.ready)
  // CUDA availability does not change while the process runs: a reload reuses the first decision
  // (no second warning, and no CUDA probe session created on the serving event loop).
  let provider = knownProvider
  if (!provider) {
    provider = await resolveExecutionProvider(
      settings.executionProvider,
      verified.map((m) => m.path),
    )
    if (provider.warning !== undefined) log.warn({ executionProvider: 'cpu' }, provider.warning)
  }
  if (verified.length === 0) {
    throw new ZooUnavailableError(`no model of ${zoo.dir} can be loaded:\n  ${describeFailures(zoo)}`)
  }

  const specs: WorkerModelSpec[] = verified.map((m) => ({
    name: m.name,
    path: m.path,
    inputName: m.input.name,
    channels: m.input.channels,
    size: m.input.size,
    classes: m.labels.length,
  }))
  const pool = await InferencePool.start({
    models: specs,
    provider: provider.provider,
    cpuFallback: settings.executionProvider === 'auto',
    threads: settings.workerThreads,
    intraOpThreads: settings.intraOpThreads,
    onWorkerError: (error) => {
      log.warn({ err: error }, 'an inference worker failed and is being replaced')
    },
  })
  try {
    for (const model of verified) {
      const status = pool.statuses.get(model.name)
      if (!status?.ready) {
        model.ready = false
        model.reason = status?.reason ?? 'no worker loaded it'
        log.warn({ model: model.name, reason: model.reason }, `model ${model.name} not ready`)
        continue
      }
      model.executionProvider = status.executionProvider ?? provider.provider
      if (status.fallbackReason !== undefined) {
        log.warn({ model: model.name, reason: status.fallbackReason }, `model ${model.name} runs on the CPU`)
      }
      const dims = [1, model.input.channels, model.input.size, model.input.size]
      const input = syntheticInput(dims.reduce((a, b) => a * b, 1))
      try {
        model.latencyMs = await measureLatency(settings.warmupRuns, async () => {
          return (await pool.run(model.name, input, dims)).inferenceMs
        })
      } catch (error) {
        model.ready = false
        model.reason = `warm-up failed: ${error instanceof Error ? error.message : String(error)}`
        log.warn({ model: model.name, reason: model.reason }, `model ${model.name} not ready`)
      }
    }
    if (!zoo.models.some((m) => m.ready)) {
      throw new ZooUnavailableError(`no model of ${zoo.dir} can be loaded:\n  ${describeFailures(zoo)}`)
    }
    const defaultModel = chooseDefaultModel(zoo.models, settings.defaultModel, zoo.manifest.defaultModel)
    if (settings.defaultModel !== undefined && defaultModel !== settings.defaultModel) {
      log.warn(
        { defaultModel, configured: settings.defaultModel },
        `DEFAULT_MODEL ${settings.defaultModel} is not ready; using ${defaultModel}`,
      )
    }
    return { id: nextId++, zoo, pool, provider, defaultModel, loadedAt: new Date().toISOString() }
  } catch (error) {
    await pool.close()
    throw error
  }
}
