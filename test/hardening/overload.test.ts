/**
 * The overload case of issue 12, on a real listening server: many keep-alive clients post a
 * 1024×768 JPEG at once, half with a latency budget every model meets on an idle server
 * (maxLatencyMs=50), half naming a model. Whatever the load does to them, a request is refused
 * only as load — 503 OVERLOADED with Retry-After, or 504 DEADLINE_EXCEEDED — never 422
 * BUDGET_INFEASIBLE: the budget is feasible, only the load stands in the way (server/admission).
 */
import assert from 'node:assert/strict'
import { Agent, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import sharp from 'sharp'
import { ERROR_CODES } from '../../server/errors.js'
import { buildTestApp } from '../helper.js'

const CLIENTS = 48
const DURATION_MS = 2500

interface Answer {
  status: number
  retryAfter: string | undefined
  body: string
}

function post(agent: Agent, port: number, path: string, image: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'image/jpeg' } },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => {
          const retryAfter = res.headers['retry-after']
          resolve({ status: res.statusCode ?? 0, retryAfter, body: Buffer.concat(chunks).toString() })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(image)
  })
}

/** A 1024×768 photo-like JPEG (noise over a gradient: costly to decode, as a real photo is). */
async function largeJpeg(): Promise<Buffer> {
  const width = 1024
  const height = 768
  const pixels = Buffer.alloc(width * height * 3)
  let seed = 7
  for (let i = 0; i < pixels.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    pixels[i] = ((i / 3) % width) / 4 + (seed % 64)
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer()
}

describe('overload: a feasible budget is never answered 422', () => {
  it('half maxLatencyMs=50, half a named model, under saturation: 200, 503 + Retry-After or 504 only', async (t) => {
    // A small queue bound so that the named-model half is refused by the queue, not only slowed.
    const app = await buildTestApp(t, { maxQueueSize: 4 })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as AddressInfo
    const image = await largeJpeg()
    const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })
    t.after(() => {
      agent.destroy()
    })

    const answers: Answer[] = []
    const until = performance.now() + DURATION_MS
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        const path =
          client % 2 === 0 ? '/v1/classify?maxLatencyMs=50' : '/v1/classify?model=fixture-gray28-large'
        while (performance.now() < until) answers.push(await post(agent, port, path, image))
      }),
    )

    const counts = new Map<number, number>()
    for (const answer of answers) counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1)
    const summary = JSON.stringify(Object.fromEntries(counts))
    assert.equal(counts.get(422) ?? 0, 0, `422 answers under load: ${summary}`)
    assert.deepEqual(
      [...counts.keys()].filter((status) => ![200, 503, 504].includes(status)),
      [],
      `unexpected statuses: ${summary}`,
    )
    assert.ok((counts.get(200) ?? 0) > 0, `nothing served: ${summary}`)
    // The load was real: some requests were refused for it.
    assert.ok((counts.get(503) ?? 0) + (counts.get(504) ?? 0) > 0, `never saturated: ${summary}`)
    for (const answer of answers.filter((a) => a.status !== 200)) {
      const body = JSON.parse(answer.body) as { code: string }
      assert.ok((ERROR_CODES as readonly string[]).includes(body.code), answer.body)
      assert.equal(body.code, answer.status === 503 ? 'OVERLOADED' : 'DEADLINE_EXCEEDED', answer.body)
      if (answer.status === 503) assert.ok(Number(answer.retryAfter) >= 1, answer.body)
    }

    // Healthy after: once the load stops, the same budget is served again. The load estimate
    // decays over a few seconds, so a client honouring Retry-After gets through within them (a
    // busy host keeps it high longer than an idle one).
    let after = await post(agent, port, '/v1/classify?maxLatencyMs=50', image)
    for (let retry = 0; retry < 5 && after.status === 503; retry++) {
      await new Promise((resolve) => setTimeout(resolve, Number(after.retryAfter) * 1000))
      after = await post(agent, port, '/v1/classify?maxLatencyMs=50', image)
    }
    assert.equal(after.status, 200, after.body)
  })
})
