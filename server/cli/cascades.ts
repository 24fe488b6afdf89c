/**
 * `npm run zoo:cascades -- <command> <zooDir> --dataset <file> [options]`: the onnxruntime-node
 * half of building cascades (the pipeline's cascades stage and `alphanet cascades` call it):
 *
 *   probabilities  every model's softmax outputs on the dataset (the held-out split), written to
 *                  --out in the AZPROB01 format below; the pipeline picks stages and thresholds
 *                  from them in Python (training/alphanet/cascade.py).
 *   evaluate       top-1, exit shares and mean MFLOPs of the candidate cascades in --cascades
 *                  ({"cascades": [{name, stages, thresholds}]}) on the dataset (the test split)
 *                  through the server's cascade rule; with --runs n > 0 also the batch-1 latency
 *                  (p50/p95) of every model the candidates use. JSON on stdout (and --json).
 *
 * AZPROB01 (little-endian): magic; uint32 H; H bytes of JSON header {"version": 1, "models": [...],
 * "count": N, "classes": K, "dtype": "float64"}, space-padded so 12 + H is a multiple of 8; then
 * models × N × K float64 softmax probabilities, model-major.
 * Exit status: 0 done, 1 a model or candidate failed, 2 usage error.
 */
import { writeFile, readFile, rename } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { pathToFileURL } from 'node:url'
import { Type } from 'typebox'
import { Compile } from 'typebox/compile'
import { evaluateCascade, softmaxOutputs, type EvaluationSet } from '../cascade/dataset-evaluation.js'
import { measureLatency } from '../runtime/latency.js'
import ort from '../runtime/ort.js'
import { loadZoo } from '../zoo/load-zoo.js'
import { ModelNamePattern } from '../zoo/manifest-schema.js'
import type { MeasuredLatency } from '../zoo/model-entry.js'
import { openStageSessions } from './cascade-stages.js'
import { readDataset, type Dataset } from './dataset-file.js'
import {
  numberOption,
  parseCommandLine,
  PROCESS_OUTPUT,
  usageFailure,
  UsageError,
  type CliOutput,
} from './command-line.js'

export const PROBABILITIES_MAGIC = 'AZPROB01'

const USAGE = `Usage: npm run zoo:cascades -- probabilities <zooDir> --dataset <file> --out <file>
       npm run zoo:cascades -- evaluate <zooDir> --dataset <file> --cascades <file> [--json <file>] [--runs <n>]

Options:
  --models <a,b,...>      probabilities: only these models (default: every model)
  --batch-size <n>        batch size of the onnxruntime-node runs (default 100)
  --intra-op-threads <n>  onnxruntime intra-op threads (default: all cores)
  --runs <n>              evaluate: timed batch-1 runs per stage model (default 0 = no latency)`

const CandidatesSchema = Type.Object({
  cascades: Type.Array(
    Type.Object({
      name: Type.String({ pattern: ModelNamePattern }),
      stages: Type.Array(Type.String(), { minItems: 2, maxItems: 3 }),
      thresholds: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { minItems: 1, maxItems: 2 }),
    }),
  ),
})
const checkCandidates = Compile(CandidatesSchema)

function evaluationSet(dataset: Dataset): EvaluationSet {
  const [, c = 1, h = 1, w = 1] = dataset.header.shape
  return { images: dataset.images, perImage: c * h * w, labels: dataset.labels }
}

/** The AZPROB01 bytes of `outputs` (one float64 [N, K] matrix per model). */
export function probabilitiesFile(
  models: string[],
  count: number,
  classes: number,
  outputs: Float64Array[],
): Buffer {
  let header = Buffer.from(JSON.stringify({ version: 1, models, count, classes, dtype: 'float64' }), 'utf8')
  const pad = (8 - ((12 + header.length) % 8)) % 8
  header = Buffer.concat([header, Buffer.alloc(pad, 0x20)])
  const prefix = Buffer.alloc(12)
  prefix.write(PROBABILITIES_MAGIC, 0, 'latin1')
  prefix.writeUInt32LE(header.length, 8)
  const body = outputs.map((o) => Buffer.from(o.buffer, o.byteOffset, o.byteLength))
  return Buffer.concat([prefix, header, ...body])
}

async function writeAtomically(path: string, content: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  await writeFile(tmp, content)
  await rename(tmp, path)
}

export async function runCascadesCli(argv: string[], io: CliOutput): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      dataset: { type: 'string' },
      out: { type: 'string' },
      models: { type: 'string' },
      cascades: { type: 'string' },
      json: { type: 'string' },
      runs: { type: 'string' },
      'batch-size': { type: 'string' },
      'intra-op-threads': { type: 'string' },
    },
    USAGE,
    io,
  )
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  let command: string, zooDir: string, batchSize: number, threads: number, runs: number
  try {
    const [first, second, ...rest] = positionals
    if (first === undefined || second === undefined || rest.length > 0) {
      throw new UsageError('expected a command (probabilities | evaluate) and one zoo directory')
    }
    if (first !== 'probabilities' && first !== 'evaluate') {
      throw new UsageError(`unknown command ${JSON.stringify(first)} (probabilities | evaluate)`)
    }
    ;[command, zooDir] = [first, second]
    if (values.dataset === undefined) throw new UsageError('--dataset is required')
    if (command === 'probabilities' && values.out === undefined)
      throw new UsageError('probabilities needs --out')
    if (command === 'evaluate' && values.cascades === undefined)
      throw new UsageError('evaluate needs --cascades')
    batchSize = numberOption(values['batch-size'], '--batch-size', 100, { integer: true })
    threads = numberOption(values['intra-op-threads'], '--intra-op-threads', availableParallelism(), {
      integer: true,
    })
    runs = numberOption(values.runs, '--runs', 0, { integer: true, allowZero: true })
  } catch (error) {
    return usageFailure(error, USAGE, io)
  }
  try {
    const zoo = await loadZoo(zooDir)
    const dataset = await readDataset(values.dataset)
    const set = evaluationSet(dataset)
    if (command === 'probabilities') {
      const names = values.models === undefined ? zoo.models.map((m) => m.name) : values.models.split(',')
      const sessions = await openStageSessions(zoo.models, names, 'cpu', threads)
      try {
        const outputs: Float64Array[] = []
        let classes = 0
        for (const name of names) {
          const result = await softmaxOutputs(sessions.runner(name), set, batchSize)
          outputs.push(result.data)
          classes = result.classes
        }
        await writeAtomically(
          values.out as string,
          probabilitiesFile(names, set.labels.length, classes, outputs),
        )
        io.out(`${JSON.stringify({ models: names, count: set.labels.length, classes, out: values.out })}\n`)
      } finally {
        await sessions.release()
      }
      return 0
    }
    let candidates: unknown
    try {
      candidates = JSON.parse(await readFile(values.cascades as string, 'utf8'))
    } catch (error) {
      throw new Error(`--cascades ${values.cascades}: ${(error as Error).message}`, { cause: error })
    }
    if (!checkCandidates.Check(candidates)) {
      const first = checkCandidates.Errors(candidates)[0]
      throw new Error(
        `--cascades ${values.cascades} is malformed at ${first?.instancePath || '/'}: ${first?.message ?? ''}`,
      )
    }
    const used = candidates.cascades.flatMap((c) => c.stages)
    const sessions = await openStageSessions(zoo.models, used, 'cpu', threads)
    try {
      const results = []
      for (const candidate of candidates.cascades) {
        if (candidate.thresholds.length !== candidate.stages.length - 1) {
          throw new Error(
            `cascade ${candidate.name}: ${candidate.stages.length} stages need ${candidate.stages.length - 1} threshold(s)`,
          )
        }
        const stages = candidate.stages.map((s) => sessions.runner(s))
        results.push({
          name: candidate.name,
          ...(await evaluateCascade(stages, candidate.thresholds, set, batchSize)),
        })
      }
      const latencyMs: Record<string, MeasuredLatency> = {}
      if (runs > 0) {
        for (const name of new Set(used)) {
          const model = zoo.models.find((m) => m.name === name)
          if (!model) continue
          const session = sessions.session(name)
          const dims = [1, model.input.channels, model.input.size, model.input.size]
          const input = new ort.Tensor('float32', set.images.subarray(0, set.perImage), dims)
          await session.run({ [model.input.name]: input })
          latencyMs[name] = await measureLatency(runs, async () => {
            const begin = performance.now()
            await session.run({ [model.input.name]: input })
            return performance.now() - begin
          })
        }
      }
      const report = { dataset: values.dataset, samples: set.labels.length, cascades: results, latencyMs }
      const text = `${JSON.stringify(report, null, 2)}\n`
      io.out(text)
      if (values.json !== undefined) await writeAtomically(values.json, text)
    } finally {
      await sessions.release()
    }
    return 0
  } catch (error) {
    io.err(`zoo:cascades ${command}: ${(error as Error).message}\n`)
    return 1
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runCascadesCli(process.argv.slice(2), PROCESS_OUTPUT)
}
