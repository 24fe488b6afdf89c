/**
 * Soak test: `npm run soak -- --minutes 3` (loopback only, bounded time).
 *
 * 1. Starts the real server (server/main.ts) on 127.0.0.1 with an ephemeral port.
 * 2. Calibrates capacity: closed-loop clients for --calibrate-s seconds → successful requests/s.
 * 3. Offers --factor × that rate (default 2×) open-loop — arrivals on a fixed schedule whether or
 *    not earlier requests finished, as real clients do — for --minutes minutes. Every request
 *    carries a deadline (`maxLatencyMs`, --deadline-ms) and is timed by the client.
 * 4. Samples the server's RSS every 5 s, counts answers by status and code, and at the end checks
 *    /healthz and that SIGTERM drains and exits 0.
 * 5. Writes a JSON and a Markdown summary (--out, default runs/soak/) and prints the Markdown.
 *
 * What "holds" means: no crash, no 5xx other than load shedding (503 OVERLOADED / 504
 * DEADLINE_EXCEEDED), no 4xx to a valid request, no connection errors, requests served in every
 * 10-s window (shedding part of the load, never all of it), healthy afterwards, a clean SIGTERM
 * exit, and ≥ 99 % of
 * the accepted (200) requests answered within their deadline as the server times them (arrival →
 * answer). RSS over time is reported for judging boundedness. Client-side latency is reported too;
 * it also counts the kernel's accept backlog and the generator's own event-loop lag — the
 * generator runs on the same machine and competes for its CPU.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg } from 'node:os'
import { Agent, createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import sharp from 'sharp'
import { projectRoot } from '../server/config.js'

const ROOT = projectRoot()

interface Options {
  minutes: number
  factor: number
  deadlineMs: number
  calibrateS: number
  concurrency: number
  zooDir: string | undefined
  workerThreads: string | undefined
  out: string
  maxInFlight: number
  bombShare: number
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '3' },
      factor: { type: 'string', default: '2' },
      'deadline-ms': { type: 'string', default: '1000' },
      'calibrate-s': { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '32' },
      'zoo-dir': { type: 'string' },
      'worker-threads': { type: 'string' },
      out: { type: 'string', default: join(ROOT, 'runs', 'soak') },
      'max-in-flight': { type: 'string', default: '2000' },
      'bomb-share': { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    console.log(
      'npm run soak -- [--minutes 3] [--factor 2] [--deadline-ms 1000] [--calibrate-s 20] [--concurrency 32]\n' +
        '                [--zoo-dir DIR] [--worker-threads N] [--out runs/soak] [--max-in-flight 2000]\n' +
        '                [--bomb-share 0.02]  (that share of requests: a ~500-byte JPEG declaring 6000×6000)',
    )
    process.exit(0)
  }
  const number = (name: string, raw: string, min: number, max: number): number => {
    const value = Number(raw)
    if (!Number.isFinite(value) || value < min || value > max) {
      console.error(`--${name} must be a number in [${min}, ${max}], got ${JSON.stringify(raw)}`)
      process.exit(2)
    }
    return value
  }
  return {
    minutes: number('minutes', values.minutes, 0.1, 120),
    factor: number('factor', values.factor, 0.1, 20),
    deadlineMs: number('deadline-ms', values['deadline-ms'], 1, 600_000),
    calibrateS: number('calibrate-s', values['calibrate-s'], 2, 600),
    concurrency: number('concurrency', values.concurrency, 1, 256),
    zooDir: values['zoo-dir'],
    workerThreads: values['worker-threads'],
    out: resolve(values.out),
    maxInFlight: number('max-in-flight', values['max-in-flight'], 1, 100_000),
    bombShare: number('bomb-share', values['bomb-share'], 0, 1),
  }
}

/* ---------------- the server under test ---------------- */

/** A free loopback port (bound and released), so the server can run with LOG_LEVEL=warn. */
async function freePort(): Promise<number> {
  const probe = createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

function get(port: number, path: string, agent?: Agent): Promise<number> {
  return new Promise((resolveStatus) => {
    const req = request({ host: '127.0.0.1', port, path, ...(agent && { agent }) }, (res) => {
      res.resume()
      resolveStatus(res.statusCode ?? 0)
    })
    req.on('error', () => {
      resolveStatus(0)
    })
    req.end()
  })
}

async function startServer(options: Options) {
  const port = await freePort()
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    HOST: '127.0.0.1',
    PORT: String(port),
    GRPC_PORT: '0',
    // Request logging at info would cost the server as much CPU as the requests themselves.
    LOG_LEVEL: 'warn',
    EXECUTION_PROVIDER: process.env.EXECUTION_PROVIDER ?? 'cpu',
    // As the container image sets it (Dockerfile); MALLOC_ARENA_MAX= (empty) soaks without it.
    ...(process.env.MALLOC_ARENA_MAX !== '' && { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' }),
    ...(options.zooDir !== undefined && { ZOO_DIR: resolve(options.zooDir) }),
    ...(options.workerThreads !== undefined && { WORKER_THREADS: options.workerThreads }),
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: string) => {
    output = (output + chunk).slice(-20_000)
  }
  child.stdout.setEncoding('utf8').on('data', keep)
  child.stderr.setEncoding('utf8').on('data', keep)
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  const deadline = performance.now() + 120_000
  while ((await get(port, '/readyz')) !== 200) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode} before ready:\n${output}`)
    if (performance.now() > deadline) throw new Error(`server not ready within 120 s:\n${output}`)
    await new Promise((r) => setTimeout(r, 250))
  }
  return { child, port, exit, output: () => output }
}

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN)
  return kb * 1024
}

/* ---------------- the client ---------------- */

interface Answer {
  status: number
  code: string | undefined
  latencyMs: number
  serverTotalMs: number | undefined
  error: string | undefined
  /** The request was one of the --bomb-share decompression bombs (a 4xx is a fair answer to it). */
  bomb?: boolean
}

function classify(
  agent: Agent,
  port: number,
  body: Buffer,
  type: string,
  deadlineMs: number,
): Promise<Answer> {
  const started = performance.now()
  return new Promise((resolveAnswer) => {
    // The connection failed or broke mid-answer: no status, no code.
    const transportError = (error: Error): void => {
      resolveAnswer({
        status: 0,
        code: undefined,
        latencyMs: performance.now() - started,
        serverTotalMs: undefined,
        error: error.message,
      })
    }
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/v1/classify?maxLatencyMs=${deadlineMs}`,
        agent,
        headers: { 'content-type': type, 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          const latencyMs = performance.now() - started
          let code: string | undefined
          let serverTotalMs: number | undefined
          try {
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              code?: string
              reason?: string
              timing?: { totalMs?: number }
            }
            // Load shedding says why (event-loop delay, heap, RSS); the queue bound names no reason.
            code = parsed.reason !== undefined ? `${parsed.code ?? ''} (${parsed.reason})` : parsed.code
            serverTotalMs = parsed.timing?.totalMs
          } catch {
            code = 'UNPARSEABLE_BODY'
          }
          resolveAnswer({ status: res.statusCode ?? 0, code, latencyMs, serverTotalMs, error: undefined })
        })
        res.on('error', transportError)
      },
    )
    req.on('error', transportError)
    req.end(body)
  })
}

/** A baseline JPEG of a few hundred bytes whose header declares width × height (36 MP here). */
async function jpegDeclaring(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(
    await sharp({ create: { width: 16, height: 16, channels: 3, background: '#3a7' } })
      .jpeg()
      .toBuffer(),
  )
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]))
  jpeg.writeUInt16BE(height, sof + 5)
  jpeg.writeUInt16BE(width, sof + 7)
  return jpeg
}

async function testImages(): Promise<{ body: Buffer; type: string }[]> {
  const pixels = Buffer.alloc(64 * 48 * 3)
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37) & 0xff
  const base = sharp(pixels, { raw: { width: 64, height: 48, channels: 3 } })
  return [
    { body: await base.clone().jpeg().toBuffer(), type: 'image/jpeg' },
    { body: await base.clone().png().toBuffer(), type: 'image/png' },
    { body: await base.clone().webp().toBuffer(), type: 'image/webp' },
  ]
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits

/* ---------------- phases ---------------- */

async function calibrate(
  options: Options,
  agent: Agent,
  port: number,
  images: { body: Buffer; type: string }[],
) {
  const end = performance.now() + options.calibrateS * 1000
  let ok = 0
  let other = 0
  let i = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (performance.now() < end) {
        const image = images[i++ % images.length] ?? images[0]
        if (!image) return
        const answer = await classify(agent, port, image.body, image.type, options.deadlineMs)
        if (answer.status === 200) ok++
        else other++
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  return { okPerSecond: ok / seconds, ok, other, seconds }
}

interface Window {
  t: number
  sent: number
  ok: number
  shed: number
  deadline: number
  other: number
  p50: number
  p99: number
  rssMb: number
}

async function main(): Promise<void> {
  const options = readOptions()
  const images = await testImages()
  const bombImage = { body: await jpegDeclaring(6000, 6000), type: 'image/jpeg' }
  console.error(`soak: starting the server (${options.zooDir ?? 'default zoo'})`)
  const server = await startServer(options)
  const pid = server.child.pid ?? 0
  const agent = new Agent({ keepAlive: true, maxSockets: 512 })
  const startedAt = new Date()

  console.error(
    `soak: calibrating capacity with ${options.concurrency} closed-loop clients for ${options.calibrateS} s`,
  )
  const capacity = await calibrate(options, agent, server.port, images)
  const rate = Math.max(1, capacity.okPerSecond * options.factor)
  console.error(
    `soak: capacity ≈ ${round(capacity.okPerSecond)} req/s; offering ${round(rate)} req/s (${options.factor}×) for ${options.minutes} min`,
  )

  const answers: Answer[] = []
  const windows: Window[] = []
  const rss: { t: number; mb: number }[] = []
  let inFlight = 0
  let clientDropped = 0
  let sent = 0
  const durationMs = options.minutes * 60_000
  const begin = performance.now()
  let windowAnswers: Answer[] = []
  let windowSent = 0

  const sampleRss = async (t: number) => {
    try {
      rss.push({ t, mb: (await rssBytes(pid)) / 2 ** 20 })
    } catch {
      // the process is gone; the crash is reported below
    }
  }
  await sampleRss(0)
  const rssTimer = setInterval(() => void sampleRss((performance.now() - begin) / 1000), 5000)
  const windowTimer = setInterval(() => {
    const t = (performance.now() - begin) / 1000
    const latencies = windowAnswers
      .filter((a) => a.status === 200)
      .map((a) => a.latencyMs)
      .sort((a, b) => a - b)
    const window: Window = {
      t: round(t, 0),
      sent: windowSent,
      ok: latencies.length,
      shed: windowAnswers.filter((a) => a.status === 503).length,
      deadline: windowAnswers.filter((a) => a.status === 504).length,
      other: windowAnswers.filter((a) => ![200, 503, 504].includes(a.status)).length,
      p50: round(percentile(latencies, 50)),
      p99: round(percentile(latencies, 99)),
      rssMb: round(rss.at(-1)?.mb ?? Number.NaN, 0),
    }
    windows.push(window)
    console.error(
      `t=${String(window.t).padStart(4)}s sent ${window.sent} ok ${window.ok} shed ${window.shed} deadline ${window.deadline} other ${window.other} p50 ${window.p50} ms p99 ${window.p99} ms rss ${window.rssMb} MB in-flight ${inFlight}`,
    )
    windowAnswers = []
    windowSent = 0
  }, 10_000)

  // Open loop: the n-th request leaves at begin + n / rate, independent of answers.
  const pending = new Set<Promise<void>>()
  while (performance.now() - begin < durationMs) {
    if (server.child.exitCode !== null) break
    const due = begin + (sent / rate) * 1000
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    if (inFlight >= options.maxInFlight) {
      clientDropped++
      sent++
      continue
    }
    // Every (1 / bombShare)-th request is a decompression bomb within the pixel limit.
    const bomb =
      options.bombShare > 0 &&
      Math.floor((sent + 1) * options.bombShare) > Math.floor(sent * options.bombShare)
    const image = bomb ? bombImage : (images[sent % images.length] ?? images[0])
    if (!image) break
    sent++
    windowSent++
    inFlight++
    const p = classify(agent, server.port, image.body, image.type, options.deadlineMs).then((answer) => {
      inFlight--
      if (bomb) answer.bomb = true
      answers.push(answer)
      windowAnswers.push(answer)
    })
    pending.add(p)
    void p.finally(() => pending.delete(p))
  }
  const offeredSeconds = (performance.now() - begin) / 1000
  await Promise.all([...pending])
  clearInterval(rssTimer)
  clearInterval(windowTimer)
  await sampleRss((performance.now() - begin) / 1000)

  // Still healthy after the soak?
  const crashed = server.child.exitCode !== null
  const healthAfter = crashed ? 0 : await get(server.port, '/healthz', agent)
  agent.destroy()
  const stopStarted = performance.now()
  if (!crashed) server.child.kill('SIGTERM')
  const exitCode = await Promise.race([
    server.exit,
    new Promise<string>((r) =>
      setTimeout(() => {
        r('timeout')
      }, 60_000),
    ),
  ])
  if (exitCode === 'timeout') server.child.kill('SIGKILL')
  const stopMs = performance.now() - stopStarted

  /* ---------------- summary ---------------- */
  const byStatus: Record<string, number> = {}
  for (const a of answers) {
    const key = a.status === 0 ? `network: ${a.error ?? 'error'}` : `${a.status}${a.code ? ` ${a.code}` : ''}`
    byStatus[key] = (byStatus[key] ?? 0) + 1
  }
  const ok = answers.filter((a) => a.status === 200)
  const okLatencies = ok.map((a) => a.latencyMs).sort((a, b) => a - b)
  const withinDeadline = ok.filter((a) => a.latencyMs <= options.deadlineMs).length
  const serverLate = ok.filter((a) => (a.serverTotalMs ?? 0) > options.deadlineMs).length
  // Every ordinary request is valid and its budget feasible on an idle server, so any 4xx to one
  // is a wrong answer (a lasting BUDGET_INFEASIBLE once meant the predictions had locked up).
  const unexpected = answers.filter(
    (a) =>
      a.status === 0 ||
      (a.status >= 500 && a.status !== 503 && a.status !== 504) ||
      (a.status >= 400 && a.status < 500 && a.bomb !== true),
  )
  // Overload must shed part of the load, never all of it: every 10-s window serves some requests.
  const starvedWindows = windows.filter((w) => w.ok === 0).length
  const rssValues = rss.map((r) => r.mb)
  const half = rss.filter((r) => r.t >= offeredSeconds / 2)
  const summary = {
    startedAt: startedAt.toISOString(),
    host: { cpus: availableParallelism(), loadAverage: loadavg() },
    options: { ...options, out: undefined },
    capacity: { okPerSecond: round(capacity.okPerSecond), calibrationSeconds: round(capacity.seconds) },
    offered: { ratePerSecond: round(rate), seconds: round(offeredSeconds), requests: sent, clientDropped },
    answered: answers.length,
    byStatus,
    okPerSecond: round(ok.length / offeredSeconds),
    accepted: {
      count: ok.length,
      withinDeadline,
      withinDeadlineFraction: round(ok.length ? withinDeadline / ok.length : 1, 4),
      serverTotalOverDeadline: serverLate,
      serverWithinDeadlineFraction: round(ok.length ? (ok.length - serverLate) / ok.length : 1, 4),
      latencyMs: {
        p50: round(percentile(okLatencies, 50)),
        p90: round(percentile(okLatencies, 90)),
        p99: round(percentile(okLatencies, 99)),
        max: round(okLatencies.at(-1) ?? Number.NaN),
      },
    },
    unexpectedFailures: unexpected.length,
    starvedWindows,
    rssMb: {
      start: round(rssValues[0] ?? Number.NaN, 0),
      max: round(Math.max(...rssValues), 0),
      end: round(rssValues.at(-1) ?? Number.NaN, 0),
      secondHalfMin: round(Math.min(...half.map((r) => r.mb)), 0),
      secondHalfMax: round(Math.max(...half.map((r) => r.mb)), 0),
      samples: rss.map((r) => ({ t: round(r.t, 0), mb: round(r.mb, 0) })),
    },
    crashed,
    healthAfter,
    shutdown: { exitCode, ms: round(stopMs, 0) },
    windows,
  }
  const criteria: [string, boolean][] = [
    ['no crash', !crashed],
    ['healthy after', healthAfter === 200],
    ['clean SIGTERM exit', exitCode === 0],
    ['no unexpected failures', unexpected.length === 0],
    ['requests served in every 10-s window', starvedWindows === 0],
    [
      '≥ 99 % of accepted requests within the deadline (server-timed)',
      summary.accepted.serverWithinDeadlineFraction >= 0.99,
    ],
  ]
  const failed = criteria.filter(([, met]) => !met).map(([name]) => name)
  const holds = failed.length === 0
  const markdown = [
    `# Soak ${summary.startedAt}`,
    '',
    `Host: ${summary.host.cpus} CPUs, load average ${summary.host.loadAverage.map((l) => round(l, 2)).join(' / ')} at the end (shared, loaded machine; the load generator runs on it too).`,
    `Server: ${options.zooDir ?? 'default zoo'}, ${options.workerThreads ?? 'default'} worker threads, loopback, MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '2'}.`,
    ...(options.bombShare > 0
      ? [
          `${round(options.bombShare * 100, 2)} % of the requests are ~500-byte JPEGs declaring 6000×6000 (36 MP).`,
        ]
      : []),
    '',
    `| measure | value |`,
    `| --- | --- |`,
    `| capacity (closed loop, ${options.concurrency} clients) | ${summary.capacity.okPerSecond} req/s |`,
    `| offered (open loop, ${options.factor}×) | ${summary.offered.ratePerSecond} req/s for ${round(offeredSeconds / 60, 2)} min (${sent} requests) |`,
    `| answered 200 | ${ok.length} (${summary.okPerSecond} req/s) |`,
    ...Object.entries(byStatus)
      .filter(([key]) => !key.startsWith('200'))
      .map(([key, count]) => `| answered ${key} | ${count} |`),
    `| client-side drops (over ${options.maxInFlight} in flight) | ${clientDropped} |`,
    `| unexpected failures (network errors, 5xx other than 503/504, 4xx to a valid request) | ${unexpected.length} |`,
    `| 10-s windows with nothing served | ${starvedWindows} of ${windows.length} |`,
    `| accepted within the ${options.deadlineMs} ms deadline, server-timed (arrival → answer built) | ${ok.length - serverLate} / ${ok.length} (${round(summary.accepted.serverWithinDeadlineFraction * 100, 2)} %) |`,
    `| accepted within the deadline, client-timed (incl. accept backlog and the generator's own lag) | ${withinDeadline} / ${ok.length} (${round(summary.accepted.withinDeadlineFraction * 100, 2)} %) |`,
    `| accepted latency p50 / p90 / p99 / max | ${summary.accepted.latencyMs.p50} / ${summary.accepted.latencyMs.p90} / ${summary.accepted.latencyMs.p99} / ${summary.accepted.latencyMs.max} ms |`,
    `| server RSS start / max / end | ${summary.rssMb.start} / ${summary.rssMb.max} / ${summary.rssMb.end} MB |`,
    `| server RSS over the second half | ${summary.rssMb.secondHalfMin} – ${summary.rssMb.secondHalfMax} MB |`,
    `| crashed | ${crashed ? 'yes' : 'no'} |`,
    `| /healthz after | ${healthAfter} |`,
    `| SIGTERM → exit | ${String(exitCode)} in ${summary.shutdown.ms} ms |`,
    '',
    `RSS over time (s: MB): ${summary.rssMb.samples.map((s) => `${s.t}: ${s.mb}`).join(', ')}`,
    '',
    holds
      ? `Verdict: HOLDS (${criteria.map(([name]) => name).join(', ')}).`
      : `Verdict: DOES NOT HOLD — failed: ${failed.join('; ')}.`,
    '',
  ].join('\n')
  await mkdir(options.out, { recursive: true })
  const stamp = summary.startedAt.replace(/[:.]/g, '-')
  await writeFile(join(options.out, `soak-${stamp}.json`), `${JSON.stringify(summary, null, 2)}\n`)
  await writeFile(join(options.out, `soak-${stamp}.md`), markdown)
  console.log(markdown)
  console.error(`soak: wrote ${join(options.out, `soak-${stamp}.{json,md}`)}`)
  if (!holds) process.exitCode = 1
}

await main()
