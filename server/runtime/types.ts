/**
 * The runtime's public types, in one module with no runtime imports: what the routes (HTTP or
 * gRPC) and the Fastify decorations see of the served zoo and of a run.
 */
import type { CascadeManifest } from '../zoo/manifest-schema.js'
import type { ModelEntry } from '../zoo/model-entry.js'

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

/** One request's answer from the runtime. */
export interface InferenceResult {
  /** This request's rows of logits, [rows, classes] row-major. */
  logits: Float32Array
  dims: number[]
  /** From submission to the inference worker until it started the request's batch, ms. */
  queueMs: number
  /** session.run of the whole batch the request ran in, ms. */
  inferenceMs: number
  /** Rows of that batch (dynamic batching merges concurrent requests). */
  batchSize: number
  /** Decoding and preprocessing of the request's image, ms (0 for a tensor request). */
  preprocessMs: number
}

/** The read side of the served zoo. */
export interface ZooView {
  /**
   * Every model of the manifest, ready or not, in manifest order, ready ones with their live
   * figures — of the model named `liveFor` only, when given (a request that names its model needs
   * no prediction for the others).
   */
  list(options?: { liveFor?: string }): ModelEntry[]
  /** Their names alone (cheap: for labels and lookups that need no live figures). */
  names(): readonly string[]
  get(name: string): ModelEntry | undefined
  /** Ready models, without live figures (cheap). */
  readyModels(): ModelEntry[]
  /** True once a zoo is loaded, at least one model is warm, and the server is not closing. */
  isReady(): boolean
  /** DEFAULT_MODEL, else the manifest's defaultModel, else the most accurate ready model. */
  defaultModelName(): string
  /** The zoo's cascades as its manifest declares them (none: empty). */
  cascades(): readonly CascadeManifest[]
}

/** Runs a model of the served zoo in the worker threads. */
export interface ModelRunner {
  /**
   * Runs `modelName` on an NCHW float32 tensor of dims[0] rows, batched with concurrent requests.
   * Rejects with a coded error (MODEL_NOT_FOUND, MODEL_NOT_READY, OVERLOADED, DEADLINE_EXCEEDED,
   * INFERENCE_FAILED) — never blocks the event loop. With `transfer`, the tensor's buffer may be
   * moved to the worker: do not reuse it.
   */
  run(
    modelName: string,
    input: Float32Array,
    dims: readonly number[],
    options?: RunOptions & { transfer?: boolean },
  ): Promise<InferenceResult>
  /**
   * Decodes an encoded image, preprocesses it per the model's input contract and runs the model,
   * all in worker threads: the event loop only moves bytes. The bytes may be transferred: do not
   * reuse them. Adds the decoder's errors (IMAGE_DECODE_FAILED, IMAGE_TOO_LARGE,
   * UNSUPPORTED_MEDIA_TYPE) to run()'s.
   */
  runImage(
    modelName: string,
    image: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<InferenceResult>
  /**
   * Only the decoding and preprocessing of runImage(), in a worker: the tensor for `modelName`'s
   * input contract (a cascade runs its stages on it). Same errors as runImage()'s decoder.
   */
  prepareImage(
    modelName: string,
    image: Uint8Array,
    options: RunOptions & { maxPixels: number },
  ): Promise<PreparedImage>
}

/** An image decoded and preprocessed for a model's input contract. */
export interface PreparedImage {
  /** NCHW float32, one row. */
  tensor: Float32Array
  preprocessMs: number
}

export interface ReloadResult {
  generation: number
  zooDir: string
  previousZooDir: string
  models: { name: string; ready: boolean; reason?: string }[]
}

/** Swaps in a freshly loaded zoo (for an admin route or SIGHUP); the old one serves until then. */
export interface ZooReloader {
  /** Rejects with ReloadError, leaving the current zoo serving, if the new one cannot serve. */
  reload(zooDir?: string): Promise<ReloadResult>
}
