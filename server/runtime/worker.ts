/**
 * Inference worker (a plain worker_threads Worker owned by worker-pool.ts). Each worker holds one
 * session per model of its zoo generation, so any worker can run any batch, and onnxruntime's
 * synchronous run() never blocks the HTTP event loop. At start-up every session is created and
 * run once at every batch size the server will use (powers of two up to the model's maximum), so
 * no request pays for arena growth; the result per model goes back as one init report.
 *
 * A task is one batch of one model: its items (tensors of one or more rows each, preprocessed by
 * preprocess-worker.ts; or, when this worker was idle, encoded images it decodes itself) are laid
 * out in one input tensor, session.run executes once, and the logits of every row return in one
 * transferred buffer. A malformed item fails alone; a failing session.run fails the batch and is
 * flagged as a model fault.
 */
import { parentPort, threadId, workerData } from 'node:worker_threads'
import { imageToTensor, itemError } from '../preprocess/image-to-tensor.js'
import { pixelsToTensor } from '../preprocess/pixels-to-tensor.js'
import type { ExecutionProviderName } from '../zoo/model-entry.js'
import { syntheticInput } from './latency.js'
import ort, { type InferenceSession } from './ort.js'
import { createSession, graphBatchLimit, idleRunMs, signatureProblem } from './session.js'
import {
  INIT_REPORT,
  epochMs,
  isBatchTask,
  warmupBatchSizes,
  type BatchReply,
  type BatchTask,
  type PlacedItem,
  type WorkerInit,
  type WorkerInitReport,
  type WorkerModelSpec,
  type WorkerModelStatus,
} from './worker-protocol.js'

interface LoadedModel {
  spec: WorkerModelSpec
  session: InferenceSession
  outputName: string
  maxBatch: number
  /** Reused input buffer for multi-item batches (onnxruntime reads it only during run()). */
  scratch: Float32Array | undefined
  /** Intra-op threads of `session`. */
  intraOpThreads: number
  /** A one-thread session for batches of one row, where it answers sooner (openOn). */
  lone?: InferenceSession
}

const init = workerData as WorkerInit
const sessions = new Map<string, LoadedModel>()

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function sampleSize(spec: WorkerModelSpec): number {
  return spec.channels * spec.size * spec.size
}

async function openOn(spec: WorkerModelSpec, provider: ExecutionProviderName): Promise<LoadedModel> {
  const configured = await openWith(spec, provider, init.intraOpThreads)
  if (provider !== 'cpu' || init.intraOpThreads <= 1) return configured
  // A small model loses more to waking the pool's threads for each operator than it gains from
  // them (BENCHMARKS.md: the bundled models run a lone request about twice as fast on one thread
  // as on two), while a batch still gains from them. Where one thread answers a lone request
  // sooner, a second session with one thread runs the batches of one row.
  const single = await openWith(spec, provider, 1)
  const many = await idleRunMs(configured.session, probeFeeds(configured))
  const one = await idleRunMs(single.session, probeFeeds(single))
  if (one >= many) {
    await single.session.release()
    return configured
  }
  return { ...configured, lone: single.session }
}

function probeFeeds(loaded: LoadedModel): InferenceSession.FeedsType {
  const { spec } = loaded
  const input = syntheticInput(sampleSize(spec))
  return { [spec.inputName]: new ort.Tensor('float32', input, [1, spec.channels, spec.size, spec.size]) }
}

async function openWith(
  spec: WorkerModelSpec,
  provider: ExecutionProviderName,
  intraOpThreads: number,
): Promise<LoadedModel> {
  const session = await createSession(spec.path, { provider, intraOpThreads })
  const problem = signatureProblem(session, spec)
  if (problem !== undefined) {
    await session.release()
    throw new Error(`signature mismatch: ${problem}`)
  }
  const maxBatch = Math.max(1, Math.min(spec.maxBatch, graphBatchLimit(session, spec.inputName)))
  // One run per batch size allocates the arenas and, on CUDA, picks the kernels for that shape.
  const sample = sampleSize(spec)
  const largest = syntheticInput(sample * maxBatch)
  for (const rows of warmupBatchSizes(maxBatch)) {
    const input = new ort.Tensor('float32', largest.subarray(0, rows * sample), [
      rows,
      spec.channels,
      spec.size,
      spec.size,
    ])
    await session.run({ [spec.inputName]: input })
  }
  return {
    spec,
    session,
    outputName: session.outputNames[0] ?? '',
    maxBatch,
    scratch: undefined,
    intraOpThreads,
  }
}

/** pixelsToTensor on a synthetic 4:3 photo twice the resize target: the preprocessing seed. */
function preprocessSeed(spec: WorkerModelSpec): number {
  const height = spec.contract.resizeShortSide * 2
  const width = Math.round((height * 4) / 3)
  const data = new Uint8Array(width * height * 3)
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24
  let best = Number.POSITIVE_INFINITY
  for (let i = 0; i < 3; i++) {
    const begin = performance.now()
    pixelsToTensor({ data, width, height, channels: 3 }, spec.contract)
    best = Math.min(best, performance.now() - begin)
  }
  return best
}

function readyStatus(
  loaded: LoadedModel,
  provider: ExecutionProviderName,
  fallbackReason?: string,
): WorkerModelStatus {
  const status: WorkerModelStatus = {
    name: loaded.spec.name,
    ready: true,
    executionProvider: provider,
    maxBatch: loaded.maxBatch,
    intraOpThreads: loaded.lone ? 1 : loaded.intraOpThreads,
    preprocessMs: preprocessSeed(loaded.spec),
  }
  if (fallbackReason !== undefined) status.fallbackReason = fallbackReason
  return status
}

async function load(spec: WorkerModelSpec): Promise<WorkerModelStatus> {
  try {
    const loaded = await openOn(spec, init.provider)
    sessions.set(spec.name, loaded)
    return readyStatus(loaded, init.provider)
  } catch (error) {
    const reason = errorText(error)
    const mismatch = reason.startsWith('signature mismatch')
    if (init.provider === 'cuda' && init.cpuFallback && !mismatch) {
      try {
        const loaded = await openOn(spec, 'cpu')
        sessions.set(spec.name, loaded)
        return readyStatus(loaded, 'cpu', reason)
      } catch (cpuError) {
        return { name: spec.name, ready: false, reason: `session creation failed: ${errorText(cpuError)}` }
      }
    }
    return { name: spec.name, ready: false, reason: (mismatch ? '' : 'session creation failed: ') + reason }
  }
}

function post(reply: BatchReply, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(reply, transfer)
}

/** session.run itself failed: the model is broken, not one input (the pool marks it not ready). */
function postModelFault(task: BatchTask, error: unknown, startedAt: number): void {
  post({
    id: task.id,
    ok: false,
    code: 'INFERENCE_FAILED',
    message: `model ${task.model}: ${errorText(error)}`,
    modelFault: true,
    startedAt,
  })
}

/** Test-only fault injection; true when the task must not be answered normally. */
function injectFault(task: BatchTask, loaded: LoadedModel): Promise<boolean> | boolean {
  if (!init.faultInjection || task.fault === undefined) return false
  switch (task.fault) {
    case 'crash':
      // Thrown from a timer: an uncaught exception outside any task, which kills the thread.
      setTimeout(() => {
        throw new Error('injected worker crash')
      }, 0)
      return true
    case 'exit':
      process.exit(70)
      return true
    case 'model-error': {
      const { spec } = loaded
      const wrong = new ort.Tensor('float32', new Float32Array(spec.channels * (spec.size + 1) * spec.size), [
        1,
        spec.channels,
        spec.size + 1,
        spec.size,
      ])
      return loaded.session.run({ [spec.inputName]: wrong }).then(
        () => false,
        (error: unknown) => {
          postModelFault(task, error, epochMs())
          return true
        },
      )
    }
  }
}

async function runBatch(task: BatchTask): Promise<void> {
  const startedAt = epochMs()
  const loaded = sessions.get(task.model)
  if (!loaded) {
    post({
      id: task.id,
      ok: false,
      code: 'MODEL_NOT_READY',
      message: `model ${task.model} has no session in this worker`,
      modelFault: false,
      startedAt,
    })
    return
  }
  if (await injectFault(task, loaded)) return
  const { spec } = loaded
  const sample = sampleSize(spec)

  // Images (sent here when this worker was idle) are decoded and preprocessed first, together.
  const inputs = await Promise.all(
    task.items.map(async (item) => {
      if (item.kind === 'tensor') return { input: item.input, rows: item.rows, preprocessMs: 0 }
      const begin = performance.now()
      try {
        const input = await imageToTensor(item, spec.contract)
        return { input, rows: 1, preprocessMs: performance.now() - begin }
      } catch (error) {
        return { error: itemError(error) }
      }
    }),
  )
  let rows = 0
  const placed: PlacedItem[] = []
  const tensors: Float32Array[] = []
  for (const item of inputs) {
    if (item.error !== undefined) {
      placed.push({ error: item.error })
      continue
    }
    if (item.input.length !== item.rows * sample) {
      placed.push({
        error: {
          code: 'INFERENCE_FAILED',
          message: `tensor of ${item.input.length} values does not hold ${item.rows} × ${sample}`,
        },
      })
      continue
    }
    placed.push({ offset: rows, rows: item.rows, preprocessMs: item.preprocessMs })
    tensors.push(item.input)
    rows += item.rows
  }
  if (rows === 0) {
    const logits = new Float32Array(0)
    post({
      id: task.id,
      ok: true,
      logits,
      classes: spec.classes,
      items: placed,
      batchRows: 0,
      startedAt,
      inferenceMs: 0,
    })
    return
  }

  // One item: its own buffer is the input. Several: copied into a reused batch buffer.
  let data: Float32Array
  if (tensors.length === 1) {
    data = tensors[0] as Float32Array
  } else {
    if (!loaded.scratch || loaded.scratch.length < rows * sample) {
      loaded.scratch = new Float32Array(Math.max(rows, loaded.maxBatch) * sample)
    }
    data = loaded.scratch.subarray(0, rows * sample)
    let at = 0
    for (const tensor of tensors) {
      data.set(tensor, at)
      at += tensor.length
    }
  }

  let logits: Float32Array
  const runBegin = performance.now()
  try {
    const input = new ort.Tensor('float32', data, [rows, spec.channels, spec.size, spec.size])
    const session = rows === 1 && loaded.lone ? loaded.lone : loaded.session
    const outputs = await session.run({ [spec.inputName]: input })
    const output = outputs[loaded.outputName]
    if (output?.type !== 'float32') throw new Error('the graph returned no float32 output')
    const dims = output.dims.map(Number)
    if (dims.length !== 2 || dims[0] !== rows || dims[1] !== spec.classes) {
      throw new Error(`output shape [${dims.join(', ')}] is not [${rows}, ${spec.classes}]`)
    }
    const values = output.data as Float32Array
    // The binding hands out a fresh buffer per output: moved as is when it is exactly the logits.
    logits =
      values.byteOffset === 0 && values.byteLength === values.buffer.byteLength
        ? values
        : new Float32Array(values)
  } catch (error) {
    postModelFault(task, error, startedAt)
    return
  }
  const inferenceMs = performance.now() - runBegin
  post(
    {
      id: task.id,
      ok: true,
      logits,
      classes: spec.classes,
      items: placed,
      batchRows: rows,
      startedAt,
      inferenceMs,
    },
    [logits.buffer as ArrayBuffer],
  )
}

async function initialise(): Promise<void> {
  const models: WorkerModelStatus[] = []
  for (const spec of init.models) models.push(await load(spec))
  const report: WorkerInitReport = { kind: INIT_REPORT, threadId, models }
  parentPort?.postMessage(report)
  parentPort?.on('message', (message: unknown) => {
    if (!isBatchTask(message)) return
    runBatch(message).catch((error: unknown) => {
      // Not a model fault (e.g. a reply that cannot be posted): fail this batch, keep the worker.
      post({
        id: message.id,
        ok: false,
        code: 'INFERENCE_FAILED',
        message: `model ${message.model}: ${errorText(error)}`,
        modelFault: false,
        startedAt: epochMs(),
      })
    })
  })
}

await initialise()
