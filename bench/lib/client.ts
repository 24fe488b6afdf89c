/**
 * A minimal HTTP/1.1 keep-alive load client over raw sockets. The benchmark shares two cores with
 * the server it measures, so the client must cost as little CPU as possible: every request is a
 * prebuilt buffer (request line, headers and body written once), and a response is parsed only as
 * far as its status line and Content-Length (the body is kept as bytes; callers parse it when they
 * need to). The server always answers with a Content-Length.
 */
import { connect, type Socket } from 'node:net'

export interface Response {
  status: number
  body: Buffer
  /** From the first byte written to the last byte read, ms. */
  latencyMs: number
}

export interface RequestSpec {
  method: 'GET' | 'POST'
  path: string
  headers?: Record<string, string>
  body?: Buffer
}

/** The bytes of `spec` as one HTTP/1.1 keep-alive request. */
export function encodeRequest(spec: RequestSpec, host: string): Buffer {
  const body = spec.body ?? Buffer.alloc(0)
  const headers: Record<string, string> = { host, connection: 'keep-alive', ...spec.headers }
  if (spec.method === 'POST' || body.length > 0) headers['content-length'] = String(body.length)
  const head = [
    `${spec.method} ${spec.path} HTTP/1.1`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ]
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body])
}

const HEADER_END = Buffer.from('\r\n\r\n')

/** One keep-alive connection; one request at a time. */
export class Connection {
  private socket: Socket | undefined
  private pending: { resolve: (r: Response) => void; reject: (e: Error) => void; start: number } | undefined
  private buffer: Buffer = Buffer.alloc(0)

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  private open(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port, noDelay: true })
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(socket)
      })
      socket.once('error', reject)
      socket.on('data', (chunk: Buffer) => {
        this.onData(chunk)
      })
      socket.on('error', (error) => {
        this.fail(error)
      })
      socket.on('close', () => {
        this.socket = undefined
        this.fail(new Error('connection closed by the server'))
      })
    })
  }

  private fail(error: Error): void {
    const pending = this.pending
    this.pending = undefined
    this.buffer = Buffer.alloc(0)
    pending?.reject(error)
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk])
    const pending = this.pending
    if (!pending) return
    const end = this.buffer.indexOf(HEADER_END)
    if (end < 0) return
    const head = this.buffer.subarray(0, end).toString('latin1')
    const status = Number(head.slice(9, 12))
    const match = /\r\ncontent-length:\s*(\d+)/i.exec(head)
    const length = match ? Number(match[1]) : 0
    const total = end + 4 + length
    if (this.buffer.length < total) return
    const body = this.buffer.subarray(end + 4, total)
    this.buffer = this.buffer.length > total ? this.buffer.subarray(total) : Buffer.alloc(0)
    this.pending = undefined
    if (/\r\nconnection:\s*close/i.test(head)) this.socket?.destroy()
    pending.resolve({ status, body, latencyMs: performance.now() - pending.start })
  }

  async send(request: Buffer): Promise<Response> {
    if (this.pending) throw new Error('one request at a time per connection')
    this.socket ??= await this.open()
    const socket = this.socket
    return new Promise<Response>((resolve, reject) => {
      this.pending = { resolve, reject, start: performance.now() }
      socket.write(request)
    })
  }

  close(): void {
    this.socket?.destroy()
    this.socket = undefined
  }
}

/** Connections handed out one request at a time, opened on demand (open-loop load needs many). */
export class ConnectionPool {
  private readonly idle: Connection[] = []
  private readonly all: Connection[] = []

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async send(request: Buffer): Promise<Response> {
    let connection = this.idle.pop()
    if (!connection) {
      connection = new Connection(this.host, this.port)
      this.all.push(connection)
    }
    try {
      return await connection.send(request)
    } finally {
      this.idle.push(connection)
    }
  }

  close(): void {
    for (const connection of this.all) connection.close()
  }
}

export interface ClosedLoopResult<R = Response> {
  responses: R[]
  /** Requests that failed at the transport level (refused, reset). */
  errors: number
  elapsedMs: number
}

/**
 * `clients` loops, each calling `send` again as soon as its previous answer arrived, for
 * `durationMs`. The window opens after a warm-up that is not counted: at least `warmupMs`, and
 * until as many answers as clients have arrived (at most `maxWarmupMs`), so that with slow models
 * and many clients the window sees the steady state, not the initial burst. Any transport: the
 * HTTP loop below, or a gRPC client (bench/transport.ts).
 */
export async function closedLoopOf<R>(
  send: () => Promise<R>,
  clients: number,
  durationMs: number,
  warmupMs = Math.min(500, durationMs / 4),
  maxWarmupMs = 30_000,
): Promise<ClosedLoopResult<R>> {
  const responses: R[] = []
  let errors = 0
  // An object, not two lets: the loops read what the timer below changes.
  const window = { counting: false, running: true }
  const counted = () => window.counting && window.running
  let answered = 0
  const loops = Array.from({ length: clients }, async () => {
    while (window.running) {
      try {
        const response = await send()
        answered++
        if (counted()) responses.push(response)
      } catch {
        answered++
        if (counted()) errors++
      }
    }
  })
  const warmupStart = performance.now()
  await new Promise((resolve) => setTimeout(resolve, warmupMs))
  while (answered < clients && performance.now() - warmupStart < maxWarmupMs) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  window.counting = true
  const begin = performance.now()
  await new Promise((resolve) => setTimeout(resolve, durationMs))
  window.running = false
  const elapsedMs = performance.now() - begin
  await Promise.all(loops)
  return { responses, errors, elapsedMs }
}

/** closedLoopOf over `clients` keep-alive connections, each sending `request`. */
export async function closedLoop(
  host: string,
  port: number,
  request: Buffer,
  clients: number,
  durationMs: number,
  warmupMs = Math.min(500, durationMs / 4),
  maxWarmupMs = 30_000,
): Promise<ClosedLoopResult> {
  const idle = Array.from({ length: clients }, () => new Connection(host, port))
  const all = [...idle]
  // Each loop holds one connection for its lifetime (one request at a time per connection).
  const send = async () => {
    const connection = idle.pop()
    if (!connection) throw new Error('more loops than connections')
    try {
      return await connection.send(request)
    } finally {
      idle.push(connection)
    }
  }
  try {
    return await closedLoopOf(send, clients, durationMs, warmupMs, maxWarmupMs)
  } finally {
    for (const connection of all) connection.close()
  }
}
