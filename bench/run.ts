/**
 * Serving benchmark: `npm run bench` (full, ≈8 min on a 2-core host) or `npm run bench -- --quick`
 * (seconds; the fixture zoo, to prove the script works). Loopback only; every figure is a ratio of
 * two things measured side by side in this one run, interleaved and repeated, reported as medians,
 * because the machine may be shared and noisy.
 *
 * Sections, per zoo (the served zoo — `--zoo DIR`, default models/ or the fixture zoo — and, unless
 * `--no-imagenet`, full-size AlphaNet-A0/A4/A6 with random weights exported by
 * bench/export_imagenet.py into bench/.cache/):
 *  1. overhead — one request at a time: HTTP POST /v1/classify vs the same decode + preprocess +
 *     session.run + top-5 in-process, per model;
 *  2. throughput — 1…64 closed-loop clients vs the in-process pipeline's best (1, 2 or 4 lanes)
 *     and the runtime's best batched session.run; plus the tensor path (OIP binary /v2 infer);
 *  3. event-loop health — GET /healthz latency while 64 clients saturate the server;
 *  4. SLO — an open-loop load ramp (up, then down) with maxLatencyMs: share of requests answered
 *     within the budget and mean top-1 served, load-aware selection vs each model fixed;
 *  5. peer — the same model behind a PyTorch eager http.server (bench/pytorch_peer.py), same load.
 * Output: bench/results/<name>.json and .md (`--out DIR` to write elsewhere).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { spawnSync } from 'node:child_process'
import { loadZoo } from '../server/zoo/load-zoo.js'
import type { ModelEntry } from '../server/zoo/model-entry.js'
import { cascadeComparison, cascadeMarkdown, type CascadeBench } from './cascade.js'
import { closedLoop, Connection, ConnectionPool, encodeRequest, type Response } from './lib/client.js'
import { syntheticPhoto } from './lib/images.js'
import { InProcess } from './lib/inprocess.js'
import { HOST, startPeer, startServer, type Child } from './lib/processes.js'
import { fmt, mean, median, percentile, round } from './lib/stats.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const PYTHON = '/usr/bin/python3'

interface Options {
  quick: boolean
  fromSource: boolean
  /** Benchmark only the zoo with this label (`zoo` or `imagenet`). */
  only: string | undefined
  zooDir: string
  imagenet: boolean
  peer: boolean
  outDir: string
  name: string
  seconds: number
  repeats: number
  sloSeconds: number
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      'from-source': { type: 'boolean', default: false },
      only: { type: 'string' },
      zoo: { type: 'string' },
      'no-imagenet': { type: 'boolean', default: false },
      'no-peer': { type: 'boolean', default: false },
      peer: { type: 'boolean', default: false },
      out: { type: 'string' },
      name: { type: 'string' },
      seconds: { type: 'string' },
      repeats: { type: 'string' },
      'slo-seconds': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(
      'usage: npm run bench -- [--quick] [--from-source] [--only zoo|imagenet] [--zoo DIR] [--no-imagenet]\n' +
        '                        [--no-peer] [--peer] [--out DIR] [--name NAME] [--seconds S per load level]\n' +
        '                        [--repeats N] [--slo-seconds S for all ramps]\n' +
        '       npm run bench -- --render RESULTS.json   (recompute targets, rewrite the Markdown)',
    )
    process.exit(0)
  }
  const quick = values.quick
  const models = join(ROOT, 'models')
  const zooDir = resolve(
    values.zoo ??
      (existsSync(join(models, 'manifest.json')) ? models : join(ROOT, 'test', 'fixtures', 'zoo')),
  )
  const number = (raw: string | undefined, fallback: number, what: string) => {
    if (raw === undefined) return fallback
    const value = Number(raw)
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${what} must be a positive number`)
    return value
  }
  return {
    quick,
    fromSource: values['from-source'],
    only: values.only,
    zooDir,
    imagenet: !quick && !values['no-imagenet'],
    peer: quick ? values.peer : !values['no-peer'],
    outDir: resolve(values.out ?? join(ROOT, 'bench', 'results')),
    name: values.name ?? (quick ? 'quick' : 'latest'),
    seconds: number(values.seconds, quick ? 0.3 : 2.5, 'seconds'),
    repeats: Math.round(number(values.repeats, quick ? 1 : 2, 'repeats')),
    sloSeconds: number(values['slo-seconds'], quick ? 1 : 24, 'slo-seconds'),
  }
}

/** `path` relative to the repository (reports carry no absolute paths of the machine they ran on). */
function repoPath(path: string): string {
  const inside = relative(ROOT, path)
  return inside === '' ? '.' : inside.startsWith('..') ? basename(path) : inside
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- requests -------------------------------------------------------------------------------------

function classifyRequest(image: Buffer, query: string): Buffer {
  return encodeRequest(
    { method: 'POST', path: `/v1/classify${query}`, headers: { 'content-type': 'image/jpeg' }, body: image },
    HOST,
  )
}

function tensorRequest(model: ModelEntry): Buffer {
  const { channels, size } = model.input
  const values = new Float32Array(channels * size * size)
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i) * 0.5
  return encodeRequest(
    {
      method: 'POST',
      path: `/v2/models/${model.name}/infer`,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' },
      body: Buffer.from(values.buffer),
    },
    HOST,
  )
}

const HEALTH = encodeRequest({ method: 'GET', path: '/healthz' }, HOST)

function ok(responses: readonly Response[]): Response[] {
  return responses.filter((r) => r.status === 200)
}

// ---- sections -------------------------------------------------------------------------------------

interface OverheadResult {
  model: string
  mflops: number
  httpMs: number
  inProcessMs: number
  overheadMs: number
  ratio: number
  /**
   * The same difference with each side's compute (decode + preprocess + session.run, as timed by
   * the server and by the in-process pipeline) taken out of every sample first: what serving adds,
   * without the compute-time noise that dominates large models on a shared machine.
   */
  nonComputeOverheadMs: number
  /** Median `timing.inferenceMs` the server reported for these one-at-a-time requests. */
  idleInferenceMs: number
  /** Median bare session.run at batch 1 in-process, same session options. */
  bareRunMs: number
  /** idleInferenceMs / bareRunMs. */
  inferenceRatio: number
  rounds: number
  requestsPerRound: number
}

/** Section 1: sequential HTTP vs in-process, interleaved in rounds; medians of round medians. */
async function overhead(
  server: Child,
  model: ModelEntry,
  image: Buffer,
  inProcess: InProcess,
  options: Options,
  perRound: number,
): Promise<OverheadResult> {
  const connection = new Connection(HOST, server.port)
  const request = classifyRequest(image, `?model=${model.name}`)
  const rounds = options.quick ? 2 : 5
  const http: number[] = []
  const local: number[] = []
  const httpRest: number[] = []
  const localRest: number[] = []
  const served: number[] = []
  const bare: number[] = []
  const sendTimed = async () => {
    const response = await connection.send(request)
    const body = JSON.parse(response.body.toString()) as { timing: { decodeMs: number; inferenceMs: number } }
    served.push(body.timing.inferenceMs)
    return { totalMs: response.latencyMs, computeMs: body.timing.decodeMs + body.timing.inferenceMs }
  }
  // Warm both paths (first decode in a worker, first sharp call here).
  await connection.send(request)
  await inProcess.classify(image)
  for (let round = 0; round < rounds; round++) {
    const h: { totalMs: number; computeMs: number }[] = []
    const l: { totalMs: number; computeMs: number }[] = []
    // Alternate which side goes first, and interleave request by request.
    for (let i = 0; i < perRound; i++) {
      const first = (round + i) % 2 === 0
      if (first) h.push(await sendTimed())
      l.push(await inProcess.classifyTimed(image))
      bare.push(await inProcess.runOnceMs())
      if (!first) h.push(await sendTimed())
    }
    http.push(median(h.map((x) => x.totalMs)))
    local.push(median(l.map((x) => x.totalMs)))
    httpRest.push(median(h.map((x) => x.totalMs - x.computeMs)))
    localRest.push(median(l.map((x) => x.totalMs - x.computeMs)))
  }
  connection.close()
  const httpMs = median(http)
  const inProcessMs = median(local)
  return {
    model: model.name,
    mflops: model.mflops,
    httpMs: round(httpMs),
    inProcessMs: round(inProcessMs),
    overheadMs: round(httpMs - inProcessMs),
    nonComputeOverheadMs: round(median(httpRest) - median(localRest)),
    ratio: round(httpMs / inProcessMs),
    idleInferenceMs: round(median(served)),
    bareRunMs: round(median(bare)),
    inferenceRatio: round(median(served) / median(bare)),
    rounds,
    requestsPerRound: perRound,
  }
}

interface LevelResult {
  clients: number
  rps: number
  p50Ms: number
  p99Ms: number
  failures: number
  serverCpuMsPerRequest: number
}

interface HealthResult {
  clients: number
  probes: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

interface ThroughputResult {
  model: string
  levels: LevelResult[]
  bestRps: number
  bestClients: number
  inProcessPipelineRps: number
  inProcessLanes: number
  runtimeBatchedRps: number
  runtimeBatch: number
  tensorPathRps: number
  ratioToInProcess: number
  ratioToRuntime: number
  tensorRatioToRuntime: number
  health: HealthResult
}

/** Probes GET /healthz every `everyMs` on its own connection until `stop` resolves. */
async function probeHealth(port: number, everyMs: number, stop: Promise<unknown>): Promise<number[]> {
  const connection = new Connection(HOST, port)
  const samples: number[] = []
  const state = { running: true }
  void stop.then(() => (state.running = false))
  while (state.running) {
    const started = performance.now()
    try {
      samples.push((await connection.send(HEALTH)).latencyMs)
    } catch {
      samples.push(Number.POSITIVE_INFINITY)
    }
    const rest = everyMs - (performance.now() - started)
    if (rest > 0) await sleep(rest)
  }
  connection.close()
  return samples
}

async function level(server: Child, request: Buffer, clients: number, seconds: number): Promise<LevelResult> {
  const cpuBefore = server.cpuMs()
  const result = await closedLoop(HOST, server.port, request, clients, seconds * 1000)
  const cpu = server.cpuMs() - cpuBefore
  const good = ok(result.responses)
  const latencies = good.map((r) => r.latencyMs)
  return {
    clients,
    rps: round((good.length * 1000) / result.elapsedMs, 1),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
    failures: result.responses.length - good.length + result.errors,
    // CPU over the whole window incl. warm-up, per counted request: an upper bound.
    serverCpuMsPerRequest: round(cpu / Math.max(1, good.length)),
  }
}

const LEVELS = [1, 2, 4, 8, 16, 32, 64]

/** Section 2 (+3): the client ladder, interleaved with the in-process and runtime baselines. */
async function throughput(
  server: Child,
  model: ModelEntry,
  image: Buffer,
  inProcess: InProcess,
  options: Options,
  maxBatch: number,
): Promise<ThroughputResult> {
  const request = classifyRequest(image, `?model=${model.name}`)
  const levels = options.quick ? [1, 4] : LEVELS
  const perLevel = new Map<number, LevelResult[]>()
  const lanes = options.quick ? [1, 2] : [1, 2, 4]
  const batches: number[] = []
  for (let b = 1; b <= maxBatch; b *= 2) batches.push(b)
  const pipeline = new Map<number, number[]>()
  const runtime = new Map<number, number[]>()
  const tensor: number[] = []
  const healthSamples: number[] = []
  const seconds = options.seconds
  for (let rep = 0; rep < options.repeats; rep++) {
    for (const k of lanes) {
      pipeline.set(k, [
        ...(pipeline.get(k) ?? []),
        await inProcess.pipelineThroughput(image, k, seconds * 1000),
      ])
    }
    const order = rep % 2 === 0 ? levels : [...levels].reverse()
    for (const clients of order) {
      const top = clients === Math.max(...levels)
      let stopProbe: () => void = () => undefined
      const stopped = new Promise<void>((resolve) => (stopProbe = resolve))
      const probing = top ? probeHealth(server.port, 10, stopped) : Promise.resolve([])
      const result = await level(server, request, clients, seconds)
      stopProbe()
      healthSamples.push(...(await probing))
      perLevel.set(clients, [...(perLevel.get(clients) ?? []), result])
      log(`  ${model.name} ${clients} clients: ${result.rps} req/s, p50 ${result.p50Ms} ms`)
    }
    for (const b of batches) {
      runtime.set(b, [...(runtime.get(b) ?? []), await inProcess.runtimeThroughput(b, seconds * 1000)])
    }
    const tensorLevel = await level(server, tensorRequest(model), options.quick ? 4 : 16, seconds)
    tensor.push(tensorLevel.rps)
  }
  const levelResults = levels.map((clients) => {
    const runs = perLevel.get(clients) ?? []
    return {
      clients,
      rps: round(median(runs.map((r) => r.rps)), 1),
      p50Ms: round(median(runs.map((r) => r.p50Ms))),
      p99Ms: round(median(runs.map((r) => r.p99Ms))),
      failures: runs.reduce((sum, r) => sum + r.failures, 0),
      serverCpuMsPerRequest: round(median(runs.map((r) => r.serverCpuMsPerRequest))),
    }
  })
  const best = levelResults.reduce((a, b) => (b.rps > a.rps ? b : a))
  const bestOf = (map: Map<number, number[]>) =>
    [...map.entries()]
      .map(([key, values]) => ({ key, value: median(values) }))
      .reduce((a, b) => (b.value > a.value ? b : a))
  const bestPipeline = bestOf(pipeline)
  const bestRuntime = bestOf(runtime)
  const tensorRps = median(tensor)
  const finite = healthSamples.filter((v) => Number.isFinite(v))
  return {
    model: model.name,
    levels: levelResults,
    bestRps: best.rps,
    bestClients: best.clients,
    inProcessPipelineRps: round(bestPipeline.value, 1),
    inProcessLanes: bestPipeline.key,
    runtimeBatchedRps: round(bestRuntime.value, 1),
    runtimeBatch: bestRuntime.key,
    tensorPathRps: round(tensorRps, 1),
    ratioToInProcess: round(best.rps / bestPipeline.value),
    ratioToRuntime: round(best.rps / bestRuntime.value),
    tensorRatioToRuntime: round(tensorRps / bestRuntime.value),
    health: {
      clients: Math.max(...levels),
      probes: healthSamples.length,
      p50Ms: round(percentile(finite, 50)),
      p99Ms: round(percentile(healthSamples, 99)),
      maxMs: round(Math.max(...healthSamples)),
    },
  }
}

// ---- SLO ramp -------------------------------------------------------------------------------------

interface SloConfigResult {
  config: string
  requests: number
  withinBudget: number
  withinBudgetShare: number
  meanTop1Served: number
  served: Record<string, number>
  /** Models served in the low-load and the peak-load thirds of the ramp (auto only tells a story). */
  servedAtLowLoad: Record<string, number>
  servedAtPeak: Record<string, number>
  errors: Record<string, number>
  p50Ms: number
  p99Ms: number
}

interface SloResult {
  budgetMs: number
  /** Length of one ramp (up and down); the configurations take turns through `repeats` of them. */
  rampSeconds: number
  repeats: number
  rateFrom: number
  rateTo: number
  arrivals: number
  configs: SloConfigResult[]
}

/** Seeded exponential inter-arrival times for a triangular rate ramp from → to → from. */
function rampArrivals(from: number, to: number, seconds: number, seed = 99): number[] {
  let state = seed >>> 0
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return (state + 0.5) / 2 ** 32
  }
  const times: number[] = []
  let t = 0
  for (;;) {
    const phase = t / seconds
    const rate = from + (to - from) * (phase < 0.5 ? phase * 2 : (1 - phase) * 2)
    t += -Math.log(random()) / Math.max(rate, 0.1)
    if (t >= seconds) break
    times.push(t * 1000)
  }
  return times
}

interface RampOutcome {
  /** Position of the arrival in its ramp, 0…1. */
  phase: number
  status: number
  latencyMs: number
  model?: string
  code?: string
}

/** Replays `arrivals` (ms offsets) open-loop against the server with one request each. */
async function runRamp(
  port: number,
  request: Buffer,
  arrivals: readonly number[],
  rampMs: number,
): Promise<RampOutcome[]> {
  const pool = new ConnectionPool(HOST, port)
  const begin = performance.now()
  const outcomes: RampOutcome[] = []
  const inFlight: Promise<void>[] = []
  for (const at of arrivals) {
    const wait = at - (performance.now() - begin)
    if (wait > 1) await sleep(wait)
    const phase = at / rampMs
    inFlight.push(
      pool.send(request).then(
        (response) => {
          let model: string | undefined
          let code: string | undefined
          try {
            const body = JSON.parse(response.body.toString()) as { model?: { name?: string }; code?: string }
            model = response.status === 200 ? body.model?.name : undefined
            code = response.status === 200 ? undefined : (body.code ?? String(response.status))
          } catch {
            code = String(response.status)
          }
          outcomes.push({ phase, status: response.status, latencyMs: response.latencyMs, model, code })
        },
        () => {
          outcomes.push({ phase, status: 0, latencyMs: Number.POSITIVE_INFINITY, code: 'transport' })
        },
      ),
    )
  }
  await Promise.all(inFlight)
  pool.close()
  return outcomes
}

/** One configuration's outcomes over every repetition of the ramp. */
function summariseRamp(
  config: string,
  outcomes: readonly RampOutcome[],
  budgetMs: number,
  top1Of: ReadonlyMap<string, number>,
): SloConfigResult {
  const count = (into: Record<string, number>, key: string) => {
    into[key] = (into[key] ?? 0) + 1
  }
  const served: Record<string, number> = {}
  const low: Record<string, number> = {}
  const peak: Record<string, number> = {}
  const errors: Record<string, number> = {}
  const top1: number[] = []
  let within = 0
  for (const o of outcomes) {
    if (o.model === undefined) {
      count(errors, o.code ?? 'unknown')
      continue
    }
    count(served, o.model)
    top1.push(top1Of.get(o.model) ?? Number.NaN)
    if (o.phase < 1 / 6 || o.phase > 5 / 6) count(low, o.model)
    if (o.phase > 1 / 3 && o.phase < 2 / 3) count(peak, o.model)
    if (o.latencyMs <= budgetMs) within++
  }
  const latencies = outcomes.filter((o) => Number.isFinite(o.latencyMs)).map((o) => o.latencyMs)
  return {
    config,
    requests: outcomes.length,
    withinBudget: within,
    withinBudgetShare: round(within / Math.max(1, outcomes.length), 4),
    meanTop1Served: round(mean(top1), 4),
    served,
    servedAtLowLoad: low,
    servedAtPeak: peak,
    errors,
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
  }
}

/**
 * Throughput (req/s) of one model with 4 closed-loop clients: enough to keep a worker busy with
 * small batches, not so many that the figure is a large-batch capacity no latency budget allows.
 */
async function capacity(server: Child, image: Buffer, model: string, seconds: number): Promise<number> {
  const result = await level(server, classifyRequest(image, `?model=${model}`), 4, seconds)
  return result.rps
}

async function slo(
  server: Child,
  models: readonly ModelEntry[],
  image: Buffer,
  options: Options,
): Promise<SloResult> {
  const ready = [...models].sort((a, b) => a.top1 - b.top1)
  const best = ready[ready.length - 1] as ModelEntry
  const cheapest = ready[0] as ModelEntry
  // Budget: 4× the most accurate model's idle HTTP latency (so it can meet it when the server is
  // quiet). Ramp: from a fifth of that model's throughput to 1.5× it — past what it can serve —
  // but no further than 0.6× the cheapest model's, so that stepping down can hold the budget.
  const connection = new Connection(HOST, server.port)
  const idle: number[] = []
  const probe = classifyRequest(image, `?model=${best.name}`)
  for (let i = 0; i < (options.quick ? 5 : 20); i++) idle.push((await connection.send(probe)).latencyMs)
  connection.close()
  const budgetMs = round(Math.max(4 * median(idle), percentile(idle, 100) * 1.5), 1)
  const capBest = await capacity(server, image, best.name, options.quick ? 0.3 : 2)
  const capCheap = await capacity(server, image, cheapest.name, options.quick ? 0.3 : 2)
  const rateFrom = round(Math.max(1, capBest / 5), 1)
  const rateTo = round(Math.max(rateFrom * 1.5, Math.min(capBest * 1.5, capCheap * 0.6)), 1)
  // The ramp is cut into repetitions, and the configurations take turns (rotating who goes first)
  // so that the shared machine's load swings hit every configuration alike.
  const repeats = options.quick ? 1 : 3
  const rampSeconds = options.sloSeconds / repeats
  const top1Of = new Map(models.map((m) => [m.name, m.top1]))
  // Quick mode: the extremes of the family only.
  const fixed = options.quick ? [cheapest, best] : ready
  const configs: { name: string; query: string }[] = [
    { name: 'auto (maxLatencyMs)', query: `?maxLatencyMs=${budgetMs}` },
    ...fixed.map((m) => ({ name: m.name, query: `?model=${m.name}` })),
  ]
  const outcomes = new Map<string, RampOutcome[]>(configs.map((c) => [c.name, []]))
  let arrivalsTotal = 0
  for (let rep = 0; rep < repeats; rep++) {
    const arrivals = rampArrivals(rateFrom, rateTo, rampSeconds, 99 + rep)
    arrivalsTotal += arrivals.length
    for (let k = 0; k < configs.length; k++) {
      const config = configs[(k + rep) % configs.length] as { name: string; query: string }
      const ramp = await runRamp(
        server.port,
        classifyRequest(image, config.query),
        arrivals,
        rampSeconds * 1000,
      )
      outcomes.get(config.name)?.push(...ramp)
      // Let the queues drain before the next configuration.
      await sleep(options.quick ? 100 : 1500)
    }
  }
  log(
    `  SLO: budget ${budgetMs} ms, ${repeats} × ramp ${rateFrom} → ${rateTo} → ${rateFrom} req/s, ${arrivalsTotal} arrivals`,
  )
  const results = configs.map((c) => summariseRamp(c.name, outcomes.get(c.name) ?? [], budgetMs, top1Of))
  for (const r of results) {
    log(`  SLO ${r.config}: ${(r.withinBudgetShare * 100).toFixed(2)}% within, top-1 ${r.meanTop1Served}`)
  }
  return {
    budgetMs,
    rampSeconds,
    repeats,
    rateFrom,
    rateTo,
    arrivals: arrivalsTotal,
    configs: results,
  }
}

// ---- peer ---------------------------------------------------------------------------------------------

interface PeerLevel {
  clients: number
  serverRps: number
  peerRps: number
  ratio: number
  serverP50Ms: number
  peerP50Ms: number
  peerFailures: number
}

interface PeerResult {
  model: string
  levels: PeerLevel[]
  bestServerRps: number
  bestPeerRps: number
  ratio: number
}

async function peerComparison(
  server: Child,
  zooDir: string,
  model: ModelEntry,
  image: Buffer,
  options: Options,
): Promise<PeerResult> {
  const peer = await startPeer({
    root: ROOT,
    zooDir,
    model: model.name,
    python: PYTHON,
    threads: availableParallelism(),
  })
  try {
    const ours = classifyRequest(image, `?model=${model.name}`)
    const theirs = encodeRequest(
      { method: 'POST', path: '/classify', headers: { 'content-type': 'image/jpeg' }, body: image },
      HOST,
    )
    const levels = options.quick ? [1] : [1, 8, 32]
    const rows: PeerLevel[] = []
    for (const clients of levels) {
      const s: LevelResult[] = []
      const p: LevelResult[] = []
      for (let rep = 0; rep < options.repeats; rep++) {
        // Alternate who goes first.
        if (rep % 2 === 0) s.push(await level(server, ours, clients, options.seconds))
        p.push(await level(peer, theirs, clients, options.seconds))
        if (rep % 2 === 1) s.push(await level(server, ours, clients, options.seconds))
      }
      const serverRps = median(s.map((r) => r.rps))
      const peerRps = median(p.map((r) => r.rps))
      rows.push({
        clients,
        serverRps: round(serverRps, 1),
        peerRps: round(peerRps, 1),
        ratio: round(serverRps / peerRps, 2),
        serverP50Ms: round(median(s.map((r) => r.p50Ms))),
        peerP50Ms: round(median(p.map((r) => r.p50Ms))),
        peerFailures: p.reduce((sum, r) => sum + r.failures, 0),
      })
      log(
        `  peer ${model.name} ${clients} clients: ours ${fmt(serverRps, 1)} vs PyTorch ${fmt(peerRps, 1)} req/s`,
      )
    }
    const bestServer = Math.max(...rows.map((r) => r.serverRps))
    const bestPeer = Math.max(...rows.map((r) => r.peerRps))
    return {
      model: model.name,
      levels: rows,
      bestServerRps: bestServer,
      bestPeerRps: bestPeer,
      ratio: round(bestServer / bestPeer, 2),
    }
  } finally {
    await peer.stop()
  }
}

// ---- per zoo ------------------------------------------------------------------------------------------

interface ZooResult {
  label: string
  zooDir: string
  image: { width: number; height: number; bytes: number }
  serverEnv: Record<string, string>
  overhead: OverheadResult[]
  throughput: ThroughputResult
  slo?: SloResult
  peer?: PeerResult
  cascade?: CascadeBench
}

interface ZooPlan {
  label: string
  dir: string
  imageSize: [number, number]
  env: Record<string, string>
  overheadModels: (models: ModelEntry[]) => ModelEntry[]
  throughputModel: (models: ModelEntry[]) => ModelEntry
  slo: boolean
  requestsPerRound: number
}

const largest = (models: ModelEntry[]) => models.reduce((a, b) => (b.mflops > a.mflops ? b : a))
const smallest = (models: ModelEntry[]) => models.reduce((a, b) => (b.mflops < a.mflops ? b : a))

async function benchZoo(plan: ZooPlan, options: Options): Promise<ZooResult> {
  const zoo = await loadZoo(plan.dir)
  const models = zoo.models.filter((m) => m.ready)
  if (models.length === 0) throw new Error(`no loadable model in ${plan.dir}`)
  const [width, height] = plan.imageSize
  const image = await syntheticPhoto(width, height)
  log(`${plan.label}: starting the server over ${plan.dir} (${models.length} models)`)
  const server = await startServer({
    root: ROOT,
    zooDir: plan.dir,
    env: plan.env,
    fromSource: options.fromSource,
  })
  const threads = availableParallelism()
  try {
    const overheads: OverheadResult[] = []
    for (const model of plan.overheadModels(models)) {
      const local = await InProcess.create(model, threads)
      overheads.push(await overhead(server, model, image, local, options, plan.requestsPerRound))
      await local.close()
      log(`  overhead ${model.name}: ${JSON.stringify(overheads[overheads.length - 1])}`)
    }
    const target = plan.throughputModel(models)
    const local = await InProcess.create(target, threads)
    const maxBatch = Number(plan.env.MAX_BATCH_SIZE ?? 32)
    const tp = await throughput(
      server,
      target,
      image,
      local,
      options,
      Math.min(maxBatch, options.quick ? 4 : 32),
    )
    await local.close()
    const result: ZooResult = {
      label: plan.label,
      zooDir: repoPath(plan.dir),
      image: { width, height, bytes: image.length },
      serverEnv: plan.env,
      overhead: overheads,
      throughput: tp,
    }
    if (plan.label === 'zoo' && (zoo.manifest.cascades ?? []).length > 0) {
      const cascade = await cascadeComparison(
        server,
        zoo.manifest,
        {
          images: options.quick ? 50 : 1000,
          clients: 4,
          seconds: options.quick ? 1 : 5,
          rounds: options.quick ? 1 : 3,
        },
        log,
      )
      if (cascade) result.cascade = cascade
    }
    if (plan.slo && models.length > 1) result.slo = await slo(server, models, image, options)
    if (options.peer) result.peer = await peerComparison(server, plan.dir, target, image, options)
    return result
  } finally {
    await server.stop()
  }
}

// ---- report -------------------------------------------------------------------------------------------

interface Report {
  createdAt: string
  quick: boolean
  machine: Record<string, unknown>
  options: Omit<Options, 'outDir'>
  durationS: number
  zoos: ZooResult[]
  targets: { name: string; target: string; measured: string; met: boolean | null }[]
}

function targets(zoos: ZooResult[]): Report['targets'] {
  const rows: Report['targets'] = []
  for (const zoo of zoos) {
    for (const o of zoo.overhead) {
      rows.push({
        name: `${zoo.label} ${o.model}: overhead (HTTP − in-process, median; without compute in brackets)`,
        target: '≤ 0.5 ms',
        measured: `${fmt(o.overheadMs, 3)} ms (×${fmt(o.ratio, 3)}) [${fmt(o.nonComputeOverheadMs, 3)} ms]`,
        met: o.overheadMs <= 0.5,
      })
      rows.push({
        name: `${zoo.label} ${o.model}: idle timing.inferenceMs vs bare session.run p50`,
        target: '≤ 1.2×',
        measured: `${fmt(o.inferenceRatio)}× (${fmt(o.idleInferenceMs, 3)} vs ${fmt(o.bareRunMs, 3)} ms)`,
        met: o.inferenceRatio <= 1.2,
      })
    }
    const t = zoo.throughput
    rows.push({
      name: `${zoo.label} ${t.model}: throughput vs in-process pipeline`,
      target: '≥ 1.5×',
      measured: `${fmt(t.ratioToInProcess)}× (${t.bestRps} vs ${t.inProcessPipelineRps} img/s; ${t.levels.at(-1)?.rps ?? '?'} req/s at ${t.levels.at(-1)?.clients ?? '?'} clients)`,
      met: t.ratioToInProcess >= 1.5,
    })
    if (zoo.label === 'imagenet') {
      rows.push({
        name: `${zoo.label} ${t.model}: throughput vs runtime's best batched (images; tensors in brackets)`,
        target: '≥ 0.95×',
        measured: `${fmt(t.ratioToRuntime)}× [${fmt(t.tensorRatioToRuntime)}×] (runtime ${t.runtimeBatchedRps} img/s at batch ${t.runtimeBatch})`,
        met: t.ratioToRuntime >= 0.95,
      })
    }
    rows.push({
      name: `${zoo.label}: /healthz p99 at saturation (${t.health.clients} clients)`,
      target: '≤ 5 ms',
      measured: `${fmt(t.health.p99Ms)} ms (p50 ${fmt(t.health.p50Ms)}, ${t.health.probes} probes)`,
      met: t.health.p99Ms <= 5,
    })
    if (zoo.slo) {
      const [auto, ...fixed] = zoo.slo.configs
      if (auto) {
        const holding = fixed.filter((c) => c.withinBudgetShare >= 0.995)
        const bestFixed = Math.max(0, ...holding.map((c) => c.meanTop1Served))
        rows.push({
          name: `${zoo.label}: SLO ramp, load-aware selection`,
          target: '≥ 99.5% within budget, top-1 above every fixed model that holds 99.5%',
          measured: `${fmt(auto.withinBudgetShare * 100)}% within, top-1 ${fmt(auto.meanTop1Served, 4)} (best holding fixed: ${holding.length > 0 ? fmt(bestFixed, 4) : 'none'})`,
          met: auto.withinBudgetShare >= 0.995 && auto.meanTop1Served > bestFixed,
        })
      }
    }
    if (zoo.cascade) {
      const c = zoo.cascade
      rows.push({
        name: `${zoo.label}: best cascade ${c.cascade.name} vs ${c.largest.name}, mean latency one at a time`,
        target: '< 1× (faster)',
        measured: `×${fmt(c.latencyRatio)} (${fmt(c.cascade.meanLatencyMs, 3)} vs ${fmt(c.largest.meanLatencyMs, 3)} ms; top-1 ${fmt(c.cascade.top1 * 100)}% vs ${fmt(c.largest.top1 * 100)}%)`,
        met: c.latencyRatio < 1,
      })
      rows.push({
        name: `${zoo.label}: best cascade vs ${c.largest.name}, closed-loop throughput (${c.clients} clients)`,
        target: '> 1×',
        measured: `×${fmt(c.throughputRatio)} (${fmt(c.cascade.throughputPerS, 1)} vs ${fmt(c.largest.throughputPerS, 1)} /s)`,
        met: c.throughputRatio > 1,
      })
    }
    if (zoo.peer) {
      rows.push({
        name: `${zoo.label} ${zoo.peer.model}: throughput vs PyTorch eager peer`,
        target: '≥ 10×',
        measured: `${fmt(zoo.peer.ratio)}× (${zoo.peer.bestServerRps} vs ${zoo.peer.bestPeerRps} img/s)`,
        met: zoo.peer.ratio >= 10,
      })
    }
  }
  return rows
}

function markdown(report: Report): string {
  const lines: string[] = []
  const m = report.machine
  lines.push(`# Serving benchmark (${report.quick ? 'quick' : 'full'}) — ${report.createdAt}`, '')
  lines.push(
    `Machine: ${String(m.cpuModel)}, ${String(m.cores)} cores, ${String(m.memoryGiB)} GiB; Node ${String(m.node)}; ` +
      `load average at start ${String(m.loadAtStart)}, at end ${String(m.loadAtEnd)}. Duration ${report.durationS} s.`,
    '',
  )
  lines.push('## Targets', '', '| check | target | measured | met |', '|---|---|---|---|')
  for (const t of report.targets)
    lines.push(`| ${t.name} | ${t.target} | ${t.measured} | ${t.met === null ? '–' : t.met ? 'yes' : 'no'} |`)
  for (const zoo of report.zoos) {
    lines.push('', `## ${zoo.label} (${zoo.zooDir})`, '')
    lines.push(
      `Image: ${zoo.image.width}×${zoo.image.height} JPEG, ${zoo.image.bytes} bytes. Server settings: ${
        Object.entries(zoo.serverEnv)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ') || 'defaults'
      } (LOG_LEVEL=warn, EXECUTION_PROVIDER=cpu).`,
      '',
    )
    lines.push('### Overhead (one request at a time, medians)', '')
    lines.push(
      '| model | MFLOPs | HTTP ms | in-process ms | overhead ms | ratio | overhead without compute ms | server inferenceMs | bare session.run ms |',
      '|---|---|---|---|---|---|---|---|---|',
    )
    for (const o of zoo.overhead) {
      lines.push(
        `| ${o.model} | ${fmt(o.mflops, 1)} | ${fmt(o.httpMs, 3)} | ${fmt(o.inProcessMs, 3)} | ${fmt(o.overheadMs, 3)} | ${fmt(o.ratio, 3)} | ${fmt(o.nonComputeOverheadMs, 3)} | ${fmt(o.idleInferenceMs, 3)} | ${fmt(o.bareRunMs, 3)} |`,
      )
    }
    const t = zoo.throughput
    lines.push(
      '',
      `### Throughput — ${t.model} (closed loop, median of ${report.options.repeats} interleaved runs)`,
      '',
    )
    lines.push(
      '| clients | req/s | p50 ms | p99 ms | failures | server CPU ms/req |',
      '|---|---|---|---|---|---|',
    )
    for (const l of t.levels) {
      lines.push(
        `| ${l.clients} | ${fmt(l.rps, 1)} | ${fmt(l.p50Ms)} | ${fmt(l.p99Ms)} | ${l.failures} | ${fmt(l.serverCpuMsPerRequest)} |`,
      )
    }
    lines.push(
      '',
      `Best ${t.bestRps} req/s at ${t.bestClients} clients; in-process pipeline best ${t.inProcessPipelineRps} img/s (${t.inProcessLanes} lanes) → ×${fmt(t.ratioToInProcess)}; ` +
        `runtime batched best ${t.runtimeBatchedRps} img/s (batch ${t.runtimeBatch}) → ×${fmt(t.ratioToRuntime)} for images, ` +
        `×${fmt(t.tensorRatioToRuntime)} for the tensor path (binary /v2 infer, ${t.tensorPathRps} req/s).`,
      '',
      `Event loop at ${t.health.clients} clients: GET /healthz p50 ${fmt(t.health.p50Ms)} ms, p99 ${fmt(t.health.p99Ms)} ms, max ${fmt(t.health.maxMs)} ms (${t.health.probes} probes).`,
    )
    if (zoo.slo) {
      const s = zoo.slo
      lines.push(
        '',
        `### SLO ramp — budget ${s.budgetMs} ms, ${s.repeats} × (${s.rateFrom} → ${s.rateTo} → ${s.rateFrom} req/s over ${round(s.rampSeconds, 1)} s), configurations taking turns (${s.arrivals} arrivals each, same schedule for every row)`,
        '',
      )
      lines.push(
        '| configuration | within budget | mean top-1 served | p50 ms | p99 ms | served | at low load | at peak | errors |',
        '|---|---|---|---|---|---|---|---|---|',
      )
      const counts = (r: Record<string, number>) =>
        Object.entries(r)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ') || '–'
      for (const c of s.configs) {
        lines.push(
          `| ${c.config} | ${fmt(c.withinBudgetShare * 100)}% | ${fmt(c.meanTop1Served, 4)} | ${fmt(c.p50Ms)} | ${fmt(c.p99Ms)} | ${counts(c.served)} | ${counts(c.servedAtLowLoad)} | ${counts(c.servedAtPeak)} | ${counts(c.errors)} |`,
        )
      }
    }
    if (zoo.cascade) lines.push('', cascadeMarkdown(zoo.cascade))
    if (zoo.peer) {
      const p = zoo.peer
      lines.push('', `### PyTorch eager peer — ${p.model}`, '')
      lines.push(
        '| clients | ours req/s | PyTorch req/s | ratio | ours p50 ms | PyTorch p50 ms |',
        '|---|---|---|---|---|---|',
      )
      for (const l of p.levels) {
        lines.push(
          `| ${l.clients} | ${fmt(l.serverRps, 1)} | ${fmt(l.peerRps, 1)} | ${fmt(l.ratio)} | ${fmt(l.serverP50Ms)} | ${fmt(l.peerP50Ms)} |`,
        )
      }
    }
  }
  return `${lines.join('\n')}\n`
}

// ---- main ---------------------------------------------------------------------------------------------

function ensureImagenetZoo(): string {
  const dir = join(ROOT, 'bench', '.cache', 'imagenet-zoo')
  if (!existsSync(join(dir, 'manifest.json'))) {
    log('exporting AlphaNet-A0/A4/A6 (random weights) into bench/.cache/imagenet-zoo')
    const run = spawnSync(PYTHON, [join(ROOT, 'bench', 'export_imagenet.py'), '--out-dir', dir], {
      stdio: 'inherit',
    })
    if (run.status !== 0) throw new Error('bench/export_imagenet.py failed')
  }
  return dir
}

/** `--render FILE.json`: recomputes the targets and rewrites the Markdown of an earlier run. */
function render(path: string): void {
  const report = JSON.parse(readFileSync(path, 'utf8')) as Report
  report.targets = targets(report.zoos)
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(path.replace(/\.json$/, '.md'), markdown(report))
  log(`re-rendered ${path}`)
}

async function main(): Promise<void> {
  const renderAt = process.argv.indexOf('--render')
  if (renderAt >= 0) {
    const file = process.argv[renderAt + 1]
    if (file === undefined) throw new Error('--render needs the path of a results .json file')
    render(resolve(file))
    return
  }
  const options = parseOptions(process.argv.slice(2))
  if (!existsSync(join(ROOT, 'dist', 'server', 'main.js')))
    throw new Error('dist/ is missing: run npm run build')
  const started = performance.now()
  const loadAtStart = loadavg().map((v) => round(v, 2))
  const plans: ZooPlan[] = [
    {
      label: 'zoo',
      dir: options.zooDir,
      imageSize: [160, 120],
      env: { WARMUP_RUNS: options.quick ? '2' : '20' },
      overheadModels: (models) => [...new Set([smallest(models), largest(models)])],
      throughputModel: largest,
      slo: !options.imagenet,
      requestsPerRound: options.quick ? 5 : 40,
    },
  ]
  if (options.imagenet) {
    const dir = ensureImagenetZoo()
    plans.push({
      label: 'imagenet',
      dir,
      imageSize: [500, 375],
      env: { WARMUP_RUNS: '5', MAX_BATCH_SIZE: '8' },
      overheadModels: (models) => [...models].sort((a, b) => a.mflops - b.mflops),
      throughputModel: smallest,
      slo: true,
      requestsPerRound: 3,
    })
  }
  const zoos: ZooResult[] = []
  for (const plan of plans) {
    if (options.only === undefined || options.only === plan.label) zoos.push(await benchZoo(plan, options))
  }
  const cpu = cpus()[0]
  const report: Report = {
    createdAt: new Date().toISOString(),
    quick: options.quick,
    machine: {
      cpuModel: cpu?.model ?? 'unknown',
      cores: availableParallelism(),
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      freeMemoryGiB: round(freemem() / 2 ** 30, 1),
      node: process.version,
      loadAtStart,
      loadAtEnd: loadavg().map((v) => round(v, 2)),
    },
    options: {
      quick: options.quick,
      fromSource: options.fromSource,
      only: options.only,
      zooDir: repoPath(options.zooDir),
      imagenet: options.imagenet,
      peer: options.peer,
      name: options.name,
      seconds: options.seconds,
      repeats: options.repeats,
      sloSeconds: options.sloSeconds,
    },
    durationS: round((performance.now() - started) / 1000, 1),
    zoos,
    targets: targets(zoos),
  }
  mkdirSync(options.outDir, { recursive: true })
  const base = join(options.outDir, options.name)
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`)
  writeFileSync(`${base}.md`, markdown(report))
  log(`wrote ${base}.json and ${base}.md (${report.durationS} s)`)
  for (const t of report.targets)
    log(`  ${t.met ? 'MET ' : 'MISS'} ${t.name}: ${t.measured} (target ${t.target})`)
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error)
  process.exit(1)
})
