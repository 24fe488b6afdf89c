/**
 * Server settings: every key comes from a default, the environment (UPPER_SNAKE) or a command-line
 * flag (--kebab-case), in increasing precedence, and the merged result is validated against one
 * TypeBox schema so a bad value stops the process with a message naming the key.
 */
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'

export const AppConfigSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, description: 'Interface to bind.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port (0 = any free port).' }),
    grpcPort: Type.Integer({
      minimum: 0,
      maximum: 65535,
      description:
        'TCP port of the gRPC Open Inference Protocol (inference.GRPCInferenceService) and grpc.health.v1.Health, on HOST (0 = no gRPC).',
    }),
    zooDir: Type.String({
      minLength: 1,
      description: 'Zoo directory holding manifest.json and the ONNX files.',
    }),
    executionProvider: Type.Union([Type.Literal('auto'), Type.Literal('cuda'), Type.Literal('cpu')], {
      description: 'auto: CUDA when its libraries load, else CPU; cuda: CUDA or fail; cpu: CPU only.',
    }),
    workerThreads: Type.Integer({ minimum: 1, maximum: 256, description: 'Inference worker threads.' }),
    intraOpThreads: Type.Integer({
      minimum: 1,
      maximum: 256,
      description: 'onnxruntime intra-op threads per worker.',
    }),
    maxBodyBytes: Type.Integer({ minimum: 1024, description: 'Largest accepted request body in bytes.' }),
    maxImagePixels: Type.Integer({
      minimum: 1,
      description: 'Largest decoded image (width × height) accepted; guards against decompression bombs.',
    }),
    defaultModel: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          "Model used when a request sets no budget (default: the manifest's, else the most accurate).",
      }),
    ),
    warmupRuns: Type.Integer({
      minimum: 1,
      maximum: 10000,
      description: 'Timed batch-1 runs per model at start-up for the latency estimate.',
    }),
    preprocessThreads: Type.Integer({
      minimum: 1,
      maximum: 256,
      description:
        'Worker threads that decode and resample images ahead of the inference workers (a pipeline stage).',
    }),
    maxBatchSize: Type.Integer({
      minimum: 1,
      maximum: 1024,
      description:
        'Largest dynamic batch (rows) a model runs; concurrent requests for one model are merged up to it (1 = no batching). Warm-up covers the powers of two up to it.',
    }),
    maxQueueDelayUs: Type.Integer({
      minimum: 0,
      maximum: 10_000_000,
      description:
        "How long (µs) a partial batch may wait for more requests while a worker is idle (Triton's max_queue_delay_microseconds; 0 = send at once).",
    }),
    maxQueueSize: Type.Integer({
      minimum: 1,
      description:
        'Rows one model may have queued; beyond that requests get 503 OVERLOADED with Retry-After.',
    }),
    inferenceTimeoutMs: Type.Integer({
      minimum: 1,
      description:
        'Deadline of an inference request without a latency budget (maxLatencyMs): one that cannot finish within it is answered 504 DEADLINE_EXCEEDED before compute.',
    }),
    shutdownTimeoutMs: Type.Integer({
      minimum: 0,
      description: 'On SIGTERM/SIGINT, exit with an error if in-flight requests take longer than this.',
    }),
    maxHeaderBytes: Type.Integer({
      minimum: 1024,
      maximum: 1024 * 1024,
      description:
        'Largest request line + headers in bytes (Node maxHeaderSize); larger requests get 431 HEADERS_TOO_LARGE.',
    }),
    maxInFlight: Type.Integer({
      minimum: 0,
      description:
        'Requests handled at once, over every route but probes and metrics; beyond it 503 OVERLOADED at once (a front-door bound whatever the stages behind it do; 0 = no limit).',
    }),
    maxConnections: Type.Integer({
      minimum: 0,
      description:
        'Open client connections at most; further ones are closed at once (bounds sockets and file descriptors; 0 = no limit).',
    }),
    requestTimeoutMs: Type.Integer({
      minimum: 0,
      description:
        'A request must arrive completely (headers and body) within this many ms, else 408 REQUEST_TIMEOUT (slow-client guard; 0 = no limit).',
    }),
    maxEventLoopDelayMs: Type.Integer({
      minimum: 0,
      description:
        'Shed load (503 OVERLOADED) while the mean event-loop delay over the last second exceeds this (0 = off).',
    }),
    maxHeapUsedBytes: Type.Integer({
      minimum: 0,
      description: 'Shed load (503 OVERLOADED) while the V8 heap in use exceeds this many bytes (0 = off).',
    }),
    maxRssBytes: Type.Integer({
      minimum: 0,
      description:
        'Shed load (503 OVERLOADED) while the resident set size exceeds this many bytes (0 = off).',
    }),
    rateLimitMax: Type.Integer({
      minimum: 0,
      description:
        'Requests one client address may make per RATE_LIMIT_WINDOW_MS, else 429 RATE_LIMITED (0 = no rate limit).',
    }),
    rateLimitWindowMs: Type.Integer({
      minimum: 1,
      description: 'The rate-limit window in ms.',
    }),
    logLevel: Type.Union(
      [
        Type.Literal('fatal'),
        Type.Literal('error'),
        Type.Literal('warn'),
        Type.Literal('info'),
        Type.Literal('debug'),
        Type.Literal('trace'),
        Type.Literal('silent'),
      ],
      { description: 'pino log level.' },
    ),
  },
  { additionalProperties: false },
)

export type AppConfig = Static<typeof AppConfigSchema>
export type ExecutionProviderMode = AppConfig['executionProvider']

/** One configuration key: its property, environment variable, flag and parser of the raw string. */
export interface KeySpec {
  key: keyof AppConfig
  env: string
  flag: string
  kind: 'string' | 'integer'
}

export const KEYS: readonly KeySpec[] = [
  { key: 'host', env: 'HOST', flag: 'host', kind: 'string' },
  { key: 'port', env: 'PORT', flag: 'port', kind: 'integer' },
  { key: 'grpcPort', env: 'GRPC_PORT', flag: 'grpc-port', kind: 'integer' },
  { key: 'zooDir', env: 'ZOO_DIR', flag: 'zoo-dir', kind: 'string' },
  { key: 'executionProvider', env: 'EXECUTION_PROVIDER', flag: 'execution-provider', kind: 'string' },
  { key: 'workerThreads', env: 'WORKER_THREADS', flag: 'worker-threads', kind: 'integer' },
  { key: 'intraOpThreads', env: 'INTRA_OP_THREADS', flag: 'intra-op-threads', kind: 'integer' },
  { key: 'maxBodyBytes', env: 'MAX_BODY_BYTES', flag: 'max-body-bytes', kind: 'integer' },
  { key: 'maxImagePixels', env: 'MAX_IMAGE_PIXELS', flag: 'max-image-pixels', kind: 'integer' },
  { key: 'defaultModel', env: 'DEFAULT_MODEL', flag: 'default-model', kind: 'string' },
  { key: 'warmupRuns', env: 'WARMUP_RUNS', flag: 'warmup-runs', kind: 'integer' },
  { key: 'preprocessThreads', env: 'PREPROCESS_THREADS', flag: 'preprocess-threads', kind: 'integer' },
  { key: 'maxBatchSize', env: 'MAX_BATCH_SIZE', flag: 'max-batch-size', kind: 'integer' },
  { key: 'maxQueueDelayUs', env: 'MAX_QUEUE_DELAY_US', flag: 'max-queue-delay-us', kind: 'integer' },
  { key: 'maxQueueSize', env: 'MAX_QUEUE_SIZE', flag: 'max-queue-size', kind: 'integer' },
  { key: 'inferenceTimeoutMs', env: 'INFERENCE_TIMEOUT_MS', flag: 'inference-timeout-ms', kind: 'integer' },
  { key: 'shutdownTimeoutMs', env: 'SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms', kind: 'integer' },
  { key: 'maxHeaderBytes', env: 'MAX_HEADER_BYTES', flag: 'max-header-bytes', kind: 'integer' },
  { key: 'maxInFlight', env: 'MAX_IN_FLIGHT', flag: 'max-in-flight', kind: 'integer' },
  { key: 'maxConnections', env: 'MAX_CONNECTIONS', flag: 'max-connections', kind: 'integer' },
  { key: 'requestTimeoutMs', env: 'REQUEST_TIMEOUT_MS', flag: 'request-timeout-ms', kind: 'integer' },
  {
    key: 'maxEventLoopDelayMs',
    env: 'MAX_EVENT_LOOP_DELAY_MS',
    flag: 'max-event-loop-delay-ms',
    kind: 'integer',
  },
  { key: 'maxHeapUsedBytes', env: 'MAX_HEAP_USED_BYTES', flag: 'max-heap-used-bytes', kind: 'integer' },
  { key: 'maxRssBytes', env: 'MAX_RSS_BYTES', flag: 'max-rss-bytes', kind: 'integer' },
  { key: 'rateLimitMax', env: 'RATE_LIMIT_MAX', flag: 'rate-limit-max', kind: 'integer' },
  { key: 'rateLimitWindowMs', env: 'RATE_LIMIT_WINDOW_MS', flag: 'rate-limit-window-ms', kind: 'integer' },
  { key: 'logLevel', env: 'LOG_LEVEL', flag: 'log-level', kind: 'string' },
]

/** The repository root: the nearest ancestor of this module holding package.json (works from dist/ too). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('cannot locate the project root (no package.json above server/)')
    dir = parent
  }
  return dir
}

/** Committed zoo of tiny real models used by the tests and served until a trained zoo exists. */
export const FIXTURE_ZOO_DIR = join(projectRoot(), 'test', 'fixtures', 'zoo')
export const DEFAULT_ZOO_DIR = join(projectRoot(), 'models')

/**
 * `models/` when it holds a manifest, else the fixture zoo, so `npm start` works on a fresh clone
 * before the training pipeline has published anything (app.ts logs which one it serves).
 */
export function defaultZooDir(): string {
  return existsSync(join(DEFAULT_ZOO_DIR, 'manifest.json')) ? DEFAULT_ZOO_DIR : FIXTURE_ZOO_DIR
}

/**
 * Thread defaults: inference is CPU-bound, so workers × intra-op threads ≈ cores. Half the cores
 * as workers (capped at 8, ≥1) keeps several requests in flight while each run still parallelises.
 */
export function defaultThreads(cores = availableParallelism()): {
  workerThreads: number
  intraOpThreads: number
} {
  const workerThreads = Math.max(1, Math.min(8, Math.floor(cores / 2)))
  return { workerThreads, intraOpThreads: Math.max(1, Math.floor(cores / workerThreads)) }
}

export function defaultConfig(): AppConfig {
  return {
    host: '0.0.0.0',
    port: 8080,
    grpcPort: 8081,
    zooDir: defaultZooDir(),
    executionProvider: 'auto',
    ...defaultThreads(),
    maxBodyBytes: 8 * 1024 * 1024,
    maxImagePixels: 40_000_000,
    warmupRuns: 20,
    preprocessThreads: Math.max(1, Math.floor(availableParallelism() / 4)),
    maxBatchSize: 32,
    maxQueueDelayUs: 0,
    maxQueueSize: 256,
    inferenceTimeoutMs: 30_000,
    shutdownTimeoutMs: 30_000,
    maxHeaderBytes: 16 * 1024,
    maxInFlight: 1024,
    maxConnections: 1024,
    requestTimeoutMs: 60_000,
    maxEventLoopDelayMs: 1000,
    maxHeapUsedBytes: 0,
    maxRssBytes: 0,
    rateLimitMax: 0,
    rateLimitWindowMs: 60_000,
    logLevel: 'info',
  }
}

/** Raised for any invalid setting; `problems` holds one line per bad key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

const checkConfig = Compile(AppConfigSchema)

function parseRaw(spec: KeySpec, raw: string, source: string, problems: string[]): unknown {
  if (spec.kind === 'string') return raw
  const trimmed = raw.trim()
  if (!/^-?\d+$/.test(trimmed)) {
    problems.push(`${source}: expected an integer, got ${JSON.stringify(raw)}`)
    return undefined
  }
  return Number(trimmed)
}

export interface ResolveConfigInput {
  env?: NodeJS.ProcessEnv
  argv?: readonly string[]
  overrides?: Partial<AppConfig>
}

/** Parses the command-line flags; returns `help: true` when --help/-h was given. */
function parseFlags(argv: readonly string[]): { values: Record<string, string | undefined>; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  }
  for (const spec of KEYS) options[spec.flag] = { type: 'string' }
  try {
    const { values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false })
    const { help, ...rest } = values
    return { values: rest as Record<string, string | undefined>, help: help === true }
  } catch (error) {
    throw new ConfigError([(error as Error).message])
  }
}

/**
 * Merges defaults < environment < flags < overrides and validates the result.
 * Worker/intra-op defaults are derived together: setting only WORKER_THREADS re-derives the
 * intra-op default so the product still matches the core count.
 */
export function resolveConfig(input: ResolveConfigInput = {}): { config: AppConfig; help: boolean } {
  const problems: string[] = []
  const merged: Record<string, unknown> = { ...defaultConfig() }
  const explicit = new Set<string>()
  const flags = input.argv ? parseFlags(input.argv) : { values: {}, help: false }

  for (const spec of KEYS) {
    const envValue = input.env?.[spec.env]
    if (envValue !== undefined && envValue !== '') {
      const parsed = parseRaw(spec, envValue, spec.env, problems)
      if (parsed !== undefined) {
        merged[spec.key] = parsed
        explicit.add(spec.key)
      }
    }
    const flagValue = flags.values[spec.flag]
    if (flagValue !== undefined) {
      const parsed = parseRaw(spec, flagValue, `--${spec.flag}`, problems)
      if (parsed !== undefined) {
        merged[spec.key] = parsed
        explicit.add(spec.key)
      }
    }
  }
  for (const [key, value] of Object.entries(input.overrides ?? {}) as [string, unknown][]) {
    if (value === undefined) continue
    merged[key] = value
    explicit.add(key)
  }
  if (
    explicit.has('workerThreads') &&
    !explicit.has('intraOpThreads') &&
    typeof merged.workerThreads === 'number'
  ) {
    merged.intraOpThreads = Math.max(
      1,
      Math.floor(availableParallelism() / Math.max(1, merged.workerThreads)),
    )
  }
  if (typeof merged.zooDir === 'string') merged.zooDir = resolve(merged.zooDir)

  if (problems.length === 0 && !checkConfig.Check(merged)) {
    for (const error of checkConfig.Errors(merged)) {
      const key = error.instancePath.replace(/^\//, '') || '(root)'
      const spec = KEYS.find((k) => k.key === key)
      const name = spec ? `${key} (${spec.env} / --${spec.flag})` : key
      problems.push(`${name}: ${error.message}`)
    }
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return { config: merged as AppConfig, help: flags.help }
}

/** Text for --help, generated from the schema so it cannot drift from the keys. */
export function helpText(): string {
  const defaults = defaultConfig()
  const lines = [
    'Usage: node dist/server/main.js [options]',
    '',
    'Every option can also be set through the environment variable shown; flags win over the environment.',
    '',
  ]
  for (const spec of KEYS) {
    const schema = AppConfigSchema.properties[spec.key] as { description?: string }
    const def = defaults[spec.key]
    const shownDefault = def === undefined ? '' : ` (default: ${String(def)})`
    lines.push(`  --${spec.flag} <value>`.padEnd(32) + spec.env)
    lines.push(`      ${schema.description ?? ''}${shownDefault}`)
  }
  lines.push('  -h, --help                    print this text')
  return lines.join('\n')
}
