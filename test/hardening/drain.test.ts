/**
 * Graceful close with keep-alive clients (regression): a request in flight when close() begins is
 * answered with `Connection: close`, so its socket ends with the answer and close() finishes at
 * once — before the fix the idle keep-alive socket held close() open until the shutdown timeout
 * killed the process with exit 1 (found by test/hardening/process.test.ts).
 */
import assert from 'node:assert/strict'
import { Agent, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { jpegDeclaring } from '../fuzz/corpus.js'
import { startApp } from '../routes/support.js'

describe('close() with keep-alive clients', () => {
  it('answers the in-flight request with Connection: close and finishes promptly', async () => {
    const app = await startApp()
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      // Slow enough to be in flight when close() starts: a 3000×3000 JPEG to decode and resample.
      const slow = await jpegDeclaring(3000, 3000)
      const answer = new Promise<{ status: number; connection: string | undefined; body: string }>(
        (resolve, reject) => {
          const req = request(
            {
              host: '127.0.0.1',
              port,
              path: '/v1/classify',
              method: 'POST',
              agent,
              headers: { 'content-type': 'image/jpeg', 'content-length': slow.length },
            },
            (res) => {
              let body = ''
              res.setEncoding('utf8')
              res.on('data', (chunk: string) => (body += chunk))
              res.on('end', () => {
                resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body })
              })
            },
          )
          req.on('error', reject)
          req.end(slow)
        },
      )
      await new Promise((resolve) => setTimeout(resolve, 100))
      const closeStarted = performance.now()
      const closed = app.close()
      const res = await answer
      assert.equal(res.status, 200, res.body.slice(0, 300))
      assert.equal(res.connection, 'close')
      await closed
      const closeMs = performance.now() - closeStarted
      // Bounded by the request itself, not by a keep-alive timeout (72 s) or SHUTDOWN_TIMEOUT_MS.
      assert.ok(closeMs < 15_000, `close() took ${Math.round(closeMs)} ms`)
    } finally {
      agent.destroy()
      await app.close()
    }
  })
})
