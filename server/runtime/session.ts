/**
 * Creating an onnxruntime-node session with this server's options, and checking that the graph
 * has the signature its manifest entry promises ([N, C, size, size] float32 in, [N, classes] out).
 */
import type { ExecutionProviderName } from '../zoo/model-entry.js'
import ort, { type InferenceSession } from './ort.js'

export interface SessionSettings {
  provider: ExecutionProviderName
  intraOpThreads: number
  /** CUDA device ordinal. */
  deviceId?: number
}

export function sessionOptions(settings: SessionSettings): InferenceSession.SessionOptions {
  return {
    executionProviders:
      settings.provider === 'cuda' ? [{ name: 'cuda', deviceId: settings.deviceId ?? 0 }] : ['cpu'],
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Several workers share the cores; spinning intra-op threads would burn CPU between requests
    // that other workers need.
    extra: { session: { 'intra_op.allow_spinning': '0' } },
  }
}

export async function createSession(path: string, settings: SessionSettings): Promise<InferenceSession> {
  return ort.InferenceSession.create(path, sessionOptions(settings))
}

/** What the manifest promises about a model's graph. */
export interface ExpectedSignature {
  inputName: string
  channels: number
  size: number
  classes: number
}

type Dim = number | string

function describe(shape: readonly Dim[]): string {
  return `[${shape.join(', ')}]`
}

/** Returns why the session does not match the manifest, or undefined when it does. */
export function signatureProblem(session: InferenceSession, expected: ExpectedSignature): string | undefined {
  const input = session.inputMetadata.find((m) => m.name === expected.inputName)
  if (!input) {
    return `the graph has no input "${expected.inputName}" (inputs: ${session.inputNames.join(', ')})`
  }
  if (!input.isTensor) return `input "${expected.inputName}" is not a tensor`
  if (input.type !== 'float32') return `input "${expected.inputName}" is ${input.type}, expected float32`
  // The batch dimension must be symbolic (dynamic batching) or 1 (such a model runs unbatched).
  const want: Dim[] = ['N', expected.channels, expected.size, expected.size]
  const shape = input.shape
  const fixedOk = (dim: Dim | undefined, value: number) => typeof dim !== 'number' || dim === value
  if (
    shape.length !== 4 ||
    !fixedOk(shape[0], 1) ||
    !fixedOk(shape[1], expected.channels) ||
    !fixedOk(shape[2], expected.size) ||
    !fixedOk(shape[3], expected.size)
  ) {
    return `input "${expected.inputName}" has shape ${describe(shape)}, the manifest implies ${describe(want)}`
  }
  const output = session.outputMetadata[0]
  if (!output?.isTensor) return 'the graph has no tensor output'
  const outShape = output.shape
  if (outShape.length !== 2 || !fixedOk(outShape[0], 1) || !fixedOk(outShape[1], expected.classes)) {
    return `output "${output.name}" has shape ${describe(outShape)}, expected [N, ${expected.classes}] logits (one per label)`
  }
  return undefined
}

/** Largest batch the graph accepts: 1 when its batch dimension is fixed, else unbounded. */
export function graphBatchLimit(session: InferenceSession, inputName: string): number {
  const input = session.inputMetadata.find((m) => m.name === inputName)
  const batch = input?.isTensor ? input.shape[0] : undefined
  return typeof batch === 'number' ? batch : Number.POSITIVE_INFINITY
}

/**
 * Median session.run time of one ready tensor with a short idle gap before each run, ms: what a
 * lone request on an idle server sees, wake-ups of sleeping intra-op threads included.
 */
export async function idleRunMs(
  session: InferenceSession,
  feeds: InferenceSession.FeedsType,
  runs = 9,
): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2))
    const begin = performance.now()
    await session.run(feeds)
    samples.push(performance.now() - begin)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)] ?? Number.POSITIVE_INFINITY
}
