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
  /** Every model of the manifest, ready or not, in manifest order. */
  list(): ModelEntry[]
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
  /** Time inside session.run in the worker. */
  inferenceMs: number
}

export interface PixelInferenceResult extends InferenceResult {
  /** Time the worker spent turning the pixels into the model's input tensor. */
  preprocessMs: number
}

export interface InferenceRunner {
  /**
   * Runs `modelName` on an NCHW float32 tensor in a worker thread. Rejects with a coded error
   * (MODEL_NOT_FOUND, MODEL_NOT_READY, INFERENCE_FAILED) — never blocks the event loop.
   */
  run(modelName: string, input: Float32Array, dims: readonly number[]): Promise<InferenceResult>
  /**
   * Preprocesses decoded 8-bit RGB pixels per the model's own input contract and runs the model,
   * both in a worker thread (resampling a large photo is too slow for the event loop). The pixel
   * buffer may be transferred to the worker: do not reuse it. Same errors as run().
   */
  runPixels(modelName: string, pixels: PixelBuffer): Promise<PixelInferenceResult>
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
