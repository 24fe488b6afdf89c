/**
 * Work for a client that has gone is dropped, not done for no one: a request whose connection
 * closes while its image waits to be decoded never reaches a model, and is counted as
 * CLIENT_CLOSED. (The scheduler's queue side is covered in test/runtime/scheduler.test.ts.)
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { clientGoneSignal } from '../../server/client-gone.js'
import { jpegDeclaring } from '../fuzz/corpus.js'
import { fixtureImage, startApp } from '../routes/support.js'

/** POSTs `body` to /v1/classify; resolves with the status code. */
function classify(port: number, body: Buffer, type: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/classify',
        method: 'POST',
        headers: { 'content-type': type, 'content-length': body.length },
      },
      (res) => {
        res.resume()
        res.on('end', () => {
          resolve(res.statusCode ?? 0)
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** Sends a whole classify request, then drops the connection after `afterMs` without reading. */
function classifyAndHangUp(port: number, body: Buffer, type: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/v1/classify',
      method: 'POST',
      headers: { 'content-type': type, 'content-length': body.length },
    })
    req.on('error', () => {
      resolve()
    })
    req.end(body, () => {
      setTimeout(() => {
        req.destroy()
        resolve()
      }, afterMs)
    })
  })
}

function counter(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

describe('a client that hangs up', () => {
  it('clientGoneSignal fires on a dropped connection, not on an answered request', async () => {
    const app = Fastify()
    const seen: boolean[] = []
    app.post('/slow', async (_request, reply) => {
      const signal = clientGoneSignal(reply)
      await new Promise((resolve) => setTimeout(resolve, 200))
      seen.push(signal.aborted)
      return { ok: true }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    try {
      // A body is read before the handler runs: Fastify's own request.signal aborts right there.
      const answered = await fetch(`http://127.0.0.1:${port}/slow`, { method: 'POST', body: 'x' })
      assert.equal(answered.status, 200)
      const controller = new AbortController()
      setTimeout(() => {
        controller.abort()
      }, 50)
      await assert.rejects(
        fetch(`http://127.0.0.1:${port}/slow`, { method: 'POST', body: 'x', signal: controller.signal }),
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      assert.deepEqual(seen, [false, true])
    } finally {
      await app.close()
    }
  })

  it('its image is dropped before decoding and it never runs', async () => {
    // One 3000×3000 decode at a time (the pixel budget), so a small image queues behind them.
    const app = await startApp({ maxImagePixels: 9_000_000 })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    try {
      const slow = await jpegDeclaring(3000, 3000)
      const small = await fixtureImage('gray.png')
      const before = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      const busy = Array.from({ length: 3 }, () => classify(port, slow, 'image/jpeg'))
      await new Promise((resolve) => setTimeout(resolve, 30))
      await classifyAndHangUp(port, small, 'image/png', 20)
      assert.deepEqual(await Promise.all(busy), [200, 200, 200])
      const after = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      const closed = 'code="CLIENT_CLOSED"'
      const failures = 'alphanet_inference_failures_total'
      assert.equal(counter(after, failures, closed) - counter(before, failures, closed), 1, after)
      // The server is no worse for it.
      assert.equal(await classify(port, small, 'image/png'), 200)
    } finally {
      await app.close()
    }
  })
})
