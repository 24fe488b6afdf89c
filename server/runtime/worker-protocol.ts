/**
 * Messages between the inference pool (main thread) and its workers. Kept in one module with no
 * runtime imports so both sides agree on the shapes without pulling onnxruntime into the main thread.
 */
import type { InputContract } from '../preprocess/pixels-to-tensor.js'
import type { PixelBuffer } from '../preprocess/resample.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'

/** One model a worker must hold a session for. */
export interface WorkerModelSpec {
  name: string
  path: string
  inputName: string
  channels: number
  size: number
  classes: number
}

export interface WorkerInit {
  models: WorkerModelSpec[]
  provider: ExecutionProviderName
  /** `auto` mode: a model whose CUDA session fails is retried on the CPU instead of failing. */
  cpuFallback: boolean
  intraOpThreads: number
}

export interface WorkerModelStatus {
  name: string
  ready: boolean
  reason?: string
  executionProvider?: ExecutionProviderName
  /** Set when this model fell back from CUDA to the CPU. */
  fallbackReason?: string
}

/** Posted once by every worker after it has created (and once run) all its sessions. */
export const INIT_REPORT = 'alphanet-zoo:worker-init' as const

export interface WorkerInitReport {
  kind: typeof INIT_REPORT
  threadId: number
  models: WorkerModelStatus[]
}

/** Run the model on a ready tensor. */
export interface TensorTask {
  kind: 'tensor'
  model: string
  input: Float32Array
  dims: number[]
  /** Epoch milliseconds (sub-ms) at submission, for the queue-time measurement. */
  submittedAt: number
}

/** Preprocess decoded RGB pixels per the model's input contract in the worker, then run it. */
export interface PixelsTask {
  kind: 'pixels'
  model: string
  pixels: PixelBuffer
  contract: InputContract
  submittedAt: number
}

export type RunTask = TensorTask | PixelsTask

export type RunResult =
  | {
      ok: true
      logits: Float32Array
      dims: number[]
      startedAt: number
      inferenceMs: number
      /** Pixels tasks only: time spent turning the pixels into the tensor. */
      preprocessMs?: number
    }
  | { ok: false; code: 'MODEL_NOT_READY' | 'INFERENCE_FAILED'; message: string }

/** Wall-clock epoch milliseconds with sub-millisecond resolution, comparable across threads. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now()
}

export function isInitReport(message: unknown): message is WorkerInitReport {
  return (
    typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === INIT_REPORT
  )
}
