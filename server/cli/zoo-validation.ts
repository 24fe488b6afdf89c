/**
 * Validation of a candidate zoo in the runtime that will serve it (onnxruntime-node): each model
 * must load, match its manifest signature, reproduce its reference output, and (given a dataset)
 * reach its declared top-1; latency is measured on this host. Used by `npm run zoo:validate`
 * before the pipeline publishes a zoo into models/.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import type { ExecutionProviderMode } from '../config.js'
import { resolveExecutionProvider } from '../runtime/execution-provider.js'
import { measureLatency, syntheticInput } from '../runtime/latency.js'
import ort, { type InferenceSession } from '../runtime/ort.js'
import { createSession, signatureProblem } from '../runtime/session.js'
import { evaluateCascade } from '../cascade/dataset-evaluation.js'
import { loadZoo, type Zoo } from '../zoo/load-zoo.js'
import { openStageSessions } from './cascade-stages.js'
import type { ExecutionProviderName, MeasuredLatency, ModelEntry } from '../zoo/model-entry.js'
import type { Dataset } from './dataset-file.js'

export interface ValidationOptions {
  zooDir: string
  dataset?: Dataset
  datasetPath?: string
  executionProvider: ExecutionProviderMode
  intraOpThreads: number
  latencyRuns: number
  /** Largest |ORT − reference| accepted per output value. */
  referenceTolerance: number
  /** When set, |measured − manifest top1| above this fails the model. */
  top1Tolerance?: number
  batchSize: number
}

export interface ReferenceCheck {
  file: string
  maxAbsDiff: number
  tolerance: number
  ok: boolean
}

export type Top1Check =
  | { measured: number; top5?: number; manifest: number; delta: number; samples: number; ok: boolean }
  | { skipped: string }

export interface ModelReport {
  name: string
  ok: boolean
  problems: string[]
  warnings: string[]
  executionProvider?: ExecutionProviderName
  reference?: ReferenceCheck
  top1?: Top1Check
  latencyMs?: MeasuredLatency
}

/** A cascade the manifest declares, re-measured on the dataset through server/cascade/. */
export type CascadeReport = {
  name: string
  ok: boolean
  problems: string[]
  top1?: { measured: number; manifest: number; delta: number; samples: number; exitFractions: number[] }
}

export interface ValidationReport {
  ok: boolean
  cascades?: CascadeReport[]
  zooDir: string
  zoo?: string
  executionProvider?: ExecutionProviderName
  problems: string[]
  warnings: string[]
  dataset?: { path: string; samples: number; classes: number }
  models: ModelReport[]
}

const ReferenceSchema = Type.Object({
  input: Type.Object({ shape: Type.Array(Type.Integer({ minimum: 1 })), data: Type.Array(Type.Number()) }),
  output: Type.Object({ shape: Type.Array(Type.Integer({ minimum: 1 })), data: Type.Array(Type.Number()) }),
})
const checkReference = Compile(ReferenceSchema)

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1)

async function runModel(session: InferenceSession, model: ModelEntry, data: Float32Array, dims: number[]) {
  const outputs = await session.run({ [model.input.name]: new ort.Tensor('float32', data, dims) })
  const name = session.outputNames[0] ?? ''
  const output = outputs[name]
  if (!output) throw new Error('the model returned no output')
  return { data: output.data as Float32Array, dims: output.dims.map(Number) }
}

async function checkReferencePair(
  session: InferenceSession,
  model: ModelEntry,
  zooDir: string,
  file: string,
  tolerance: number,
): Promise<ReferenceCheck> {
  let doc: unknown
  try {
    doc = JSON.parse(await readFile(join(zooDir, file), 'utf8'))
  } catch (error) {
    throw new Error(`reference ${file} cannot be read: ${(error as Error).message}`, { cause: error })
  }
  if (!checkReference.Check(doc)) {
    const first = checkReference.Errors(doc)[0]
    throw new Error(
      `reference ${file} is malformed at ${first?.instancePath || '/'}: ${first?.message ?? ''}`,
    )
  }
  const { input, output } = doc
  if (product(input.shape) !== input.data.length || product(output.shape) !== output.data.length) {
    throw new Error(`reference ${file}: data lengths do not match their shapes`)
  }
  const result = await runModel(session, model, Float32Array.from(input.data), input.shape)
  if (result.dims.join(',') !== output.shape.join(',')) {
    throw new Error(
      `reference ${file}: output shape [${result.dims.join(', ')}], expected [${output.shape.join(', ')}]`,
    )
  }
  let maxAbsDiff = 0
  output.data.forEach((expected, i) => {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs((result.data[i] ?? Number.NaN) - expected))
  })
  if (Number.isNaN(maxAbsDiff)) maxAbsDiff = Number.POSITIVE_INFINITY
  return { file, maxAbsDiff, tolerance, ok: maxAbsDiff <= tolerance }
}

/** Why the dataset cannot evaluate this model (another preprocessing contract), or undefined. */
export function contractMismatch(model: ModelEntry, dataset: Dataset): string | undefined {
  const a = model.input
  const b = dataset.header.input
  const close = (x: readonly number[], y: readonly number[]) =>
    x.length === y.length && x.every((v, i) => Math.abs(v - (y[i] ?? Number.NaN)) <= 1e-6)
  const differences: string[] = []
  if (a.channels !== b.channels) differences.push(`channels ${b.channels} vs ${a.channels}`)
  if (a.size !== b.size) differences.push(`size ${b.size} vs ${a.size}`)
  if (!close(a.mean, b.mean)) differences.push('mean')
  if (!close(a.std, b.std)) differences.push('std')
  if (a.resizeShortSide !== b.resizeShortSide)
    differences.push(`resizeShortSide ${b.resizeShortSide} vs ${a.resizeShortSide}`)
  if (a.interpolation !== b.interpolation)
    differences.push(`interpolation ${b.interpolation} vs ${a.interpolation}`)
  if (dataset.header.classes > model.labels.length) {
    differences.push(`${dataset.header.classes} classes vs ${model.labels.length} labels`)
  }
  return differences.length > 0
    ? `dataset preprocessed for another input contract (${differences.join(', ')})`
    : undefined
}

async function measureTop1(
  session: InferenceSession,
  model: ModelEntry,
  dataset: Dataset,
  batchSize: number,
): Promise<{ top1: number; top5: number }> {
  const { channels, size } = model.input
  const per = channels * size * size
  const n = dataset.header.count
  let correct1 = 0
  let correct5 = 0
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start)
    const batch = dataset.images.subarray(start * per, (start + count) * per)
    const { data, dims } = await runModel(session, model, batch, [count, channels, size, size])
    const classes = dims[1] ?? 0
    for (let i = 0; i < count; i++) {
      const row = data.subarray(i * classes, (i + 1) * classes)
      const label = dataset.labels[start + i] ?? -1
      const score = row[label] ?? Number.NEGATIVE_INFINITY
      // Rank of the true class = how many classes score strictly higher.
      let higher = 0
      for (const v of row) if (v > score) higher++
      if (higher === 0) correct1++
      if (higher < 5) correct5++
    }
  }
  return { top1: correct1 / n, top5: correct5 / n }
}

async function validateModel(
  model: ModelEntry,
  zooDir: string,
  provider: ExecutionProviderName,
  options: ValidationOptions,
): Promise<ModelReport> {
  const report: ModelReport = { name: model.name, ok: false, problems: [], warnings: [] }
  if (!model.ready) {
    report.problems.push(model.reason ?? 'model file check failed')
    return report
  }
  let session: InferenceSession
  try {
    session = await createSession(model.path, { provider, intraOpThreads: options.intraOpThreads })
  } catch (error) {
    report.problems.push(`session creation failed: ${(error as Error).message}`)
    return report
  }
  report.executionProvider = provider
  try {
    const signature = signatureProblem(session, {
      inputName: model.input.name,
      channels: model.input.channels,
      size: model.input.size,
      classes: model.labels.length,
    })
    if (signature !== undefined) {
      report.problems.push(`signature mismatch: ${signature}`)
      return report
    }
    if (model.reference) {
      try {
        report.reference = await checkReferencePair(
          session,
          model,
          zooDir,
          model.reference.file,
          options.referenceTolerance,
        )
        if (!report.reference.ok) {
          report.problems.push(
            `reference output differs by ${report.reference.maxAbsDiff.toExponential(3)} (> ${options.referenceTolerance})`,
          )
        }
      } catch (error) {
        report.problems.push((error as Error).message)
      }
    } else {
      report.warnings.push('no reference pair in the manifest: output parity not checked')
    }
    if (options.dataset) {
      const mismatch = contractMismatch(model, options.dataset)
      if (mismatch !== undefined) {
        report.top1 = { skipped: mismatch }
      } else {
        const { top1, top5 } = await measureTop1(session, model, options.dataset, options.batchSize)
        const delta = top1 - model.top1
        const ok = options.top1Tolerance === undefined || Math.abs(delta) <= options.top1Tolerance
        report.top1 = {
          measured: top1,
          top5,
          manifest: model.top1,
          delta,
          samples: options.dataset.header.count,
          ok,
        }
        if (!ok) {
          report.problems.push(
            `top-1 ${top1.toFixed(4)} differs from the manifest's ${model.top1} by more than ${options.top1Tolerance}`,
          )
        }
      }
    }
    const dims = [1, model.input.channels, model.input.size, model.input.size]
    const input = syntheticInput(product(dims))
    await runModel(session, model, input, dims)
    report.latencyMs = await measureLatency(options.latencyRuns, async () => {
      const begin = performance.now()
      await runModel(session, model, input, dims)
      return performance.now() - begin
    })
  } catch (error) {
    report.problems.push(`inference failed: ${(error as Error).message}`)
  } finally {
    await session.release()
  }
  report.ok = report.problems.length === 0
  return report
}

export async function validateZoo(options: ValidationOptions): Promise<ValidationReport> {
  const report: ValidationReport = {
    ok: false,
    zooDir: options.zooDir,
    problems: [],
    warnings: [],
    models: [],
  }
  let zoo
  try {
    zoo = await loadZoo(options.zooDir)
  } catch (error) {
    report.problems.push((error as Error).message)
    return report
  }
  report.zooDir = zoo.dir
  report.zoo = zoo.manifest.zoo.name
  if (options.dataset) {
    report.dataset = {
      path: options.datasetPath ?? '',
      samples: options.dataset.header.count,
      classes: options.dataset.header.classes,
    }
  }
  let decision
  try {
    decision = await resolveExecutionProvider(
      options.executionProvider,
      zoo.models.filter((m) => m.ready).map((m) => m.path),
    )
  } catch (error) {
    report.problems.push((error as Error).message)
    return report
  }
  if (decision.warning !== undefined) report.warnings.push(decision.warning)
  report.executionProvider = decision.provider
  for (const model of zoo.models) {
    report.models.push(await validateModel(model, zoo.dir, decision.provider, options))
  }
  if (zoo.manifest.cascades?.length) {
    report.cascades = await validateCascades(zoo, decision.provider, options, report.models)
  }
  if (options.dataset && !report.models.some((m) => m.top1 && 'measured' in m.top1)) {
    report.problems.push('the dataset matches the input contract of no model: top-1 was not measured')
  }
  report.ok =
    report.problems.length === 0 &&
    report.models.every((m) => m.ok) &&
    (report.cascades ?? []).every((c) => c.ok)
  return report
}

/**
 * Every declared cascade: its stages must have passed; given a dataset its top-1 is re-measured
 * through the server's cascade rule and must match the manifest within top1Tolerance.
 */
async function validateCascades(
  zoo: Zoo,
  provider: ExecutionProviderName,
  options: ValidationOptions,
  models: ModelReport[],
): Promise<CascadeReport[]> {
  const reports: CascadeReport[] = []
  const passed = new Set(models.filter((m) => m.ok).map((m) => m.name))
  for (const cascade of zoo.manifest.cascades ?? []) {
    const report: CascadeReport = { name: cascade.name, ok: false, problems: [] }
    reports.push(report)
    const failed = cascade.stages.filter((s) => !passed.has(s))
    if (failed.length > 0) {
      report.problems.push(`stage(s) ${failed.join(', ')} failed validation`)
      continue
    }
    const first = zoo.models.find((m) => m.name === cascade.stages[0])
    const dataset = options.dataset
    if (dataset && first && contractMismatch(first, dataset) === undefined) {
      const sessions = await openStageSessions(zoo.models, cascade.stages, provider, options.intraOpThreads)
      try {
        const [, c = 1, h = 1, w = 1] = dataset.header.shape
        const measured = await evaluateCascade(
          cascade.stages.map((s) => sessions.runner(s)),
          cascade.thresholds,
          { images: dataset.images, perImage: c * h * w, labels: dataset.labels },
          options.batchSize,
        )
        const delta = measured.top1 - cascade.top1
        report.top1 = {
          measured: measured.top1,
          manifest: cascade.top1,
          delta,
          samples: measured.samples,
          exitFractions: measured.exitFractions,
        }
        if (options.top1Tolerance !== undefined && Math.abs(delta) > options.top1Tolerance) {
          report.problems.push(
            `top-1 ${measured.top1.toFixed(4)} differs from the manifest's ${cascade.top1} by more than ${options.top1Tolerance}`,
          )
        }
      } catch (error) {
        report.problems.push(`inference failed: ${(error as Error).message}`)
      } finally {
        await sessions.release()
      }
    }
    report.ok = report.problems.length === 0
  }
  return reports
}
