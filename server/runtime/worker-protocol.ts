/**
 * Messages between the worker pool (main thread) and its inference workers. Kept in one module
 * with no runtime imports so both sides agree on the shapes without pulling onnxruntime or sharp
 * into the main thread.
 *
 * Inference workers exchange batches: the main thread posts a `BatchTask` (one model, one or more
 * request tensors), the worker answers with one `BatchReply` carrying the logits of every item in
 * one buffer that is transferred, not copied. Preprocessing workers exchange single images: a
 * `PrepareTask` (image bytes, moved) answered by a `PrepareReply` (the tensor, moved). Input
 * buffers travel as transferables whenever the caller gives them up.
 */
import type { InputContract } from '../preprocess/pixels-to-tensor.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'

/** One model a worker must hold a session for. */
export interface WorkerModelSpec {
  name: string
  path: string
  inputName: string
  channels: number
  size: number
  classes: number
  /** How images and pixel buffers become this model's input tensor. */
  contract: InputContract
  /** Largest batch the server will run (MAX_BATCH_SIZE); warm-up covers the powers of two up to it. */
  maxBatch: number
}

export interface WorkerInit {
  models: WorkerModelSpec[]
  provider: ExecutionProviderName
  /** `auto` mode: a model whose CUDA session fails is retried on the CPU instead of failing. */
  cpuFallback: boolean
  intraOpThreads: number
  /** Test-only: honour `BatchTask.fault`. Off in every real deployment. */
  faultInjection: boolean
}

export interface WorkerModelStatus {
  name: string
  ready: boolean
  reason?: string
  executionProvider?: ExecutionProviderName
  /** Set when this model fell back from CUDA to the CPU. */
  fallbackReason?: string
  /** Largest batch the graph accepts (1 when its batch dimension is fixed to 1). */
  maxBatch?: number
  /** Intra-op threads a lone request runs on: INTRA_OP_THREADS, or 1 where that answers sooner. */
  intraOpThreads?: number
  /** Time pixelsToTensor took on a synthetic image at start-up: the seed of the preprocessing estimate. */
  preprocessMs?: number
}

/** Posted once by every worker after it has created (and warmed) all its sessions. */
export const INIT_REPORT = 'alphanet-zoo:worker-init' as const

export interface WorkerInitReport {
  kind: typeof INIT_REPORT
  threadId: number
  models: WorkerModelStatus[]
}

/** A ready NCHW tensor of `rows` samples. */
export interface TensorItem {
  kind: 'tensor'
  input: Float32Array
  rows: number
}

/** Encoded image bytes, decoded (sharp) and preprocessed in a worker. */
export interface ImageItem {
  kind: 'image'
  bytes: Uint8Array
  maxPixels: number
}

/**
 * What a batch is made of: tensors prepared by the preprocessing stage, or — when the inference
 * worker is idle — an encoded image it decodes and preprocesses itself (one hand-off fewer).
 */
export type BatchItem = TensorItem | (ImageItem & { deadline: number })

/**
 * Test-only faults (honoured only when WorkerInit.faultInjection is set):
 * - `crash`: the worker throws asynchronously, outside any task (an uncaught exception kills it);
 * - `exit`: the worker calls process.exit(70) mid-task;
 * - `model-error`: session.run is called with a tensor of the wrong shape, so onnxruntime itself
 *   fails the run, exactly like a model that breaks at run time.
 */
export type WorkerFault = 'crash' | 'exit' | 'model-error'

export const BATCH_TASK = 'alphanet-zoo:batch' as const

export interface BatchTask {
  kind: typeof BATCH_TASK
  id: number
  model: string
  items: BatchItem[]
  fault?: WorkerFault
}

/** A coded failure of one item (e.g. an undecodable image); the rest of the batch still runs. */
export interface ItemError {
  code: string
  message: string
  details?: Record<string, unknown>
}

export type PlacedItem = { offset: number; rows: number; preprocessMs?: number } | { error: ItemError }

export type BatchReply =
  | {
      id: number
      ok: true
      /** Logits of every item that ran, row after row: [Σ rows, classes]. */
      logits: Float32Array
      classes: number
      /**
       * Per item: its first row in `logits` (and, for an image, the time its decoding and
       * preprocessing took), or the error that kept it out of the batch.
       */
      items: PlacedItem[]
      /** Rows that went through session.run together. */
      batchRows: number
      /** Epoch ms (sub-ms) when the worker started the task. */
      startedAt: number
      /** session.run of the whole batch, ms. */
      inferenceMs: number
    }
  | {
      id: number
      ok: false
      code: 'MODEL_NOT_READY' | 'INFERENCE_FAILED'
      message: string
      /** True when session.run itself failed: the model is broken, not one input. */
      modelFault: boolean
      startedAt: number
    }

export const PREPARE_TASK = 'alphanet-zoo:prepare' as const

/** Several prepare tasks in one message (message-batch.ts); the worker answers PrepareReply[]. */
export const PREPARE_BATCH = 'alphanet-zoo:prepare-batch' as const

export interface PrepareBatch {
  kind: typeof PREPARE_BATCH
  tasks: PrepareTask[]
}

/** Drop a prepare task whose client has gone, if it has not been decoded yet. */
export const CANCEL_TASK = 'alphanet-zoo:cancel' as const

export interface CancelTask {
  kind: typeof CANCEL_TASK
  id: number
}

/** Test-only message to a preprocessing worker started with fault injection: die. */
export const CRASH_TASK = 'alphanet-zoo:crash' as const

/** One image to turn into a model's input tensor, in a preprocessing worker. */
export interface PrepareTask {
  kind: typeof PREPARE_TASK
  id: number
  contract: InputContract
  item: ImageItem
  /** The request's deadline, epoch ms: past it, the image is dropped (DEADLINE_EXCEEDED) unread. */
  deadline: number
}

export type PrepareReply =
  | { id: number; ok: true; tensor: Float32Array; preprocessMs: number }
  | { id: number; ok: false; error: ItemError; preprocessMs: number }

/** Wall-clock epoch milliseconds with sub-millisecond resolution, comparable across threads. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now()
}

export function isInitReport(message: unknown): message is WorkerInitReport {
  return (
    typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === INIT_REPORT
  )
}

export function isBatchTask(message: unknown): message is BatchTask {
  return (
    typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === BATCH_TASK
  )
}

/** Powers of two from 1 up to and including `max` (and `max` itself when it is not one). */
export function warmupBatchSizes(max: number): number[] {
  const sizes: number[] = []
  for (let b = 1; b <= max; b *= 2) sizes.push(b)
  if (sizes[sizes.length - 1] !== max) sizes.push(max)
  return sizes
}
