/**
 * One served zoo "generation": a validated zoo directory, its runtime (generation-runtime.ts: the
 * inference workers with every model's session, the preprocessing workers and the scheduler), and
 * the latency measured for each model on this host. A generation is built completely
 * (load, verify, create sessions, warm up, measure) before it may serve; reloading builds a new one
 * beside the current one and swaps.
 */
import type { ExecutionProviderMode } from '../config.js'
import { loadZoo, type Zoo } from '../zoo/load-zoo.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { resolveExecutionProvider, type ProviderDecision } from './execution-provider.js'
import { GenerationRuntime, type RuntimeModelSpec } from './generation-runtime.js'
import { percentile, summarise, syntheticInput } from './latency.js'
import { ModelLatency } from './latency-model.js'
import { ModelHealth } from './model-health.js'
import type { SchedulerHooks } from './scheduling.js'
import { warmupBatchSizes } from './worker-protocol.js'

export interface GenerationSettings {
  zooDir: string
  executionProvider: ExecutionProviderMode
  workerThreads: number
  intraOpThreads: number
  warmupRuns: number
  /** DEFAULT_MODEL; must name a model of the zoo when set. */
  defaultModel?: string | undefined
  /** MAX_BATCH_SIZE: largest dynamic batch (1 = no batching). */
  maxBatchSize: number
  /** MAX_QUEUE_DELAY_US: how long a partial batch may wait for more requests, µs. */
  maxQueueDelayUs: number
  /** MAX_QUEUE_SIZE: rows a model's queue may hold before OVERLOADED. */
  maxQueueSize: number
  /** INFERENCE_TIMEOUT_MS: deadline of a request without a latency budget. */
  inferenceTimeoutMs: number
  /** PREPROCESS_THREADS: workers decoding and resampling images ahead of inference (default 1). */
  preprocessThreads?: number
  /** First retry of a model that failed at run time, ms (doubles up to a minute). */
  probeDelayMs?: number
  /** Batch, shedding and fault notifications (metrics). */
  hooks?: SchedulerHooks
  /** Test-only: let faults be injected into the workers (ServingZoo.injectFault). */
  faultInjection?: boolean
}

export const DEFAULT_PROBE_DELAY_MS = 5000

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
  runtime: GenerationRuntime
  health: ModelHealth
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

  const specs: RuntimeModelSpec[] = verified.map((m) => ({
    name: m.name,
    path: m.path,
    inputName: m.input.name,
    channels: m.input.channels,
    size: m.input.size,
    classes: m.labels.length,
    contract: m.input,
  }))
  const health = new ModelHealth(
    zoo.models,
    () => runtime,
    log,
    settings.probeDelayMs ?? DEFAULT_PROBE_DELAY_MS,
  )
  const hooks = settings.hooks ?? {}
  // The health monitor reaches the runtime through a closure: it is only called once the runtime runs.
  const runtime: GenerationRuntime = await GenerationRuntime.start({
    models: specs,
    provider: provider.provider,
    cpuFallback: settings.executionProvider === 'auto',
    threads: settings.workerThreads,
    intraOpThreads: settings.intraOpThreads,
    scheduling: {
      maxBatchSize: settings.maxBatchSize,
      maxQueueDelayMs: settings.maxQueueDelayUs / 1000,
      maxQueueSize: settings.maxQueueSize,
      inferenceTimeoutMs: settings.inferenceTimeoutMs,
    },
    hooks: {
      ...hooks,
      onModelFault: (model, message) => {
        health.modelFailed(model, message)
        hooks.onModelFault?.(model, message)
      },
      onWorkerCrash: (model, message) => {
        log.warn({ model, reason: message }, 'an inference worker died under a batch; its requests failed')
        hooks.onWorkerCrash?.(model, message)
      },
    },
    onWorkerExit: ({ stage, threadId, reason }) => {
      log.warn({ stage, threadId, reason }, `a ${stage} worker died and is being replaced`)
    },
    preprocessThreads: settings.preprocessThreads ?? 1,
    faultInjection: settings.faultInjection ?? false,
  })
  try {
    for (const model of verified) {
      const status = runtime.statuses.get(model.name)
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
      try {
        const profile = await measureProfile(runtime, model, settings.warmupRuns)
        model.latencyMs = profile.batch1
        runtime.setLatency(
          model.name,
          new ModelLatency(
            profile.runMs,
            status.preprocessMs ?? 0,
            runtime.contention(model.executionProvider),
          ),
        )
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
    return { id: nextId++, zoo, runtime, health, provider, defaultModel, loadedAt: new Date().toISOString() }
  } catch (error) {
    health.close()
    await runtime.close()
    throw error
  }
}

/**
 * Times `model` at every batch size it will run (powers of two up to its maximum): `warmupRuns`
 * runs at batch 1 (also the p50/p95 shown as latencyMs), and at larger sizes about as many rows
 * (⌈runs / size⌉, at least 2 runs), so a big model's start-up stays bounded. Median per size.
 */
export async function measureProfile(
  runtime: GenerationRuntime,
  model: ModelEntry,
  warmupRuns: number,
): Promise<{ batch1: ReturnType<typeof summarise>; runMs: Map<number, number> }> {
  const { channels, size } = model.input
  const sample = channels * size * size
  const maxBatch = runtime.maxBatch(model.name) ?? 1
  const input = syntheticInput(sample * maxBatch)
  const runMs = new Map<number, number>()
  let batch1: ReturnType<typeof summarise> | undefined
  for (const rows of warmupBatchSizes(maxBatch)) {
    const runs = rows === 1 ? warmupRuns : Math.max(2, Math.ceil(warmupRuns / rows))
    const samples: number[] = []
    for (let i = 0; i < runs; i++) {
      // A copy per run: the tensor may be moved to the worker.
      const tensor = input.slice(0, rows * sample)
      const result = await runtime.run(model.name, tensor, [rows, channels, size, size], { transfer: true })
      samples.push(result.inferenceMs)
    }
    if (rows === 1) batch1 = summarise(samples)
    runMs.set(rows, percentile(samples, 50))
  }
  if (!batch1) throw new Error('no batch-1 measurement')
  return { batch1, runMs }
}
