/**
 * The served zoo: answers `app.zoo` (what is loaded) and `app.inference` (run a model) from the
 * current generation, and reloads atomically — the new generation is built and warmed completely
 * beside the old one; only then does it replace it, and the old one is closed once its in-flight
 * runs have finished. A reload that fails leaves the old generation serving.
 */
import type { InferenceResult, InferenceRunner, PixelInferenceResult, ZooView } from '../decorators.js'
import { ApiError } from '../errors.js'
import type { PixelBuffer } from '../preprocess/resample.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import {
  startGeneration,
  type Generation,
  type GenerationLog,
  type GenerationSettings,
} from './zoo-generation.js'

export interface ReloadResult {
  generation: number
  zooDir: string
  previousZooDir: string
  models: { name: string; ready: boolean; reason?: string }[]
}

/** A reload was refused; the previous zoo keeps serving. */
export class ReloadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ReloadError'
  }
}

export class ServingZoo implements ZooView, InferenceRunner {
  private current: Generation | undefined
  private reloading: Promise<ReloadResult> | undefined
  private readonly retiring = new Set<Promise<void>>()
  private closing = false

  constructor(
    private readonly settings: GenerationSettings,
    private readonly log: GenerationLog & { error(obj: object, msg: string): void },
  ) {}

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

  list(): ModelEntry[] {
    return this.current?.zoo.models ?? []
  }

  get(name: string): ModelEntry | undefined {
    return this.current?.zoo.models.find((m) => m.name === name)
  }

  readyModels(): ModelEntry[] {
    return this.list().filter((m) => m.ready)
  }

  isReady(): boolean {
    return !this.closing && this.current !== undefined && this.readyModels().length > 0
  }

  defaultModelName(): string {
    if (!this.current) throw new ApiError('NOT_READY', 'no zoo is loaded yet')
    return this.current.defaultModel
  }

  /** The current generation and the ready model `modelName`, or the coded error why not. */
  private servingModel(modelName: string): { generation: Generation; model: ModelEntry } {
    // Not refused while shutting down: requests already in flight finish (the pool drains itself).
    const generation = this.current
    if (!generation) throw new ApiError('NOT_READY', 'no zoo is loaded yet')
    const model = generation.zoo.models.find((m) => m.name === modelName)
    if (!model) throw new ApiError('MODEL_NOT_FOUND', `no model named "${modelName}"`, { model: modelName })
    if (!model.ready) {
      throw new ApiError(
        'MODEL_NOT_READY',
        `model ${modelName} is not ready: ${model.reason ?? 'unknown reason'}`,
        {
          model: modelName,
          reason: model.reason ?? 'unknown reason',
        },
      )
    }
    return { generation, model }
  }

  async run(modelName: string, input: Float32Array, dims: readonly number[]): Promise<InferenceResult> {
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
    return generation.pool.run(modelName, input, dims)
  }

  async runPixels(modelName: string, pixels: PixelBuffer): Promise<PixelInferenceResult> {
    const { generation, model } = this.servingModel(modelName)
    const { width, height, channels, data } = pixels
    if (
      channels !== 3 ||
      !Number.isInteger(width) ||
      !Number.isInteger(height) ||
      width < 1 ||
      height < 1 ||
      data.length !== width * height * channels
    ) {
      // The decoder must deliver packed 8-bit RGB: anything else is a server fault.
      throw new ApiError(
        'INFERENCE_FAILED',
        `pixel buffer of ${data.length} bytes for ${width}×${height}×${channels} is not packed 8-bit RGB`,
      )
    }
    const { size, channels: modelChannels, mean, std, resizeShortSide, interpolation } = model.input
    const contract = { size, channels: modelChannels, mean, std, resizeShortSide, interpolation }
    return generation.pool.runPixels(modelName, pixels, contract)
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
      await next.pool.close()
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
    const closing = generation.pool.close().then(
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
    await this.current?.pool.close()
  }
}
