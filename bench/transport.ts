/**
 * Transport benchmark: `npm run bench:transport` (≈3 min on a 2-core host) or `-- --quick`.
 * The Open Inference Protocol's two transports on the same server, the same model and the same
 * FP32 tensor, side by side in one run:
 *   - HTTP: POST /v2/models/{m}/infer with the binary tensor data extension (a JSON header with
 *     `binary_data_size`, the tensor's bytes after it, every output returned binary), as
 *     tritonclient.http sends it, over keep-alive raw-socket connections (bench/lib/client.ts);
 *   - gRPC: inference.GRPCInferenceService/ModelInfer with `raw_input_contents` (raw outputs), as
 *     tritonclient.grpc sends it, through a grpc-js client on one channel (HTTP/2 multiplexing, as
 *     gRPC clients do).
 * Sections, per model (the zoo's smallest and largest):
 *  1. overhead — one request at a time, the two transports and a bare in-process session.run
 *     interleaved request by request, in rounds; medians of round medians; plus each protocol's
 *     round trip without inference (GET /v2/health/live, ServerLive), interleaved the same way;
 *  2. throughput — closed-loop clients at each level, the transports alternating (order swapped
 *     per repeat); requests per second, latency percentiles, and the server's CPU time per request
 *     (from /proc: what each transport costs the server, whatever else the machine is doing).
 * Output: bench/results/<name>.json and .md (`--out DIR`, `--name NAME`).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import * as grpc from '@grpc/grpc-js'
import { loadServices } from '../server/grpc/proto.js'
import { loadZoo } from '../server/zoo/load-zoo.js'
import type { ModelEntry } from '../server/zoo/model-entry.js'
import { closedLoop, closedLoopOf, Connection, encodeRequest } from './lib/client.js'
import { InProcess } from './lib/inprocess.js'
import { freePort, HOST, startServer, type Child } from './lib/processes.js'
import { fmt, median, percentile, round } from './lib/stats.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

interface Options {
  quick: boolean
  fromSource: boolean
  zooDir: string
  outDir: string
  name: string
  seconds: number
  repeats: number
  levels: number[]
  rounds: number
  perRound: number
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      'from-source': { type: 'boolean', default: false },
      zoo: { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(
      'usage: npm run bench:transport -- [--quick] [--from-source] [--zoo DIR] [--out DIR] [--name NAME]',
    )
    process.exit(0)
  }
  const quick = values.quick
  const models = join(ROOT, 'models')
  return {
    quick,
    fromSource: values['from-source'],
    zooDir: resolve(
      values.zoo ??
        (existsSync(join(models, 'manifest.json')) ? models : join(ROOT, 'test', 'fixtures', 'zoo')),
    ),
    outDir: resolve(values.out ?? join(ROOT, 'bench', 'results')),
    name: values.name ?? (quick ? 'transport-quick' : 'transport'),
    seconds: quick ? 0.5 : 4,
    repeats: quick ? 1 : 2,
    levels: quick ? [1, 4] : [1, 8, 32],
    rounds: quick ? 2 : 5,
    perRound: quick ? 10 : 60,
  }
}

function log(message: string): void {
  process.stderr.write(`[bench:transport] ${message}\n`)
}

/** A deterministic FP32 input for `model`, batch 1. */
function inputTensor(model: ModelEntry): { bytes: Buffer; dims: number[] } {
  const { channels, size } = model.input
  const values = new Float32Array(channels * size * size)
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i) * 0.5
  return { bytes: Buffer.from(values.buffer), dims: [1, channels, size, size] }
}

/** POST /v2/models/{m}/infer, binary tensor data extension both ways (tritonclient.http's framing). */
function httpRequest(model: ModelEntry, tensor: { bytes: Buffer; dims: number[] }): Buffer {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [
        {
          name: model.input.name,
          datatype: 'FP32',
          shape: tensor.dims,
          parameters: { binary_data_size: tensor.bytes.length },
        },
      ],
      parameters: { binary_data_output: true },
    }),
  )
  return encodeRequest(
    {
      method: 'POST',
      path: `/v2/models/${model.name}/infer`,
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
      body: Buffer.concat([header, tensor.bytes]),
    },
    HOST,
  )
}

const LIVE = encodeRequest({ method: 'GET', path: '/v2/health/live' }, HOST)

interface GrpcInferResponse {
  model_name: string
  raw_output_contents: Buffer[]
}

/** A grpc-js ModelInfer client on one channel; `infer()` resolves with the latency, ms. */
class GrpcInfer {
  private readonly client: grpc.Client
  private readonly request: unknown

  constructor(port: number, model: ModelEntry, tensor: { bytes: Buffer; dims: number[] }) {
    const { inference } = loadServices()
    this.client = new inference(`${HOST}:${port}`, grpc.credentials.createInsecure())
    this.request = {
      model_name: model.name,
      inputs: [{ name: model.input.name, datatype: 'FP32', shape: tensor.dims }],
      raw_input_contents: [tensor.bytes],
    }
  }

  response(): Promise<GrpcInferResponse> {
    return this.call('ModelInfer', this.request)
  }

  private call<T>(name: string, request: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      type Unary = (
        this: grpc.Client,
        request: unknown,
        callback: (error: grpc.ServiceError | null, response: T) => void,
      ) => void
      const method = (this.client as unknown as Record<string, Unary | undefined>)[name]
      if (method === undefined) throw new Error(`no ${name} method`)
      method.call(this.client, request, (error, response) => {
        if (error) reject(error)
        else resolve(response)
      })
    })
  }

  /** One ServerLive round trip (no inference), ms. */
  async live(): Promise<number> {
    const begin = performance.now()
    await this.call('ServerLive', {})
    return performance.now() - begin
  }

  async infer(): Promise<number> {
    const begin = performance.now()
    await this.response()
    return performance.now() - begin
  }

  close(): void {
    this.client.close()
  }
}

/** The logits of an HTTP binary response (the first output's bytes after the JSON header). */
function httpLogits(body: Buffer, headerLength: number): Float32Array {
  const header = JSON.parse(body.subarray(0, headerLength).toString()) as {
    outputs: { name: string; parameters: { binary_data_size: number } }[]
  }
  const size = header.outputs[0]?.parameters.binary_data_size ?? 0
  const bytes = body.subarray(headerLength, headerLength + size)
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
}

interface OverheadResult {
  model: string
  mflops: number
  httpMs: number
  grpcMs: number
  bareRunMs: number
  /** Latency minus the bare session.run: what the transport and the server add. */
  httpOverheadMs: number
  grpcOverheadMs: number
  grpcMinusHttpMs: number
  /** The bare protocol round trip, no inference: GET /v2/health/live vs ServerLive. */
  liveHttpMs: number
  liveGrpcMs: number
  rounds: number
  requestsPerRound: number
}

/** Section 1: one request at a time, HTTP, gRPC and bare session.run interleaved. */
async function overhead(
  server: Child,
  grpcPort: number,
  model: ModelEntry,
  options: Options,
): Promise<OverheadResult> {
  const tensor = inputTensor(model)
  const connection = new Connection(HOST, server.port)
  const request = httpRequest(model, tensor)
  const client = new GrpcInfer(grpcPort, model, tensor)
  const local = await InProcess.create(model, availableParallelism())
  try {
    // Warm each path, and check that both transports answer the same logits.
    const warm = await connection.send(request)
    if (warm.status !== 200) throw new Error(`HTTP ${warm.status}: ${warm.body.toString().slice(0, 300)}`)
    const viaGrpc = await client.response()
    const grpcLogits = viaGrpc.raw_output_contents[0] ?? Buffer.alloc(0)
    const viaHttp = httpLogits(warm.body, jsonEnd(warm.body))
    if (!Buffer.from(viaHttp.buffer).equals(grpcLogits)) throw new Error('HTTP and gRPC logits differ')
    await local.runOnceMs()
    const http: number[] = []
    const viaGrpcMs: number[] = []
    const bare: number[] = []
    const liveHttp: number[] = []
    const liveGrpc: number[] = []
    for (let r = 0; r < options.rounds; r++) {
      const h: number[] = []
      const g: number[] = []
      const b: number[] = []
      const lh: number[] = []
      const lg: number[] = []
      for (let i = 0; i < options.perRound; i++) {
        const httpFirst = (r + i) % 2 === 0
        if (httpFirst) h.push((await connection.send(request)).latencyMs)
        g.push(await client.infer())
        b.push(await local.runOnceMs())
        if (!httpFirst) h.push((await connection.send(request)).latencyMs)
        lh.push((await connection.send(LIVE)).latencyMs)
        lg.push(await client.live())
      }
      http.push(median(h))
      viaGrpcMs.push(median(g))
      bare.push(median(b))
      liveHttp.push(median(lh))
      liveGrpc.push(median(lg))
    }
    const httpMs = median(http)
    const grpcMs = median(viaGrpcMs)
    const bareRunMs = median(bare)
    return {
      model: model.name,
      mflops: model.mflops,
      httpMs: round(httpMs),
      grpcMs: round(grpcMs),
      bareRunMs: round(bareRunMs),
      httpOverheadMs: round(httpMs - bareRunMs),
      grpcOverheadMs: round(grpcMs - bareRunMs),
      grpcMinusHttpMs: round(grpcMs - httpMs),
      liveHttpMs: round(median(liveHttp)),
      liveGrpcMs: round(median(liveGrpc)),
      rounds: options.rounds,
      requestsPerRound: options.perRound,
    }
  } finally {
    connection.close()
    client.close()
    await local.close()
  }
}

/** Where the JSON header of a binary response ends: its closing brace at nesting depth 0. */
function jsonEnd(body: Buffer): number {
  let depth = 0
  let inString = false
  for (let i = 0; i < body.length; i++) {
    const c = body[i]
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b) depth++
    else if (c === 0x7d && --depth === 0) return i + 1
  }
  throw new Error('no JSON header in the response')
}

interface LevelRun {
  rps: number
  p50Ms: number
  p99Ms: number
  /** Server CPU time (all threads) per answered request, ms. */
  serverCpuMsPerRequest: number
  failures: number
}

interface LevelResult {
  clients: number
  http: LevelRun
  grpc: LevelRun
  /** gRPC requests per second over HTTP's. */
  grpcToHttp: number
}

function levelRun(latencies: number[], failures: number, elapsedMs: number, cpuMs: number): LevelRun {
  return {
    rps: (latencies.length * 1000) / elapsedMs,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    serverCpuMsPerRequest: cpuMs / Math.max(1, latencies.length),
    failures,
  }
}

function medianRun(runs: LevelRun[]): LevelRun {
  const pick = (key: keyof LevelRun) => round(median(runs.map((r) => r[key])))
  return {
    rps: round(median(runs.map((r) => r.rps)), 1),
    p50Ms: pick('p50Ms'),
    p99Ms: pick('p99Ms'),
    serverCpuMsPerRequest: pick('serverCpuMsPerRequest'),
    failures: runs.reduce((sum, r) => sum + r.failures, 0),
  }
}

/** Section 2: closed-loop load per level, HTTP and gRPC alternating. */
async function throughput(
  server: Child,
  grpcPort: number,
  model: ModelEntry,
  options: Options,
): Promise<LevelResult[]> {
  const tensor = inputTensor(model)
  const request = httpRequest(model, tensor)
  const client = new GrpcInfer(grpcPort, model, tensor)
  const durationMs = options.seconds * 1000
  const results: LevelResult[] = []
  try {
    for (const clients of options.levels) {
      const http: LevelRun[] = []
      const viaGrpc: LevelRun[] = []
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        const runHttp = async () => {
          const cpuBefore = server.cpuMs()
          const run = await closedLoop(HOST, server.port, request, clients, durationMs)
          const ok = run.responses.filter((r) => r.status === 200)
          // The loop's CPU window includes its warm-up; scale to the counted share of requests.
          const cpu = server.cpuMs() - cpuBefore
          http.push(
            levelRun(
              ok.map((r) => r.latencyMs),
              run.errors + run.responses.length - ok.length,
              run.elapsedMs,
              cpu * (run.elapsedMs / (run.elapsedMs + Math.min(500, durationMs / 4))),
            ),
          )
        }
        const runGrpc = async () => {
          const cpuBefore = server.cpuMs()
          // Every caller on the one channel, as gRPC clients multiplex their calls.
          const run = await closedLoopOf(() => client.infer(), clients, durationMs)
          const cpu = server.cpuMs() - cpuBefore
          viaGrpc.push(
            levelRun(
              run.responses,
              run.errors,
              run.elapsedMs,
              cpu * (run.elapsedMs / (run.elapsedMs + Math.min(500, durationMs / 4))),
            ),
          )
        }
        if (repeat % 2 === 0) {
          await runHttp()
          await runGrpc()
        } else {
          await runGrpc()
          await runHttp()
        }
      }
      const h = medianRun(http)
      const g = medianRun(viaGrpc)
      results.push({ clients, http: h, grpc: g, grpcToHttp: round(g.rps / h.rps) })
      log(`  ${model.name} ${clients} clients: HTTP ${h.rps} req/s, gRPC ${g.rps} req/s`)
    }
  } finally {
    client.close()
  }
  return results
}

interface Report {
  createdAt: string
  quick: boolean
  machine: { cpu: string; cores: number; loadAtStart: number[]; loadAtEnd: number[] }
  zooDir: string
  serverEnv: Record<string, string>
  settings: { seconds: number; repeats: number; levels: number[]; rounds: number; perRound: number }
  models: { overhead: OverheadResult; throughput: LevelResult[] }[]
}

function markdown(report: Report): string {
  const lines = [
    `# Transport benchmark (${report.createdAt})`,
    '',
    `${report.machine.cpu}, ${report.machine.cores} cores; load average at start ${report.machine.loadAtStart.join(' / ')}, at end ${report.machine.loadAtEnd.join(' / ')}. Zoo \`${report.zooDir}\`; server env ${JSON.stringify(report.serverEnv)}.`,
    '',
    'HTTP = POST /v2/models/{m}/infer with binary tensors (JSON header + bytes, outputs binary); gRPC = ModelInfer with raw_input_contents (raw outputs), one grpc-js channel. Batch 1, FP32.',
    '',
    `## Overhead, one request at a time (median of ${report.settings.rounds} round medians × ${report.settings.perRound} requests)`,
    '',
    '| model | MFLOPs | HTTP ms | gRPC ms | bare session.run ms | HTTP overhead ms | gRPC overhead ms | gRPC − HTTP ms | no inference: HTTP live / gRPC ServerLive ms |',
    '|---|---|---|---|---|---|---|---|---|',
  ]
  for (const { overhead: o } of report.models) {
    lines.push(
      `| ${o.model} | ${fmt(o.mflops, 2)} | ${fmt(o.httpMs, 3)} | ${fmt(o.grpcMs, 3)} | ${fmt(o.bareRunMs, 3)} | ${fmt(o.httpOverheadMs, 3)} | ${fmt(o.grpcOverheadMs, 3)} | ${fmt(o.grpcMinusHttpMs, 3)} | ${fmt(o.liveHttpMs, 3)} / ${fmt(o.liveGrpcMs, 3)} |`,
    )
  }
  lines.push(
    '',
    `## Throughput, closed loop (${report.settings.seconds} s windows, median of ${report.settings.repeats}, transports alternating)`,
    '',
    '| model | clients | HTTP req/s | gRPC req/s | gRPC / HTTP | HTTP p50 / p99 ms | gRPC p50 / p99 ms | server CPU ms/req HTTP | gRPC | failures |',
    '|---|---|---|---|---|---|---|---|---|---|',
  )
  for (const { overhead: o, throughput: levels } of report.models) {
    for (const l of levels) {
      lines.push(
        `| ${o.model} | ${l.clients} | ${fmt(l.http.rps, 1)} | ${fmt(l.grpc.rps, 1)} | ${fmt(l.grpcToHttp, 2)} | ${fmt(l.http.p50Ms, 2)} / ${fmt(l.http.p99Ms, 2)} | ${fmt(l.grpc.p50Ms, 2)} / ${fmt(l.grpc.p99Ms, 2)} | ${fmt(l.http.serverCpuMsPerRequest, 3)} | ${fmt(l.grpc.serverCpuMsPerRequest, 3)} | ${l.http.failures + l.grpc.failures} |`,
      )
    }
  }
  return `${lines.join('\n')}\n`
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  if (!options.fromSource && !existsSync(join(ROOT, 'dist', 'server', 'main.js')))
    throw new Error('dist/ is missing: run npm run build (or pass --from-source)')
  const loadAtStart = loadavg().map((v) => round(v, 2))
  const zoo = await loadZoo(options.zooDir)
  const ready = zoo.models.filter((m) => m.ready)
  if (ready.length === 0) throw new Error(`no loadable model in ${options.zooDir}`)
  const bySize = [...ready].sort((a, b) => a.mflops - b.mflops)
  const models = [...new Set([bySize[0], bySize.at(-1)])].filter((m) => m !== undefined)
  const grpcPort = await freePort()
  const serverEnv = { WARMUP_RUNS: options.quick ? '2' : '20', GRPC_PORT: String(grpcPort) }
  log(`starting the server over ${options.zooDir} (gRPC on ${grpcPort})`)
  const server = await startServer({
    root: ROOT,
    zooDir: options.zooDir,
    env: serverEnv,
    fromSource: options.fromSource,
  })
  const results: Report['models'] = []
  try {
    for (const model of models) {
      const o = await overhead(server, grpcPort, model, options)
      log(`  overhead ${model.name}: ${JSON.stringify(o)}`)
      results.push({ overhead: o, throughput: await throughput(server, grpcPort, model, options) })
    }
  } finally {
    await server.stop()
  }
  const report: Report = {
    createdAt: new Date().toISOString(),
    quick: options.quick,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: availableParallelism(),
      loadAtStart,
      loadAtEnd: loadavg().map((v) => round(v, 2)),
    },
    zooDir: relative(ROOT, options.zooDir) || '.',
    serverEnv: { WARMUP_RUNS: serverEnv.WARMUP_RUNS, GRPC_PORT: '<free port>' },
    settings: {
      seconds: options.seconds,
      repeats: options.repeats,
      levels: options.levels,
      rounds: options.rounds,
      perRound: options.perRound,
    },
    models: results,
  }
  mkdirSync(options.outDir, { recursive: true })
  const path = join(options.outDir, `${options.name}.json`)
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(path.replace(/\.json$/, '.md'), markdown(report))
  log(`wrote ${path} and its .md`)
}

await main()
