/**
 * POST /admin/reload: absent without ADMIN_TOKEN, bearer-token checks, a real reload swapping the
 * served zoo, a refused reload keeping the old zoo serving (and saying why), and a request in flight
 * during the swap still answered.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import request from 'supertest'
import type { ReloadResult, ZooReloader } from '../../server/runtime/types.js'
import { registerErrorHandlers } from '../../server/error-handler.js'
import admin, { bearerMatches } from '../../server/routes/admin.js'
import { ReloadError } from '../../server/runtime/serving-zoo.js'
import { buildTestAppWithAdminToken, copyFixtureZoo, fixturePath } from '../helper.js'

const TOKEN = 'test-admin-token-0123456789'

/** The route alone over a fake zoo manager. */
async function standalone(t: TestContext, token: string | undefined, reload?: ZooReloader['reload']) {
  const app = Fastify()
  t.after(() => app.close())
  registerErrorHandlers(app)
  const zooManager: ZooReloader = {
    reload:
      reload ??
      (() => Promise.resolve({ generation: 2, zooDir: '/zoo', previousZooDir: '/zoo', models: [] })),
  }
  app.decorate('zooManager', zooManager)
  await app.register(admin, { token })
  await app.ready()
  return app
}

function appWithToken(t: TestContext, zooDir: string): Promise<FastifyInstance> {
  return buildTestAppWithAdminToken(t, TOKEN, { zooDir })
}

/** The error body of a response. */
const err = (res: { body: unknown }) => res.body as { code: string; message: string }

const reload = (app: FastifyInstance, token = TOKEN) =>
  request(app.server).post('/admin/reload').set('authorization', `Bearer ${token}`)

async function rewriteManifest(dir: string, keep: readonly string[]): Promise<void> {
  const path = join(dir, 'manifest.json')
  const manifest = JSON.parse(await readFile(path, 'utf8')) as {
    defaultModel?: string
    models: { name: string }[]
  }
  manifest.models = manifest.models.filter((m) => keep.includes(m.name))
  if (manifest.defaultModel !== undefined && !keep.includes(manifest.defaultModel))
    delete manifest.defaultModel
  await writeFile(path, `${JSON.stringify(manifest, null, 2)}\n`)
}

describe('bearerMatches', () => {
  it('accepts exactly "Bearer <token>" (scheme case-insensitive) and nothing else', () => {
    assert.equal(bearerMatches(`Bearer ${TOKEN}`, TOKEN), true)
    assert.equal(bearerMatches(`bearer ${TOKEN}`, TOKEN), true)
    for (const header of [
      undefined,
      '',
      TOKEN,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN} extra`,
      'Bearer ',
    ]) {
      assert.equal(bearerMatches(header, TOKEN), false, String(header))
    }
  })
})

describe('POST /admin/reload', () => {
  it('does not exist unless ADMIN_TOKEN is set (same answer as an unknown route)', async (t) => {
    const app = await standalone(t, '')
    const res = await request(app.server).post('/admin/reload').set('authorization', 'Bearer x').expect(404)
    const unknown = await request(app.server).post('/admin/nothing').expect(404)
    assert.equal(err(res).code, 'ROUTE_NOT_FOUND')
    assert.deepEqual(Object.keys(res.body as object).sort(), Object.keys(unknown.body as object).sort())
  })

  it('refuses a missing or wrong bearer token with 401 UNAUTHORIZED and never reloads', async (t) => {
    let reloads = 0
    const app = await standalone(t, TOKEN, () => {
      reloads++
      return Promise.reject(new Error('must not be called'))
    })
    const missing = await request(app.server).post('/admin/reload').expect(401)
    assert.equal(err(missing).code, 'UNAUTHORIZED')
    assert.match(err(missing).message, /Authorization: Bearer/)
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="admin"')
    const wrong = await reload(app, 'not-the-token').expect(401)
    assert.equal(err(wrong).code, 'UNAUTHORIZED')
    await request(app.server).post('/admin/reload').set('authorization', `Basic ${TOKEN}`).expect(401)
    assert.equal(reloads, 0)
  })

  it('maps a refused reload to 409 RELOAD_REJECTED with the reason', async (t) => {
    const app = await standalone(t, TOKEN, () =>
      Promise.reject(new ReloadError('zoo reload rejected, the previous zoo keeps serving: bad manifest')),
    )
    const res = await reload(app).expect(409)
    assert.equal(err(res).code, 'RELOAD_REJECTED')
    assert.match(err(res).message, /previous zoo keeps serving: bad manifest/)
  })

  it('swaps in the zoo now in ZOO_DIR; a zoo that cannot serve leaves the old one serving', async (t) => {
    const dir = await copyFixtureZoo(t, { models: ['fixture-gray28-small', 'fixture-gray28-large'] })
    const app = await appWithToken(t, dir)
    const names = async () =>
      ((await request(app.server).get('/models').expect(200)).body as { models: { name: string }[] }).models
        .map((m) => m.name)
        .sort()
    assert.deepEqual(await names(), ['fixture-gray28-large', 'fixture-gray28-small'])

    await rewriteManifest(dir, ['fixture-gray28-small'])
    const swapped = await reload(app).expect(200)
    const result = swapped.body as ReloadResult
    assert.deepEqual(result.models, [{ name: 'fixture-gray28-small', ready: true }])
    assert.equal(result.zooDir, result.previousZooDir)
    assert.deepEqual(await names(), ['fixture-gray28-small'])

    await writeFile(join(dir, 'manifest.json'), '{"schemaVersion": 1, "zoo": {}, "models": []}\n')
    const refused = await reload(app).expect(409)
    assert.equal(err(refused).code, 'RELOAD_REJECTED')
    assert.match(err(refused).message, /previous zoo keeps serving/)
    assert.deepEqual(await names(), ['fixture-gray28-small'])
    await request(app.server).get('/readyz').expect(200)
  })

  it('a request in flight during the swap is answered', async (t) => {
    const dir = await copyFixtureZoo(t, { models: ['fixture-gray28-small'] })
    const app = await appWithToken(t, dir)
    const image = await readFile(fixturePath('images', 'photo.jpg'))
    const classify = request(app.server)
      .post('/v1/classify')
      .set('content-type', 'image/jpeg')
      .send(image)
      .then((res) => res)
    const [classified, reloaded] = await Promise.all([classify, reload(app).then((res) => res)])
    assert.equal(reloaded.status, 200)
    assert.equal(classified.status, 200, JSON.stringify(classified.body))
    assert.equal((classified.body as { model: { name: string } }).model.name, 'fixture-gray28-small')
  })
})
