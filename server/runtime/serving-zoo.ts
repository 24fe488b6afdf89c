/**
 * The served zoo: answers `app.zoo` (what is loaded) and `app.inference` (run a model) from the
 * current generation, and reloads atomically — the new generation is built and warmed completely
 * beside the old one; only then does it replace it, and the old one is closed once its in-flight
 * runs have finished. A reload that fails leaves the old generation serving.
 */
import { admit } from '../admission/admit.js'
import { ApiError } from '../errors.js'
import type { LiveFigures, ModelEntry } from '../zoo/model-entry.js'
import type { SchedulerHooks } from './scheduling.js'
import type { CascadeManifest } from '../zoo/manifest-schema.js'
import type {
  InferenceResult,
  ModelRunner,
  PreparedImage,
  ReloadResult,
  RunOptions,
  ZooReloader,
  ZooView,
} from './types.js'
import type { WorkerFault } from './worker-protocol.js'
import {
  startGeneration,
  type Generation,
  type GenerationLog,
  type GenerationSettings,
} from './zoo-generation.js'

/** A reload was refused; the previous zoo keeps serving. */
export class ReloadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ReloadError'
  }
}

export class ServingZoo implements ZooView, ModelRunner, ZooReloader {
  private current: Generation | undefined
  private reloading: Promise<ReloadResult> | undefined
  private readonly retiring = new Set<Promise<void>>()
  private closing = false
  private observer: SchedulerHooks = {}
  private readonly settings: GenerationSettings

  constructor(
    settings: GenerationSettings,
    private readonly log: GenerationLog & { error(obj: object, msg: string): void },
  ) {
    // Every generation reports to whichever observer is installed now (see observe()).
    const forward: SchedulerHooks = {
      onBatch: (model, observation) => this.observer.onBatch?.(model, observation),
      onShed: (model, reason) => this.observer.onShed?.(model, reason),
      onModelFault: (model, message) => this.observer.onModelFault?.(model, message),
      onWorkerCrash: (model, message) => this.observer.onWorkerCrash?.(model, message),
    }
    this.settings = { ...settings, hooks: forward }
  }

  /** Installs the receiver of batch, load-shedding and fault notifications (metrics). */
  observe(observer: SchedulerHooks): void {
    this.observer = observer
  }

  /** Loads, warms and starts serving `settings.zooDir`; throws if no model can serve. */
  async start(): Promise<void> {
    if (this.current) throw new Error('the zoo is already started')
    this.current = await startGeneration(this.settings, this.log)
    this.logGeneration(this.current)
  }

  private logGeneration(generation: Generation): void {
    const { zoo } = generation
    this.log.info(
      {
        zoo: zoo.manifest.zoo.name,
        zooDir: zoo.dir,
        generation: generation.id,
        executionProvider: generation.provider.provider,
        defaultModel: generation.defaultModel,
        models: zoo.models.map((m) => ({
          name: m.name,
          ready: m.ready,
          ...(m.reason !== undefined && { reason: m.reason }),
          ...(m.executionProvider && { executionProvider: m.executionProvider }),
          ...(m.latencyMs && { p50Ms: m.latencyMs.p50, p95Ms: m.latencyMs.p95 }),
        })),
      },
      `zoo ${zoo.manifest.zoo.name} serving ${zoo.models.filter((m) => m.ready).length}/${zoo.models.length} models`,
    )
  }

  /** The generation now serving (undefined before start()). */
  get generation(): Generation | undefined {
    return this.current
  }

  /** The names of the current zoo's models, in manifest order (cheap: no live figures). */
  names(): readonly string[] {
    return this.current?.zoo.models.map((m) => m.name) ?? []
  }

  /**
   * Every model, ready ones with their live figures as of now (a snapshot: read it once per
   * decision, so every model of one selection is judged at the same moment). Not cheap (a
   * prediction per model): what needs only the names uses names().
   */
  list(options: { liveFor?: string } = {}): ModelEntry[] {
    const generation = this.current
    if (!generation) return []
    const now = performance.now()
    const { liveFor } = options
    return generation.zoo.models.map((model) =>
      liveFor === undefined || model.name === liveFor ? this.withLive(generation, model, now) : model,
    )
  }

  get(name: string): ModelEntry | undefined {
    const generation = this.current
    const model = generation?.zoo.models.find((m) => m.name === name)
    return generation && model ? this.withLive(generation, model, performance.now()) : model
  }

  private withLive(generation: Generation, model: ModelEntry, now: number): ModelEntry {
    if (!model.ready) return model
    const live = liveFigures(generation, model.name, now)
    // Object.assign, not `{ ...model, live }`: V8 clones a spread fast only when nothing is added
    // after it, and a selection under a budget makes this copy for every model.
    return live ? Object.assign({}, model, { live }) : model
  }

  /** Ready models without live figures (cheap: a readiness probe needs no prediction). */
  readyModels(): ModelEntry[] {
    return this.current?.zoo.models.filter((m) => m.ready) ?? []
  }

  isReady(): boolean {
    return !this.closing && this.current?.zoo.models.some((m) => m.ready) === true
  }

  defaultModelName(): string {
    const generation = this.current
    if (!generation) throw admit({ stage: 'lookup', zooLoaded: false }) ?? new Error('unreachable')
    return generation.defaultModel
  }

  /** The current generation and the ready model `modelName`, or admission's refusal (`lookup`). */
  private servingModel(modelName: string): { generation: Generation; model: ModelEntry } {
    // Not refused while shutting down: requests already in flight finish (the runtime drains itself).
    const generation = this.current
    const model = generation?.zoo.models.find((m) => m.name === modelName)
    const refused = admit({ stage: 'lookup', zooLoaded: !!generation, model: modelName, entry: model })
    if (refused || !generation || !model) throw refused ?? new Error('unreachable')
    return { generation, model }
  }

  async run(
    modelName: string,
    input: Float32Array,
    dims: readonly number[],
    options: RunOptions & { transfer?: boolean } = {},
  ): Promise<InferenceResult> {
    const { generation, model } = this.servingModel(modelName)
    const { channels, size } = model.input
    const expected = channels * size * size
    if (
      dims.length !== 4 ||
      !Number.isInteger(dims[0]) ||
      (dims[0] ?? 0) < 1 ||
      dims[1] !== channels ||
      dims[2] !== size ||
      dims[3] !== size ||
      input.length !== (dims[0] ?? 0) * expected
    ) {
      // Preprocessing produced the wrong tensor: a server fault, not the client's.
      throw new ApiError(
        'INFERENCE_FAILED',
        `tensor of ${input.length} values with dims [${dims.join(', ')}] does not fit model ${modelName} ` +
          `(expects [N, ${channels}, ${size}, ${size}])`,
      )
    }
    return generation.runtime.run(modelName, input, dims, options)
  }

  async runImage(
    modelName: string,
    image: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<InferenceResult> {
    const { generation } = this.servingModel(modelName)
    return generation.runtime.runImage(modelName, image, options)
  }

  async prepareImage(
    modelName: string,
    image: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<PreparedImage> {
    const { generation } = this.servingModel(modelName)
    return generation.runtime.prepareImage(modelName, image, options)
  }

  /** The current zoo's cascades as the manifest declares them (docs/zoo-contract.md, "Cascades"). */
  cascades(): readonly CascadeManifest[] {
    return this.current?.zoo.manifest.cascades ?? []
  }

  /**
   * Test-only: the next `count` batches (of `model`, or of any model) make their worker fail as
   * `fault` says; `preprocess-crash` kills a preprocessing worker now. Refused unless the zoo was
   * started with `faultInjection`.
   */
  injectFault(fault: WorkerFault | 'preprocess-crash', model?: string, count = 1): void {
    if (!this.settings.faultInjection) throw new Error('fault injection is not enabled for this zoo')
    if (!this.current) throw new Error('no zoo is loaded')
    if (fault === 'preprocess-crash') this.current.runtime.crashPreprocessor()
    else this.current.runtime.armFault(fault, model, count)
  }

  /** Test-only: cancels faults armed by injectFault() that have not fired yet. */
  clearFaults(): void {
    this.current?.runtime.disarmFaults()
  }

  /**
   * Builds a generation from `zooDir` (default: the one being served) and swaps it in. Rejects with
   * ReloadError — the current zoo untouched — if the new zoo is invalid or no model of it loads,
   * or while another reload is running.
   */
  reload(zooDir: string = this.settings.zooDir): Promise<ReloadResult> {
    if (this.closing) return Promise.reject(new ReloadError('the server is shutting down'))
    if (this.reloading) return Promise.reject(new ReloadError('a reload is already in progress'))
    const reloading = this.doReload(zooDir).finally(() => {
      this.reloading = undefined
    })
    this.reloading = reloading
    return reloading
  }

  private async doReload(zooDir: string): Promise<ReloadResult> {
    const previous = this.current
    this.log.info({ zooDir }, 'reloading zoo')
    let next: Generation
    try {
      next = await startGeneration({ ...this.settings, zooDir }, this.log, previous?.provider)
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error)
      this.log.error({ zooDir, err: error }, `zoo reload rejected, the previous zoo keeps serving: ${why}`)
      throw new ReloadError(`zoo reload rejected, the previous zoo keeps serving: ${why}`, { cause: error })
    }
    if (this.closing) {
      await next.runtime.close()
      throw new ReloadError('the server is shutting down')
    }
    this.current = next
    this.logGeneration(next)
    if (previous) this.retire(previous)
    return {
      generation: next.id,
      zooDir: next.zoo.dir,
      previousZooDir: previous?.zoo.dir ?? '',
      models: next.zoo.models.map((m) => ({
        name: m.name,
        ready: m.ready,
        ...(m.reason !== undefined && { reason: m.reason }),
      })),
    }
  }

  /** Closes a replaced generation once its in-flight runs are done, without delaying the caller. */
  private retire(generation: Generation): void {
    generation.health.close()
    const closing = generation.runtime.close().then(
      () => {
        this.log.info({ generation: generation.id }, 'previous zoo generation closed')
      },
      (error: unknown) => {
        this.log.error(
          { generation: generation.id, err: error },
          'closing the previous zoo generation failed',
        )
      },
    )
    this.retiring.add(closing)
    void closing.finally(() => this.retiring.delete(closing))
  }

  /** Marks the zoo not ready (readiness probes fail) without refusing in-flight work. */
  beginShutdown(): void {
    this.closing = true
  }

  /** Waits for in-flight runs and any running reload, then stops every worker. */
  async close(): Promise<void> {
    this.closing = true
    if (this.reloading) await this.reloading.catch(() => undefined)
    await Promise.all([...this.retiring])
    this.current?.health.close()
    await this.current?.runtime.close()
  }
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000

/** The live figures of a ready model of `generation`, rounded to microseconds. */
export function liveFigures(generation: Generation, model: string, now: number): LiveFigures | undefined {
  const { runtime } = generation
  const prediction = runtime.predict(model, now)
  const latency = runtime.latency(model)
  if (!prediction || !latency) return undefined
  return {
    predictedLatencyMs: round3(prediction.predictedLatencyMs),
    expectedLatencyMs: round3(prediction.expectedLatencyMs),
    arrivalRatePerS: round3(prediction.arrivalRatePerS),
    utilization: round3(prediction.utilization),
    idleLatencyMs: round3(prediction.idleLatencyMs),
    queueWaitMs: round3(prediction.queueWaitMs),
    batchSize: prediction.batchSize,
    serviceMs: round3(prediction.serviceMs),
    preprocessMs: round3(prediction.preprocessMs),
    queued: prediction.queued,
    inFlight: prediction.inFlight,
    maxBatch: runtime.maxBatch(model) ?? 1,
    contention: round3(latency.contentionFactor),
    batches: latency.table().map((t) => ({ batchSize: t.batchSize, ms: round3(t.ms) })),
    observedBatches: latency.observedBatches,
  }
}
