/**
 * The real server process (server/main.ts on an ephemeral port) under faults:
 * - SIGHUP while 32 clients keep classifying: the zoo is swapped with zero failed requests; a
 *   SIGHUP onto a broken zoo is refused and the old zoo keeps serving, again with zero failures.
 * - A zoo where no model loads: the process exits 1 naming every broken model, before listening.
 * - SIGTERM while slow requests are in flight: every one of them completes with 200, new
 *   connections are refused or told SHUTTING_DOWN, and the process exits 0.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { jpegDeclaring, picture } from '../fuzz/corpus.js'
import { BROKEN_MODELS, copyFixtureZoo, createBrokenZoo } from '../helper.js'
import { startServer } from './support.js'
import sharp from 'sharp'

const CLIENTS = 32

interface LoadResult {
  ok: number
  failures: string[]
}

/** `clients` concurrent loops of POST /v1/classify until `stop()`; collects every non-200. */
function runLoad(url: string, image: Buffer, clients: number) {
  let running = true
  const result: LoadResult = { ok: 0, failures: [] }
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/v1/classify`, {
          method: 'POST',
          headers: { 'content-type': 'image/png' },
          body: image,
        })
        const text = await res.text()
        if (res.status === 200) result.ok++
        else result.failures.push(`${res.status} ${text.slice(0, 200)}`)
      } catch (error) {
        result.failures.push(`network: ${(error as Error).message}`)
      }
    }
  })
  return {
    result,
    stop: async () => {
      running = false
      await Promise.all(loops)
      return result
    },
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('server process under faults', () => {
  it('SIGHUP swaps the zoo under 32 concurrent clients with zero failures; a broken zoo is refused', async (t) => {
    const zooDir = await copyFixtureZoo(t)
    const server = await startServer({ ZOO_DIR: zooDir })
    t.after(() => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL')
    })
    const image = await sharp(picture(24, 20, 3), { raw: { width: 24, height: 20, channels: 3 } })
      .png()
      .toBuffer()
    const load = runLoad(server.url, image, CLIENTS)
    await sleep(500)

    server.child.kill('SIGHUP')
    await server.waitForLog(/"msg":"zoo reloaded"/)
    await sleep(300)

    // A broken manifest: the reload is rejected and the running zoo keeps answering.
    const manifestPath = join(zooDir, 'manifest.json')
    const good = await readFile(manifestPath, 'utf8')
    await writeFile(manifestPath, '{"schemaVersion": 1, "truncated')
    server.child.kill('SIGHUP')
    await server.waitForLog(/reload rejected, the previous zoo keeps serving/)
    await sleep(300)
    await writeFile(manifestPath, good)

    const result = await load.stop()
    assert.deepEqual(
      result.failures,
      [],
      `${result.failures.length} failed of ${result.ok + result.failures.length}`,
    )
    assert.ok(result.ok >= CLIENTS, `only ${result.ok} requests completed`)
    const ready = await fetch(`${server.url}/readyz`)
    assert.equal(ready.status, 200)

    server.child.kill('SIGTERM')
    assert.equal(await server.exit, 0)
  })

  it('a zoo where no model loads stops the start-up: exit 1 before listening, every reason on stderr', async (t) => {
    const zooDir = await createBrokenZoo(t, { includeGood: false })
    await assert.rejects(startServer({ ZOO_DIR: zooDir }), (error: Error) => {
      assert.match(error.message, /server exited 1/)
      for (const name of Object.values(BROKEN_MODELS)) assert.match(error.message, new RegExp(name))
      assert.match(error.message, /cannot start: no model of .* can be loaded/)
      return true
    })
  })

  it('SIGTERM drains in-flight slow requests: all complete with 200, then exit 0', async (t) => {
    const server = await startServer()
    t.after(() => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL')
    })
    // A 300-byte JPEG declaring 3000×3000: decoding it and resampling 9 MP keeps each request
    // busy for a while, and with one worker they queue behind each other.
    const slow = await jpegDeclaring(3000, 3000)
    const inFlight = Array.from({ length: 6 }, () =>
      fetch(`${server.url}/v1/classify`, {
        method: 'POST',
        headers: { 'content-type': 'image/jpeg' },
        body: slow,
      }).then(async (res) => ({ status: res.status, body: await res.text(), at: Date.now() })),
    )
    // In flight means routed by the server: one still on its way when SIGTERM arrives is rightly
    // refused (or its unread connection closed), so the signal waits until all six have arrived.
    const arrived = () =>
      server
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"url":"/v1/classify"') && l.includes('"msg":"incoming request"')).length
    const deadline = Date.now() + 30_000
    while (arrived() < inFlight.length) {
      assert.ok(Date.now() < deadline, `only ${arrived()} of ${inFlight.length} requests arrived`)
      await sleep(20)
    }
    const signalledAt = Date.now()
    server.child.kill('SIGTERM')

    // A new request while draining: refused at connect, or answered 503 SHUTTING_DOWN.
    await server.waitForLog(/"msg":"shutting down: refusing new requests/)
    const late = await fetch(`${server.url}/v1/select`, { method: 'POST' }).then(
      async (res) => ({ status: res.status, body: await res.text() }),
      (error: unknown) => ({ status: 0, body: String(error) }),
    )
    if (late.status !== 0) {
      assert.equal(late.status, 503, late.body)
      assert.equal((JSON.parse(late.body) as { code: string }).code, 'SHUTTING_DOWN')
    }

    const answers = await Promise.all(inFlight)
    for (const answer of answers) assert.equal(answer.status, 200, answer.body.slice(0, 300))
    assert.ok(
      answers.some((a) => a.at > signalledAt),
      'at least one request was still in flight when SIGTERM arrived',
    )
    assert.equal(await server.exit, 0, server.stderr())
    assert.match(server.stdout(), /"msg":"shut down cleanly"/)

    // After exit nothing listens any more.
    await assert.rejects(fetch(`${server.url}/healthz`))
  })
})
