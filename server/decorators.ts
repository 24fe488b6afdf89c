/**
 * What app.ts decorates the Fastify instance with, typed once for every route.
 * `app.zoo` is the read side of the currently served zoo; `app.inference` runs a model of it in the
 * worker pool. Both always refer to the same zoo generation, which `reload` swaps atomically.
 */
import type { AppConfig } from './config.js'
import type { PixelBuffer } from './preprocess/resample.js'
import type { ReloadResult } from './runtime/serving-zoo.js'
import type { ModelEntry } from './zoo/model-entry.js'

export interface ZooView {
  /**
   * Every model of the manifest, ready or not, in manifest order, ready ones with their live
   * figures — of the model named `liveFor` only, when given (a request that names its model needs
   * no prediction for the others; computing them all was a sixth of the event loop's time per
   * request at saturation).
   */
  list(options?: { liveFor?: string }): ModelEntry[]
  /** Their names alone (cheap: for labels and lookups that need no live figures). */
  names(): readonly string[]
  get(name: string): ModelEntry | undefined
  readyModels(): ModelEntry[]
  /** True once a zoo is loaded, at least one model is warm, and the server is not closing. */
  isReady(): boolean
  /** DEFAULT_MODEL, else the manifest's defaultModel, else the most accurate ready model. */
  defaultModelName(): string
}

export interface InferenceResult {
  /** Raw output of the model: [batch, classes] logits. */
  logits: Float32Array
  dims: number[]
  /** Time the task waited for a free worker. */
  queueMs: number
  /** Time inside session.run in the worker (of the whole batch the request ran in). */
  inferenceMs: number
  /** Rows of the batch the request ran in (dynamic batching merges concurrent requests). */
  batchSize: number
}

export interface RunOptions {
  /**
   * Absolute deadline on the main thread's performance.now() clock, ms: the request is refused
   * with DEADLINE_EXCEEDED (before compute) once it can no longer finish by then. Default (and
   * cap): INFERENCE_TIMEOUT_MS after submission.
   */
  deadline?: number
  /**
   * Aborted when the client has gone (see clientGoneSignal): work still queued for the request is
   * dropped with CLIENT_CLOSED instead of being done for no one.
   */
  signal?: AbortSignal
}

export interface PixelInferenceResult extends InferenceResult {
  /** Time the worker spent decoding and preprocessing the images of the batch. */
  preprocessMs: number
}

export interface InferenceRunner {
  /**
   * Runs `modelName` on an NCHW float32 tensor of dims[0] rows in a worker thread, batched with
   * concurrent requests. Rejects with a coded error (MODEL_NOT_FOUND, MODEL_NOT_READY,
   * OVERLOADED, DEADLINE_EXCEEDED, INFERENCE_FAILED) — never blocks the event loop. With
   * `transfer`, the tensor's buffer may be moved to the worker: do not reuse it.
   */
  run(
    modelName: string,
    input: Float32Array,
    dims: readonly number[],
    options?: RunOptions & { transfer?: boolean },
  ): Promise<InferenceResult>
  /**
   * Preprocesses decoded 8-bit RGB pixels per the model's own input contract and runs the model,
   * both in a worker thread (resampling a large photo is too slow for the event loop). The pixel
   * buffer may be transferred to the worker: do not reuse it. Same errors as run().
   */
  runPixels(modelName: string, pixels: PixelBuffer, options?: RunOptions): Promise<PixelInferenceResult>
  /**
   * Decodes an encoded image (sharp), preprocesses it and runs the model, all in a worker thread:
   * the event loop only moves bytes. The bytes may be transferred: do not reuse them. Adds the
   * decoder's errors (IMAGE_DECODE_FAILED, IMAGE_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE) to run()'s.
   */
  runImage(
    modelName: string,
    image: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<PixelInferenceResult>
}

/** Swaps in a freshly loaded zoo (for an admin route or SIGHUP); the old one serves until then. */
export interface ZooReloader {
  /** Rejects with ReloadError, leaving the current zoo serving, if the new one cannot serve. */
  reload(zooDir?: string): Promise<ReloadResult>
}

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig
    zoo: ZooView
    inference: InferenceRunner
    zooManager: ZooReloader
  }
}
