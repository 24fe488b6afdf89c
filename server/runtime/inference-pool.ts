/**
 * A fixed-size piscina pool of inference workers for one zoo generation. Start-up resolves once
 * every worker has reported on every model; close() lets in-flight runs finish before the workers
 * (and their sessions) are torn down, which is what makes a zoo reload safe for running requests.
 */
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import type { InferenceResult, PixelInferenceResult } from '../decorators.js'
import { ApiError } from '../errors.js'
import type { InputContract } from '../preprocess/pixels-to-tensor.js'
import type { PixelBuffer } from '../preprocess/resample.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'
import {
  epochMs,
  isInitReport,
  type RunResult,
  type RunTask,
  type WorkerInit,
  type WorkerModelSpec,
  type WorkerModelStatus,
} from './worker-protocol.js'

export interface PoolOptions {
  models: WorkerModelSpec[]
  provider: ExecutionProviderName
  cpuFallback: boolean
  threads: number
  intraOpThreads: number
  /** A worker died after start-up (piscina replaces it); for logging. */
  onWorkerError?: (error: Error) => void
}

const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts')

/** worker.js once built; from source (tsx), a shim that registers tsx in the worker first. */
function workerFilename(): string {
  return fileURLToPath(
    new URL(RUNNING_FROM_SOURCE ? './worker-from-source.mjs' : './worker.js', import.meta.url),
  )
}

/** Combines the workers' reports: a model serves only if every worker holds a session for it. */
function mergeStatuses(
  models: WorkerModelSpec[],
  reports: WorkerModelStatus[][],
): Map<string, WorkerModelStatus> {
  const merged = new Map<string, WorkerModelStatus>()
  for (const spec of models) {
    const mine = reports.map((report) => report.find((s) => s.name === spec.name))
    const failed = mine.find((s) => !s?.ready)
    if (failed) {
      merged.set(spec.name, {
        name: spec.name,
        ready: false,
        reason: failed.reason ?? 'no worker reported it',
      })
      continue
    }
    const cpu = mine.find((s) => s?.executionProvider === 'cpu')
    const status: WorkerModelStatus = {
      name: spec.name,
      ready: true,
      executionProvider: cpu ? 'cpu' : 'cuda',
    }
    const fallback = mine.find((s) => s?.fallbackReason !== undefined)?.fallbackReason
    if (fallback !== undefined) status.fallbackReason = fallback
    merged.set(spec.name, status)
  }
  return merged
}

export class InferencePool {
  private inFlight = 0
  private drained: (() => void) | undefined
  private closing: Promise<void> | undefined

  private constructor(
    private readonly piscina: Piscina<RunTask, RunResult>,
    readonly statuses: ReadonlyMap<string, WorkerModelStatus>,
  ) {}

  /** Starts the workers and waits until each has loaded (or failed) every model. */
  static async start(options: PoolOptions): Promise<InferencePool> {
    const init: WorkerInit = {
      models: options.models,
      provider: options.provider,
      cpuFallback: options.cpuFallback,
      intraOpThreads: options.intraOpThreads,
    }
    const piscina = new Piscina<RunTask, RunResult>({
      filename: workerFilename(),
      minThreads: options.threads,
      maxThreads: options.threads,
      // Sessions are expensive to create: workers live as long as their zoo generation.
      idleTimeout: Number.POSITIVE_INFINITY,
      workerData: init,
    })
    const reports: WorkerModelStatus[][] = []
    let failStart: ((error: Error) => void) | undefined
    // Permanently subscribed: piscina emits 'error' when a worker dies, and an EventEmitter 'error'
    // without a listener would crash the process. During start-up it fails the start; afterwards
    // piscina replaces the worker and the affected task rejects on its own.
    piscina.on('error', (error: unknown) => {
      const failure = error instanceof Error ? error : new Error(String(error))
      if (failStart) failStart(failure)
      else options.onWorkerError?.(failure)
    })
    try {
      await new Promise<void>((resolve, reject) => {
        failStart = reject
        const onMessage = (message: unknown) => {
          if (!isInitReport(message)) return
          reports.push(message.models)
          if (reports.length >= options.threads) {
            piscina.off('message', onMessage)
            resolve()
          }
        }
        piscina.on('message', onMessage)
      })
    } catch (error) {
      await piscina.destroy()
      throw new Error(`inference workers failed to start: ${(error as Error).message}`, { cause: error })
    } finally {
      failStart = undefined
    }
    return new InferencePool(piscina, mergeStatuses(options.models, reports))
  }

  get threads(): number {
    return this.piscina.threads.length
  }

  async run(model: string, input: Float32Array, dims: readonly number[]): Promise<InferenceResult> {
    return this.submit({ kind: 'tensor', model, input, dims: [...dims], submittedAt: epochMs() })
  }

  /**
   * Preprocesses `pixels` per `contract` and runs the model, both in a worker. The pixel buffer is
   * transferred when it spans its whole ArrayBuffer (the caller must not reuse it), else copied.
   */
  async runPixels(
    model: string,
    pixels: PixelBuffer,
    contract: InputContract,
  ): Promise<PixelInferenceResult> {
    const { buffer, byteOffset, byteLength } = pixels.data
    const transferList = byteOffset === 0 && byteLength === buffer.byteLength ? [buffer] : []
    const result = await this.submit(
      { kind: 'pixels', model, pixels, contract, submittedAt: epochMs() },
      transferList as ArrayBuffer[],
    )
    return { ...result, preprocessMs: result.preprocessMs ?? 0 }
  }

  private async submit(
    task: RunTask,
    transferList: ArrayBuffer[] = [],
  ): Promise<InferenceResult & { preprocessMs?: number }> {
    if (this.closing) throw new ApiError('MODEL_NOT_READY', `model ${task.model} is being unloaded`)
    this.inFlight++
    try {
      let result: RunResult
      try {
        result = await this.piscina.run(task, { transferList })
      } catch (error) {
        // The worker died mid-task (piscina replaces it) or the task could not be posted.
        const why = error instanceof Error ? error.message : String(error)
        throw new ApiError(
          'INFERENCE_FAILED',
          `model ${task.model}: worker failed: ${why}`,
          {},
          { cause: error },
        )
      }
      if (!result.ok) throw new ApiError(result.code, result.message)
      const out: InferenceResult & { preprocessMs?: number } = {
        logits: result.logits,
        dims: result.dims,
        queueMs: Math.max(0, result.startedAt - task.submittedAt),
        inferenceMs: result.inferenceMs,
      }
      if (result.preprocessMs !== undefined) out.preprocessMs = result.preprocessMs
      return out
    } finally {
      this.inFlight--
      if (this.inFlight === 0) this.drained?.()
    }
  }

  /** Refuses new runs, waits for the in-flight ones, then terminates the workers. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.drained = resolve
        })
      }
      await this.piscina.destroy()
    })()
    return this.closing
  }
}
