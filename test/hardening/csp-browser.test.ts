/**
 * The Content-Security-Policy of security.ts against a real browser: Swagger UI at /docs renders
 * the API (every route listed) and "Try it out" can call the API, the demo page at / works, and
 * neither page reports a single CSP violation. Headless Chromium as in test/web-e2e.test.ts; skips
 * only when Chromium is missing and CI is unset.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { appInBrowser, skipWithoutBrowser } from '../browser.js'

/** Browser globals the in-page callbacks use (the suite is type-checked without the DOM library). */
declare const document: {
  addEventListener(
    type: string,
    listener: (event: { violatedDirective: string; blockedURI: string }) => void,
  ): void
}
declare const window: { __cspViolations?: string[] }

describe('security headers in a browser', { skip: skipWithoutBrowser }, () => {
  let app: FastifyInstance | undefined
  let browser: Browser | undefined
  let origin: string

  before(async () => {
    ;({ app, browser, origin } = await appInBrowser())
  })
  after(async () => {
    await browser?.close()
    await app?.close()
  })

  /** Opens `path` recording CSP violations (events and console reports) and page errors. */
  async function open(path: string): Promise<{ page: Page; problems: () => Promise<string[]> }> {
    assert.ok(browser)
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text()))
        problems.push(`console: ${message.text()}`)
    })
    await page.addInitScript(() => {
      window.__cspViolations = []
      document.addEventListener('securitypolicyviolation', (event) => {
        window.__cspViolations?.push(`${event.violatedDirective} ${event.blockedURI}`)
      })
    })
    await page.goto(`${origin}${path}`)
    return {
      page,
      problems: async () => [
        ...problems,
        ...(await page.evaluate(() => window.__cspViolations ?? [])).map((v) => `violation: ${v}`),
      ],
    }
  }

  it('Swagger UI renders every operation under its policy and can call the API', async () => {
    const { page, problems } = await open('/docs/')
    await page.waitForSelector('.swagger-ui .opblock', { timeout: 30_000 })
    const operations = await page.locator('.swagger-ui .opblock').count()
    assert.ok(operations >= 6, `only ${operations} operations rendered`)
    // "Try it out" on GET /models: the request goes to this origin (connect-src 'self').
    const models = page
      .locator('.opblock-get', { hasText: '/models' })
      .filter({ hasNotText: '{name}' })
      .first()
    await models.locator('.opblock-summary').click()
    await models.locator('button.try-out__btn').click()
    await models.locator('button.execute').click()
    const liveStatus = models.locator('.live-responses-table tbody .response-col_status').first()
    await liveStatus.waitFor({ timeout: 30_000 })
    const status = await liveStatus.textContent()
    assert.match(status ?? '', /200/)
    assert.deepEqual(await problems(), [])
  })

  it('the demo page works under its own policy', async () => {
    const { page, problems } = await open('/')
    await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 })
    assert.deepEqual(await problems(), [])
  })
})
