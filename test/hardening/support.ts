/**
 * Helpers for the hardening suites: raw HTTP over a socket (Node's parser limits apply only to
 * real connections, never to app.inject), and the real server process on an ephemeral port.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:net'
import { FIXTURE_ZOO_DIR, ROOT } from '../helper.js'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  /** Everything received, for messages. */
  raw: string
}

/** Parses the first HTTP/1.1 response in `raw` (no chunked bodies: the server answers with lengths). */
export function parseRawResponse(raw: string): RawResponse {
  const split = raw.indexOf('\r\n\r\n')
  const head = split === -1 ? raw : raw.slice(0, split)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN)
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = Number(headers['content-length'] ?? Number.NaN)
  const rest = split === -1 ? '' : raw.slice(split + 4)
  return { status, headers, body: Number.isFinite(length) ? rest.slice(0, length) : rest, raw }
}

/** Whether `raw` holds one whole response (by Content-Length, or a chunked body's last chunk). */
function isComplete(raw: string): boolean {
  const split = raw.indexOf('\r\n\r\n')
  if (split === -1) return false
  const { headers } = parseRawResponse(raw)
  const body = raw.slice(split + 4)
  if (headers['content-length'] !== undefined) return body.length >= Number(headers['content-length'])
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) return body.endsWith('0\r\n\r\n')
  return false
}

/**
 * Writes `chunks` to 127.0.0.1:`port` (with `gapMs` between them) and collects what comes back
 * until the server closes the connection or `timeoutMs` passes. With `halfClose` the client ends
 * its side after writing (Node then aborts a request in progress); with `untilResponse` it stops
 * at the first complete response. `closed` says whether the connection ended.
 */
export async function rawExchange(
  port: number,
  chunks: (string | Buffer)[],
  { gapMs = 0, timeoutMs = 10_000, halfClose = false, untilResponse = false } = {},
): Promise<{ response: RawResponse; closed: boolean }> {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  await once(socket, 'connect')
  let received = ''
  let closed = false
  socket.setEncoding('latin1')
  let complete: () => void = () => undefined
  socket.on('data', (chunk: string) => {
    received += chunk
    if (untilResponse && isComplete(received)) complete()
  })
  socket.on('error', () => undefined)
  const ended = new Promise<void>((resolve) => {
    complete = resolve
    // The server ending its side counts as closing (this socket allows half-open for halfClose).
    for (const event of ['end', 'close']) {
      socket.on(event, () => {
        closed = true
        resolve()
      })
    }
  })
  for (const chunk of chunks) {
    if (socket.destroyed) break
    socket.write(chunk)
    if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs))
  }
  if (halfClose && !socket.destroyed) socket.end()
  const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())
  await Promise.race([ended, timer])
  socket.destroy()
  return { response: parseRawResponse(received), closed }
}

export const SERVER_ENV = {
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  ZOO_DIR: FIXTURE_ZOO_DIR,
  WORKER_THREADS: '1',
  INTRA_OP_THREADS: '1',
  WARMUP_RUNS: '2',
  EXECUTION_PROVIDER: 'cpu',
  HOST: '127.0.0.1',
  PORT: '0',
  // No gRPC unless a test asks (its default port would clash between servers running at once).
  GRPC_PORT: '0',
}

export interface ServerProcess {
  child: ChildProcessWithoutNullStreams
  /** Base URL once listening. */
  url: string
  stdout: () => string
  stderr: () => string
  exit: Promise<number | null>
  /** Resolves with the first stdout line matching `pattern` (polls; fails if the process exits). */
  waitForLog: (pattern: RegExp, timeoutMs?: number) => Promise<string>
}

/** Starts `server/main.ts` (through tsx) with the fixture zoo on an ephemeral port; resolves once listening. */
export async function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: { ...SERVER_ENV, ...env },
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  const waitForLog = async (pattern: RegExp, timeoutMs = 60_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const line = out.split('\n').find((l) => pattern.test(l))
      if (line !== undefined) return line
      if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}: ${err}${out}`)
      if (Date.now() > deadline) throw new Error(`no log line ${pattern} within ${timeoutMs} ms:\n${out}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  const listening = await waitForLog(/Server listening at http:\/\/127\.0\.0\.1:\d+/)
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(listening)?.[1] ?? ''
  return { child, url, stdout: () => out, stderr: () => err, exit, waitForLog }
}
