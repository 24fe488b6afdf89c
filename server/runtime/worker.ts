/**
 * Inference worker (piscina). Each worker holds one session per model of its zoo generation, so
 * any worker can serve any request and onnxruntime's synchronous run() never blocks the event loop
 * of the HTTP thread. Sessions are created and run once at start-up; the result per model goes
 * back to the pool as an init report.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads'
import { Piscina } from 'piscina'
import { pixelsToTensor } from '../preprocess/pixels-to-tensor.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'
import ort, { type InferenceSession } from './ort.js'
import { createSession, signatureProblem } from './session.js'
import {
  INIT_REPORT,
  epochMs,
  type RunResult,
  type RunTask,
  type WorkerInit,
  type WorkerInitReport,
  type WorkerModelSpec,
  type WorkerModelStatus,
} from './worker-protocol.js'

interface LoadedModel {
  session: InferenceSession
  inputName: string
  outputName: string
}

const sessions = new Map<string, LoadedModel>()

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

async function openOn(
  spec: WorkerModelSpec,
  provider: ExecutionProviderName,
  init: WorkerInit,
): Promise<LoadedModel> {
  const session = await createSession(spec.path, { provider, intraOpThreads: init.intraOpThreads })
  const problem = signatureProblem(session, spec)
  if (problem !== undefined) {
    await session.release()
    throw new Error(`signature mismatch: ${problem}`)
  }
  const outputName = session.outputNames[0] ?? ''
  // One run allocates the arenas and, on CUDA, picks the kernels, so the first request is not slow.
  const zeros = new ort.Tensor('float32', new Float32Array(spec.channels * spec.size * spec.size), [
    1,
    spec.channels,
    spec.size,
    spec.size,
  ])
  await session.run({ [spec.inputName]: zeros })
  return { session, inputName: spec.inputName, outputName }
}

async function load(spec: WorkerModelSpec, init: WorkerInit): Promise<WorkerModelStatus> {
  try {
    sessions.set(spec.name, await openOn(spec, init.provider, init))
    return { name: spec.name, ready: true, executionProvider: init.provider }
  } catch (error) {
    const reason = errorText(error)
    if (init.provider === 'cuda' && init.cpuFallback && !reason.startsWith('signature mismatch')) {
      try {
        sessions.set(spec.name, await openOn(spec, 'cpu', init))
        return { name: spec.name, ready: true, executionProvider: 'cpu', fallbackReason: reason }
      } catch (cpuError) {
        return { name: spec.name, ready: false, reason: `session creation failed: ${errorText(cpuError)}` }
      }
    }
    const prefix = reason.startsWith('signature mismatch') ? '' : 'session creation failed: '
    return { name: spec.name, ready: false, reason: prefix + reason }
  }
}

async function initialise(): Promise<void> {
  const init = workerData as WorkerInit
  const models: WorkerModelStatus[] = []
  for (const spec of init.models) models.push(await load(spec, init))
  const report: WorkerInitReport = { kind: INIT_REPORT, threadId, models }
  parentPort?.postMessage(report)
}

/** Wraps a result so piscina transfers `buffer` instead of copying it (see Piscina.move). */
type Movable = Parameters<typeof Piscina.move>[0]

function movable(value: RunResult, buffer: ArrayBufferLike): Movable {
  // piscina's Transferable type keys on symbols its public getters only type as `symbol`.
  const wrapper = {
    get [Piscina.transferableSymbol]() {
      return buffer
    },
    get [Piscina.valueSymbol]() {
      return value
    },
  }
  return wrapper as unknown as Movable
}

async function run(task: RunTask): Promise<RunResult> {
  const startedAt = epochMs()
  const loaded = sessions.get(task.model)
  if (!loaded) return { ok: false, code: 'MODEL_NOT_READY', message: `model ${task.model} has no session` }
  try {
    let data: Float32Array
    let dims: number[]
    let preprocessMs: number | undefined
    if (task.kind === 'pixels') {
      // Resampling a large photo costs tens to hundreds of ms: here it occupies a pool thread,
      // not the HTTP event loop.
      const begin = performance.now()
      data = pixelsToTensor(task.pixels, task.contract)
      preprocessMs = performance.now() - begin
      dims = [1, task.contract.channels, task.contract.size, task.contract.size]
    } else {
      data = task.input
      dims = task.dims
    }
    const input = new ort.Tensor('float32', data, dims)
    const begin = performance.now()
    const outputs = await loaded.session.run({ [loaded.inputName]: input })
    const inferenceMs = performance.now() - begin
    const output = outputs[loaded.outputName]
    if (output?.type !== 'float32') {
      return {
        ok: false,
        code: 'INFERENCE_FAILED',
        message: `model ${task.model} returned no float32 output`,
      }
    }
    // A fresh copy owns its buffer, which is then moved (not cloned) back to the main thread.
    const logits = new Float32Array(output.data as Float32Array)
    const result: RunResult = { ok: true, logits, dims: output.dims.map(Number), startedAt, inferenceMs }
    if (preprocessMs !== undefined) result.preprocessMs = preprocessMs
    return Piscina.move(movable(result, logits.buffer)) as unknown as RunResult
  } catch (error) {
    return { ok: false, code: 'INFERENCE_FAILED', message: `model ${task.model}: ${errorText(error)}` }
  }
}

export default initialise().then(() => run)
