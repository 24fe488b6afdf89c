/**
 * Hot reload under load, in process: 32 concurrent clients classify without pause while the zoo
 * in ZOO_DIR is republished and swapped — through app.zooManager.reload() and through the
 * authenticated POST /admin/reload — including a broken publication that must be refused while
 * the old zoo keeps serving. Not one request may fail. (The SIGHUP path with a real process is in
 * process.test.ts.)
 */
import assert from 'node:assert/strict'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import sharp from 'sharp'
import { ReloadError } from '../../server/runtime/serving-zoo.js'
import { picture } from '../fuzz/corpus.js'
import { buildTestAppWithAdminToken, copyFixtureZoo } from '../helper.js'

const CLIENTS = 32
const TOKEN = 'reload-under-load-token-5f2a9c'

function appWithAdmin(t: TestContext, zooDir: string): Promise<FastifyInstance> {
  return buildTestAppWithAdminToken(t, TOKEN, { zooDir })
}

describe('hot reload under load', () => {
  it('32 clients, five swaps (API and admin route, one dropping the serving model) and one refused broken zoo: zero failures', async (t) => {
    // Two models keep each swap's warm-up short; the default changes between them below.
    const zooDir = await copyFixtureZoo(t, { models: ['fixture-gray28-small', 'fixture-gray28-large'] })
    const app = await appWithAdmin(t, zooDir)
    const image = await sharp(picture(24, 20, 3), { raw: { width: 24, height: 20, channels: 3 } })
      .png()
      .toBuffer()

    let running = true
    let ok = 0
    const failures: string[] = []
    const servedBy = new Set<string>()
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (running) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/classify',
          headers: { 'content-type': 'image/png' },
          payload: image,
        })
        if (res.statusCode === 200) {
          ok++
          servedBy.add((JSON.parse(res.body) as { model: { name: string } }).model.name)
        } else {
          failures.push(`${res.statusCode} ${res.body.slice(0, 200)}`)
        }
        // Let timers and worker messages in between, as a real network would.
        await new Promise((resolve) => setImmediate(resolve))
      }
    })

    const manifestPath = join(zooDir, 'manifest.json')
    const original = await readFile(manifestPath, 'utf8')
    const adminReload = () =>
      app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: `Bearer ${TOKEN}` } })
    const generations: number[] = []
    try {
      // 1. Same zoo again, through the API.
      generations.push((await app.zooManager.reload()).generation)
      // 2. A republished zoo with a different default model, through the admin route.
      const manifest = JSON.parse(original) as { defaultModel?: string }
      manifest.defaultModel = 'fixture-gray28-small'
      await writeFile(manifestPath, JSON.stringify(manifest))
      const viaAdmin = await adminReload()
      assert.equal(viaAdmin.statusCode, 200, viaAdmin.body)
      generations.push((JSON.parse(viaAdmin.body) as { generation: number }).generation)
      // 3. A broken publication (a model file gone, no models listed): refused by both paths, the
      //    old zoo keeps serving.
      const removed = join(zooDir, 'fixture-gray28-small.onnx')
      const removedBytes = await readFile(removed)
      await rm(removed)
      await writeFile(manifestPath, JSON.stringify({ ...manifest, models: [] }))
      await assert.rejects(app.zooManager.reload(), ReloadError)
      const refused = await adminReload()
      assert.equal(refused.statusCode, 409, refused.body)
      assert.equal((JSON.parse(refused.body) as { code: string }).code, 'RELOAD_REJECTED')
      // 4. The corrected publication (the original), through both paths.
      await writeFile(removed, removedBytes)
      await writeFile(manifestPath, original)
      generations.push((await app.zooManager.reload()).generation)
      const last = await adminReload()
      assert.equal(last.statusCode, 200, last.body)
      generations.push((JSON.parse(last.body) as { generation: number }).generation)
      // 5. A republication that drops the model serving the traffic (the default): requests that
      //    selected it just before the swap must still be answered.
      const reduced = JSON.parse(original) as { models: { name: string }[]; defaultModel?: string }
      reduced.models = reduced.models.filter((m) => m.name !== 'fixture-gray28-large')
      delete reduced.defaultModel
      await writeFile(manifestPath, JSON.stringify(reduced))
      generations.push((await app.zooManager.reload()).generation)
      // Keep the load on the final generation for a moment.
      await new Promise((resolve) => setTimeout(resolve, 300))
    } finally {
      running = false
      await Promise.all(clients)
    }

    assert.deepEqual(failures, [], `${failures.length} of ${ok + failures.length} requests failed`)
    assert.ok(ok >= CLIENTS * 2, `only ${ok} requests completed`)
    assert.deepEqual(
      generations,
      [...generations].sort((a, b) => a - b),
      'generations increase',
    )
    assert.equal(new Set(generations).size, 5)
    // Both the original default and the republished one (step 2) served traffic.
    assert.deepEqual([...servedBy].sort(), ['fixture-gray28-large', 'fixture-gray28-small'])
    assert.equal(app.zoo.get('fixture-gray28-large'), undefined, 'the final zoo no longer has it')
    assert.equal(app.zoo.defaultModelName(), 'fixture-gray28-small')
  })

  it('the admin route never takes a zoo path (or anything else) from the request', async (t) => {
    const zooDir = await copyFixtureZoo(t, { models: ['fixture-gray28-small', 'fixture-gray28-large'] })
    const app = await appWithAdmin(t, zooDir)
    const elsewhere = await copyFixtureZoo(t, { models: ['fixture-rgb32'] })
    const attempts = [
      { url: '/admin/reload', payload: { zooDir: elsewhere } },
      { url: `/admin/reload?zooDir=${encodeURIComponent(elsewhere)}`, payload: {} },
      { url: '/admin/reload', payload: { path: '../../etc' } },
    ]
    for (const attempt of attempts) {
      const res = await app.inject({
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        ...attempt,
      })
      // Either refused as a bad request, or a reload of the configured ZOO_DIR — never `elsewhere`.
      if (res.statusCode === 200) {
        assert.equal((JSON.parse(res.body) as { zooDir: string }).zooDir, zooDir)
      } else {
        assert.equal(res.statusCode, 400, res.body)
      }
      assert.equal(app.zoo.list().length, 2, 'still the configured two-model zoo')
    }
  })
})
