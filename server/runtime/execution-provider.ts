/**
 * Decides once per zoo load which execution provider the workers use. onnxruntime-node has no
 * "is CUDA usable" query (listSupportedBackends() lists cuda even without its libraries) and a
 * ['cuda', 'cpu'] provider list throws instead of falling back, so the only reliable test is to
 * create a CUDA session. Doing that here, once, gives one clear message — instead of one failure
 * per model per worker — and lets `cuda` mode stop the start-up before any worker exists.
 */
import type { ExecutionProviderMode } from '../config.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'
import { diagnoseCudaFailure, type CudaDiagnosis } from './cuda-diagnostics.js'
import { createSession } from './session.js'

/** EXECUTION_PROVIDER=cuda and CUDA cannot be used: the server must not start. */
export class CudaUnavailableError extends Error {
  constructor(readonly diagnosis: CudaDiagnosis) {
    super(`EXECUTION_PROVIDER=cuda: ${diagnosis.message}`)
    this.name = 'CudaUnavailableError'
  }
}

export interface ProviderDecision {
  provider: ExecutionProviderName
  /** Set in auto mode when CUDA was tried and is unavailable: log it once. */
  warning?: string
}

/** Whether a session-creation error is about CUDA itself rather than the model file. */
export function isCudaProviderError(message: string): boolean {
  return /cuda|cudnn|cublas|providers_shared|gpu/i.test(message)
}

export type SessionProbe = (path: string) => Promise<{ release(): Promise<void> }>

const cudaProbe: SessionProbe = (path) => createSession(path, { provider: 'cuda', intraOpThreads: 1 })

/**
 * `cpu` → CPU. `auto`/`cuda` → try a CUDA session on the first candidate model that loads at all
 * (a corrupt model says nothing about CUDA, so the next one is tried).
 * @param candidates ONNX files that passed their checksum, in manifest order.
 */
export async function resolveExecutionProvider(
  mode: ExecutionProviderMode,
  candidates: readonly string[],
  probe: SessionProbe = cudaProbe,
  diagnose: (ortMessage: string) => CudaDiagnosis = diagnoseCudaFailure,
): Promise<ProviderDecision> {
  if (mode === 'cpu') return { provider: 'cpu' }
  for (const path of candidates) {
    try {
      const session = await probe(path)
      await session.release()
      return { provider: 'cuda' }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      if (!isCudaProviderError(message)) continue
      const diagnosis = diagnose(message)
      if (mode === 'cuda') throw new CudaUnavailableError(diagnosis)
      return { provider: 'cpu', warning: `${diagnosis.message} — falling back to the CPU execution provider` }
    }
  }
  // No candidate model loads at all; the workers will report why, per model.
  return { provider: mode === 'cuda' ? 'cuda' : 'cpu' }
}
