/**
 * The inference runtime of one zoo generation: its inference workers (worker-pool.ts), its
 * preprocessing workers (preprocess-pool.ts) and the scheduler that batches requests onto the
 * inference workers; runs are admitted here (stage `session`) and an image takes the idle path or
 * the preprocessing stage. Start-up resolves once every worker has reported on every model;
 * close() lets queued and running requests finish before the workers (and their sessions) are torn
 * down, which is what makes a zoo reload safe for running requests.
 */
import { admit } from '../admission/admit.js'
import { ApiError } from '../errors.js'
import type { InputContract } from '../preprocess/pixels-to-tensor.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'
import { Contention, ModelLatency } from './latency-model.js'
import { rebuildError } from './model-queue.js'
import { Scheduler } from './scheduler.js'
import type { LatencyPrediction, SchedulerHooks, SchedulerSettings } from './scheduling.js'
import type { WorkerExitInfo } from './thread-pool.js'
import { WorkerPool } from './worker-pool.js'
import { PreprocessPool } from './preprocess-pool.js'
import type { InferenceResult, PreparedImage, RunOptions } from './types.js'
import {
  type BatchItem,
  type ImageItem,
  type PrepareReply,
  type WorkerFault,
  type WorkerModelSpec,
  type WorkerModelStatus,
} from './worker-protocol.js'

/** A model to load, before the server's batch limit is applied. */
export type RuntimeModelSpec = Omit<WorkerModelSpec, 'maxBatch' | 'contract'> & { contract?: InputContract }

export interface RuntimeOptions {
  models: RuntimeModelSpec[]
  provider: ExecutionProviderName
  cpuFallback: boolean
  threads: number
  intraOpThreads: number
  /** Batching, queue and deadline settings (defaults: batches of up to 32, no delay, 256 rows, 30 s). */
  scheduling?: Partial<SchedulerSettings>
  hooks?: SchedulerHooks
  /** A worker died after start-up (it is being replaced); for logging. */
  onWorkerExit?: (info: WorkerExitInfo) => void
  /** Preprocessing worker threads (decode + resample ahead of inference); default 1. */
  preprocessThreads?: number
  /** Test-only: let armFault() reach the workers. */
  faultInjection?: boolean
}

export const DEFAULT_SCHEDULING: SchedulerSettings = {
  maxBatchSize: 32,
  maxQueueDelayMs: 0,
  maxQueueSize: 256,
  inferenceTimeoutMs: 30_000,
}

/**
 * Largest upload an idle inference worker decodes itself. Beyond it, decoding goes through the
 * preprocessing stage even on an idle server, so one huge photo cannot hold the inference worker
 * while requests arriving behind it wait.
 */
const DIRECT_IMAGE_BYTES = 512 * 1024

/** Input contract used for a tensor-only spec (no images): resizing is never needed. */
function tensorContract(spec: RuntimeModelSpec): InputContract {
  return {
    size: spec.size,
    channels: spec.channels === 1 ? 1 : 3,
    mean: Array.from({ length: spec.channels }, () => 0),
    std: Array.from({ length: spec.channels }, () => 1),
    resizeShortSide: spec.size,
    interpolation: 'bilinear',
  }
}

/** A provisional profile until start-up measures one: 1 ms per row. */
function provisionalLatency(status: WorkerModelStatus | undefined): ModelLatency {
  return new ModelLatency(new Map([[1, 1]]), status?.preprocessMs ?? 0)
}

export class GenerationRuntime {
  private closing: Promise<void> | undefined
  /** Image requests between admission and submission to the scheduler (close() waits for them). */
  private preparing = 0
  /** Per model: requests admitted and still in the preprocessing stage (count toward its queue). */
  private readonly preparingFor = new Map<string, number>()
  private readonly contentions = new Map<ExecutionProviderName, Contention>()
  private prepared: (() => void) | undefined

  private constructor(
    private readonly workers: WorkerPool,
    private readonly preprocessors: PreprocessPool,
    private readonly scheduler: Scheduler,
    private readonly contracts: ReadonlyMap<string, InputContract>,
    readonly statuses: ReadonlyMap<string, WorkerModelStatus>,
    readonly settings: SchedulerSettings,
  ) {}

  /** Starts the workers and waits until each has loaded (or failed) every model. */
  static async start(options: RuntimeOptions): Promise<GenerationRuntime> {
    const settings: SchedulerSettings = { ...DEFAULT_SCHEDULING, ...options.scheduling }
    const models: WorkerModelSpec[] = options.models.map((spec) => ({
      ...spec,
      contract: spec.contract ?? tensorContract(spec),
      maxBatch: settings.maxBatchSize,
    }))
    // The worker pool reaches the scheduler through a closure: replacements only report once it exists.
    const workers: WorkerPool = await WorkerPool.start({
      size: options.threads,
      init: {
        models,
        provider: options.provider,
        cpuFallback: options.cpuFallback,
        intraOpThreads: options.intraOpThreads,
        faultInjection: options.faultInjection ?? false,
      },
      ...(options.onWorkerExit && { onWorkerExit: options.onWorkerExit }),
      onCapacity: () => {
        scheduler.capacityChanged()
      },
    })
    const ready = models
      .map((spec) => ({ spec, status: workers.statuses.get(spec.name) }))
      .filter(({ status }) => status?.ready === true)
    const scheduler = new Scheduler(
      workers,
      ready.map(({ spec, status }) => ({
        name: spec.name,
        maxBatch: status?.maxBatch ?? 1,
        latency: provisionalLatency(status),
      })),
      settings,
      options.hooks,
    )
    const preprocessors = new PreprocessPool({
      size: options.preprocessThreads ?? 1,
      faultInjection: options.faultInjection ?? false,
      ...(options.onWorkerExit && { onWorkerExit: options.onWorkerExit }),
    })
    const contracts = new Map(models.map((spec) => [spec.name, spec.contract]))
    return new GenerationRuntime(workers, preprocessors, scheduler, contracts, workers.statuses, settings)
  }

  /** Workers serving now (fewer than configured while a crashed one is being replaced). */
  get threads(): number {
    return this.workers.size
  }

  /** Largest batch `model` runs, or undefined when it has no session. */
  maxBatch(model: string): number | undefined {
    return this.scheduler.maxBatch(model)
  }

  /** The run-time contention shared by the models on `provider`. */
  contention(provider: ExecutionProviderName): Contention {
    let shared = this.contentions.get(provider)
    if (!shared) {
      shared = new Contention()
      this.contentions.set(provider, shared)
    }
    return shared
  }

  /** Installs a measured latency model for `model`. */
  setLatency(model: string, latency: ModelLatency): void {
    this.scheduler.setLatency(model, latency)
  }

  latency(model: string): ModelLatency | undefined {
    return this.scheduler.latency(model)
  }

  /**
   * What a one-image request to `model` arriving now would take: its preprocessing (waiting for a
   * preprocessing worker, then decoding and resampling) overlaps with the queue ahead of it, so
   * the later of the two, then its batch's run and the hand-off.
   */
  predict(model: string, now?: number): LatencyPrediction | undefined {
    const queued = this.scheduler.predict(model, now)
    const latency = this.scheduler.latency(model)
    if (!queued || !latency) return undefined
    const workers = Math.max(1, this.preprocessors.size)
    const share = 1 + this.preprocessors.pending / workers
    const caution = latency.cautionFactor
    // Scheduler figures are queue wait + run + hand-off; the cautious one scales the first two.
    const run = queued.expectedLatencyMs - queued.queueWaitMs
    const expected = Math.max(queued.preprocessMs * share, queued.queueWaitMs) + run
    const cautious =
      Math.max(latency.cautiousPreprocessMs() * share, queued.queueWaitMs * caution) +
      queued.predictedLatencyMs -
      queued.queueWaitMs * caution
    return {
      ...queued,
      predictedLatencyMs: cautious,
      expectedLatencyMs: expected,
      idleLatencyMs: queued.idleLatencyMs + latency.idlePreprocessMs(),
    }
  }

  /**
   * Runs `model` on an NCHW tensor of `dims[0]` rows (batched with other requests). With
   * `transfer`, the tensor's buffer is moved to the worker when it spans it wholly (the caller
   * must not use the tensor again); otherwise it is copied.
   */
  run(
    model: string,
    input: Float32Array,
    dims: readonly number[],
    options: RunOptions & { transfer?: boolean } = {},
  ): Promise<InferenceResult> {
    const refused = admit({ stage: 'session', model, closing: this.closing !== undefined, loaded: true })
    if (refused) return Promise.reject(refused)
    const item: BatchItem = { kind: 'tensor', input, rows: dims[0] ?? 1 }
    return this.scheduler.submit(model, item, item.rows, {
      ...(options.deadline !== undefined && { deadline: options.deadline }),
      ...(options.signal && { signal: options.signal }),
      transfer: options.transfer ? wholeBuffer(input) : [],
    })
  }

  /**
   * Decodes and preprocesses an encoded image, then runs it. Two routes, one answer: when an
   * inference worker is idle and nothing waits (an idle server), a small image goes straight to
   * it, which decodes and runs it in one hand-off; otherwise it goes through the preprocessing
   * stage first, so decoding overlaps with the batches running ahead of it.
   */
  async runImage(
    model: string,
    bytes: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<InferenceResult> {
    const { deadline: requested, signal, maxPixels } = options
    const contract = this.contracts.get(model)
    const latency = this.scheduler.latency(model)
    const loaded = contract !== undefined && latency !== undefined
    const unserved = admit({ stage: 'session', model, closing: this.closing !== undefined, loaded })
    if (unserved || !contract || !latency) throw unserved ?? new Error('unreachable')
    // Refused before any work when the model's queue — counting the requests still being
    // preprocessed for it — is full, or when the deadline is out of reach even after the
    // preprocessing backlog ahead of this image.
    const now = performance.now()
    const deadline = this.scheduler.deadline(requested, now)
    const backlog = this.preprocessors.pending / Math.max(1, this.preprocessors.size)
    const preprocessing = latency.preprocessMs() * (1 + backlog)
    const pending = this.preparingFor.get(model) ?? 0
    const refusal = this.scheduler.refusal(model, 1, deadline, now, preprocessing, pending)
    if (refusal) throw refusal
    const item: ImageItem = { kind: 'image', bytes, maxPixels }
    if (
      bytes.byteLength <= DIRECT_IMAGE_BYTES &&
      this.preprocessors.pending === 0 &&
      this.scheduler.dispatchesAtOnce
    ) {
      return this.scheduler.submit(model, { ...item, deadline: performance.timeOrigin + deadline }, 1, {
        deadline,
        transfer: wholeBuffer(bytes),
        ...(signal && { signal }),
      })
    }
    return this.prepareAndRun(model, contract, item, deadline, pending, signal)
  }

  /**
   * Decodes and preprocesses an image for `model`'s input contract in a preprocessing worker and
   * returns the tensor without running anything: a cascade feeds the one tensor to every stage
   * it runs (their input contracts are identical, docs/zoo-contract.md).
   */
  async prepareImage(
    model: string,
    bytes: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<PreparedImage> {
    const contract = this.contracts.get(model)
    const unserved = admit({
      stage: 'session',
      model,
      closing: this.closing !== undefined,
      loaded: !!contract,
    })
    if (unserved || !contract) throw unserved ?? new Error('unreachable')
    const deadline = this.scheduler.deadline(options.deadline, performance.now())
    let prepared: PrepareReply
    try {
      prepared = await this.preprocessors.prepare(
        contract,
        { kind: 'image', bytes, maxPixels: options.maxPixels },
        performance.timeOrigin + deadline,
        wholeBuffer(bytes),
        options.signal,
      )
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error)
      throw new ApiError('INFERENCE_FAILED', `model ${model}: ${why}`, {}, { cause: error })
    }
    if (!prepared.ok) throw rebuildError(prepared.error)
    this.scheduler.observePreprocess(model, prepared.preprocessMs)
    return { tensor: prepared.tensor, preprocessMs: prepared.preprocessMs }
  }

  private async prepareAndRun(
    model: string,
    contract: InputContract,
    item: ImageItem,
    deadline: number,
    pending: number,
    signal: AbortSignal | undefined,
  ): Promise<InferenceResult> {
    let prepared: PrepareReply
    let running: Promise<InferenceResult>
    this.preparing++
    this.preparingFor.set(model, pending + 1)
    try {
      try {
        prepared = await this.preprocessors.prepare(
          contract,
          item,
          performance.timeOrigin + deadline,
          wholeBuffer(item.bytes),
          signal,
        )
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error)
        throw new ApiError('INFERENCE_FAILED', `model ${model}: ${why}`, {}, { cause: error })
      }
      if (!prepared.ok) throw rebuildError(prepared.error)
      this.scheduler.observePreprocess(model, prepared.preprocessMs)
      const { tensor } = prepared
      running = this.scheduler.submit(model, { kind: 'tensor', input: tensor, rows: 1 }, 1, {
        deadline,
        transfer: wholeBuffer(tensor),
        ...(signal && { signal }),
      })
    } finally {
      this.preparingFor.set(model, (this.preparingFor.get(model) ?? 1) - 1)
      if (--this.preparing === 0) this.prepared?.()
    }
    return { ...(await running), preprocessMs: prepared.preprocessMs }
  }

  /** Fails every queued request of `model` with `error` (the model just broke). */
  rejectQueued(model: string, error: ApiError): void {
    this.scheduler.rejectQueued(model, error)
  }

  /** Test-only (needs faultInjection): the next `count` batches carry `fault`. */
  armFault(fault: WorkerFault, model?: string, count = 1): void {
    this.scheduler.faults.arm(fault, model, count)
  }

  disarmFaults(): void {
    this.scheduler.faults.disarm()
  }

  /** Refuses new runs, answers every queued and running one, then terminates the workers. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // New requests are refused from here on (the flag); images already being prepared still go
      // on to the scheduler, so wait for them before draining it.
      if (this.preparing > 0) {
        await new Promise<void>((resolve) => {
          this.prepared = resolve
        })
      }
      await this.preprocessors.close()
      await this.scheduler.drain()
      await this.workers.close()
    })()
    return this.closing
  }

  /** Test-only (needs faultInjection): a preprocessing worker dies with the tasks it holds. */
  crashPreprocessor(): void {
    this.preprocessors.crashOne()
  }
}

/**
 * The buffer of `view` when the view spans all of it (so it can be moved), else nothing: a view
 * into a shared or pooled buffer (small Node Buffers share an 8 KiB pool) must be copied.
 */
function wholeBuffer(view: ArrayBufferView): ArrayBuffer[] {
  const { buffer, byteOffset, byteLength } = view
  if (!(buffer instanceof ArrayBuffer) || byteOffset !== 0 || byteLength !== buffer.byteLength) return []
  return [buffer]
}
