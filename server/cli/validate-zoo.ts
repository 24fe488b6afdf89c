/**
 * `npm run zoo:validate -- <zooDir> [options]`: validates a candidate zoo in onnxruntime-node and
 * prints a JSON report (see zoo-validation.ts); exit 0 when every model passes, 1 on any failure,
 * 2 on a usage error. The dataset format is documented in dataset-file.ts.
 */
import { writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { pathToFileURL } from 'node:url'
import { readDataset, type Dataset } from './dataset-file.js'
import { validateZoo, type ValidationOptions } from './zoo-validation.js'
import {
  numberOption,
  parseCommandLine,
  PROCESS_OUTPUT,
  usageFailure,
  UsageError,
  type CliOutput,
} from './command-line.js'

const USAGE = `Usage: npm run zoo:validate -- <zooDir> [options]

Loads every model of the zoo in onnxruntime-node, checks its reference pair, optionally measures
top-1 on a dataset file, measures batch-1 latency, prints a JSON report; exits 1 on any failure.

Options:
  --dataset <file>             evaluation set in the validate-zoo format (server/cli/dataset-file.ts)
  --json <file>                also write the report there
  --top1-tolerance <t>         fail a model whose measured top-1 differs from the manifest by more than t
  --reference-tolerance <t>    largest accepted |output - reference| (default 1e-4)
  --runs <n>                   timed latency runs per model (default 50)
  --batch-size <n>             batch size for the dataset evaluation (default 64)
  --execution-provider <mode>  auto | cuda | cpu (default cpu)
  --intra-op-threads <n>       onnxruntime intra-op threads (default: all cores)
  -h, --help                   print this text`

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function runCli(argv: string[], io: CliOutput = PROCESS_OUTPUT): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    {
      dataset: { type: 'string' },
      json: { type: 'string' },
      'top1-tolerance': { type: 'string' },
      'reference-tolerance': { type: 'string' },
      runs: { type: 'string' },
      'batch-size': { type: 'string' },
      'execution-provider': { type: 'string' },
      'intra-op-threads': { type: 'string' },
    },
    USAGE,
    io,
  )
  if (typeof parsed === 'number') return parsed
  const { values, positionals } = parsed
  let options: ValidationOptions
  try {
    if (positionals.length !== 1 || positionals[0] === undefined) {
      throw new UsageError('expected exactly one zoo directory')
    }
    const provider = values['execution-provider'] ?? 'cpu'
    if (provider !== 'auto' && provider !== 'cuda' && provider !== 'cpu') {
      throw new UsageError(`--execution-provider must be auto, cuda or cpu, got ${JSON.stringify(provider)}`)
    }
    options = {
      zooDir: positionals[0],
      executionProvider: provider,
      intraOpThreads: numberOption(values['intra-op-threads'], '--intra-op-threads', availableParallelism(), {
        integer: true,
      }),
      latencyRuns: numberOption(values.runs, '--runs', 50, { integer: true }),
      referenceTolerance: numberOption(values['reference-tolerance'], '--reference-tolerance', 1e-4),
      batchSize: numberOption(values['batch-size'], '--batch-size', 64, { integer: true }),
    }
    if (values['top1-tolerance'] !== undefined) {
      options.top1Tolerance = numberOption(values['top1-tolerance'], '--top1-tolerance', 0)
    }
  } catch (error) {
    return usageFailure(error, USAGE, io)
  }
  if (values.dataset !== undefined) {
    let dataset: Dataset
    try {
      dataset = await readDataset(values.dataset)
    } catch (error) {
      io.err(`${(error as Error).message}\n`)
      return 1
    }
    options.dataset = dataset
    options.datasetPath = values.dataset
  }
  const report = await validateZoo(options)
  const text = `${JSON.stringify(report, null, 2)}\n`
  io.out(text)
  if (values.json !== undefined) await writeFile(values.json, text)
  if (!report.ok) {
    const failed = report.models.filter((m) => !m.ok).map((m) => `${m.name}: ${m.problems.join('; ')}`)
    io.err(`zoo validation FAILED\n  ${[...report.problems, ...failed].join('\n  ')}\n`)
  }
  return report.ok ? 0 : 1
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await runCli(process.argv.slice(2))
}
