/**
 * Child processes the benchmark measures: the built server (dist/server/main.js) and the PyTorch
 * peer (bench/pytorch_peer.py), each on a free loopback port, with their CPU time readable from
 * /proc so efficiency can be compared independently of how busy the shared machine is.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'

export const HOST = '127.0.0.1'

export interface Child {
  port: number
  process: ChildProcess
  /** CPU time (user + system, all threads) the process has used so far, ms. */
  cpuMs(): number
  output(): string
  stop(): Promise<void>
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, HOST, () => {
      const address = probe.address()
      const port = typeof address === 'object' && address ? address.port : 0
      probe.close(() => {
        resolve(port)
      })
    })
  })
}

const CLOCK_TICKS_PER_S = 100

function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return (ticks * 1000) / CLOCK_TICKS_PER_S
  } catch {
    return Number.NaN
  }
}

function spawnChild(command: string, args: string[], env: NodeJS.ProcessEnv, port: number): Child {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  return {
    port,
    process: child,
    cpuMs: () => cpuMsOf(child.pid),
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Polls `url` until it answers 200 (or the child dies, or `timeoutMs` passes). */
async function waitReady(child: Child, url: string, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.process.exitCode !== null) {
      throw new Error(`${what} exited with code ${child.process.exitCode}:\n${child.output()}`)
    }
    try {
      const res = await fetch(url)
      if (res.status === 200) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await child.stop()
      throw new Error(`${what} not ready after ${timeoutMs} ms:\n${child.output()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

export interface ServerOptions {
  root: string
  zooDir: string
  /** Run server/main.ts through tsx instead of the built dist/server/main.js. */
  fromSource?: boolean
  /** Extra settings (MAX_BATCH_SIZE, WARMUP_RUNS, …). */
  env?: Record<string, string>
  readyTimeoutMs?: number
}

/** Starts the server (built, or from source) on a free port and waits for GET /readyz. */
export async function startServer(options: ServerOptions): Promise<Child> {
  const port = await freePort()
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    ZOO_DIR: options.zooDir,
    HOST,
    PORT: String(port),
    // gRPC only where a scenario asks for it (options.env), on a port of its own.
    GRPC_PORT: '0',
    EXECUTION_PROVIDER: 'cpu',
    LOG_LEVEL: 'warn',
    ...options.env,
  }
  const args = options.fromSource
    ? ['--import', 'tsx', join(options.root, 'server', 'main.ts')]
    : [join(options.root, 'dist', 'server', 'main.js')]
  const child = spawnChild(process.execPath, args, env, port)
  await waitReady(child, `http://${HOST}:${port}/readyz`, options.readyTimeoutMs ?? 600_000, 'server')
  return child
}

export interface PeerOptions {
  root: string
  zooDir: string
  model: string
  python: string
  threads: number
}

/** Starts bench/pytorch_peer.py for one model on a free port and waits for GET /healthz. */
export async function startPeer(options: PeerOptions): Promise<Child> {
  const port = await freePort()
  const child = spawnChild(
    options.python,
    [
      join(options.root, 'bench', 'pytorch_peer.py'),
      '--zoo',
      options.zooDir,
      '--model',
      options.model,
      '--port',
      String(port),
      '--threads',
      String(options.threads),
    ],
    { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', OMP_WAIT_POLICY: 'PASSIVE' },
    port,
  )
  await waitReady(child, `http://${HOST}:${port}/healthz`, 180_000, 'PyTorch peer')
  return child
}
