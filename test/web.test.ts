/**
 * The demo page's files as served: HTML, JS, CSS and icon from this origin only (no CDN), with a
 * strict Content-Security-Policy, and kept out of the OpenAPI document. The page's behaviour in a
 * real browser is test/web-e2e.test.ts.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { WEB_ASSETS_DIR } from '../server/web/route.js'
import { startApp } from './routes/support.js'

describe('demo page files', () => {
  let app: FastifyInstance
  before(async () => {
    app = await startApp()
  })
  after(() => app.close())

  const files = [
    ['/', 'index.html', /^text\/html/],
    ['/ui/app.js', 'app.js', /^text\/javascript/],
    ['/ui/chart.js', 'chart.js', /^text\/javascript/],
    ['/ui/style.css', 'style.css', /^text\/css/],
    ['/ui/icon.svg', 'icon.svg', /^image\/svg\+xml/],
    ['/favicon.ico', 'icon.svg', /^image\/svg\+xml/],
  ] as const

  it('serves each asset with its type, a strict CSP and nosniff', async () => {
    for (const [url, file, type] of files) {
      const res = await app.inject({ method: 'GET', url })
      assert.equal(res.statusCode, 200, url)
      assert.match(String(res.headers['content-type']), type, url)
      assert.equal(res.body, await readFile(join(WEB_ASSETS_DIR, file), 'utf8'), url)
      const csp = String(res.headers['content-security-policy'])
      assert.match(csp, /default-src 'none'/)
      assert.match(csp, /script-src 'self'(;|$)/)
      assert.equal(res.headers['x-content-type-options'], 'nosniff')
    }
  })

  it('loads nothing from another origin and uses only same-origin API routes', async () => {
    for (const file of ['index.html', 'app.js', 'chart.js', 'style.css']) {
      const text = await readFile(join(WEB_ASSETS_DIR, file), 'utf8')
      // The SVG namespace URI is an identifier, not a request.
      const urls = (text.match(/https?:\/\/[^\s'"`)]+/g) ?? []).filter(
        (u) => u !== 'http://www.w3.org/2000/svg',
      )
      assert.deepEqual(urls, [], file)
    }
    const app_js = await readFile(join(WEB_ASSETS_DIR, 'app.js'), 'utf8')
    for (const route of ["'/models'", "'/v1/select'", '`/v1/classify?'])
      assert.ok(app_js.includes(route), route)
    const html = await readFile(join(WEB_ASSETS_DIR, 'index.html'), 'utf8')
    assert.doesNotMatch(html, /<script>|style="/, 'no inline script or style (the CSP forbids them)')
  })

  it('is not part of the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<string, unknown>
    }>()
    for (const path of ['/', '/ui/app.js', '/favicon.ico']) assert.equal(doc.paths[path], undefined, path)
  })
})
