/**
 * The demo page end to end in headless Chromium (Debian's `chromium`, driven by playwright-core):
 * the page loads the zoo and draws the Pareto chart, an uploaded image is classified by the model
 * the default budget selects, moving the MFLOPs slider changes the chosen model (highlighted in the
 * chart, same answer as the API), an infeasible budget shows the error or, with the fallback
 * ticked, the cheapest model, and a dropped file works like an upload. Skips only when Chromium is
 * missing and CI is unset; in CI a missing browser fails the test.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import request from 'supertest'
import type { ClassifyResponse } from '../server/schemas/classify.js'
import { fixturePath, FIXTURE_MODELS } from './helper.js'
import { appInBrowser, skipWithoutBrowser } from './browser.js'

const SMALL = 'fixture-gray28-small'
const RES20 = 'fixture-gray28-res20'
const LARGE = 'fixture-gray28-large'

/*
 * The browser globals the in-page functions use, declared for this module only (the test suite is
 * type-checked without the DOM library).
 */
interface PageElement {
  dispatchEvent(event: object): boolean
}
declare const document: { getElementById(id: string): PageElement | null }
declare class DataTransfer {
  items: { add(file: File): void }
}
type File = object
declare const File: new (parts: Uint8Array[], name: string, options: { type: string }) => File
declare const DragEvent: new (
  type: string,
  init: { dataTransfer: DataTransfer; bubbles: boolean; cancelable: boolean },
) => object

describe('demo page in Chromium', { skip: skipWithoutBrowser }, () => {
  let app: FastifyInstance | undefined
  let browser: Browser | undefined
  let page: Page
  let origin: string
  const errors: string[] = []

  before(async () => {
    const started = await appInBrowser()
    ;({ app, browser, origin } = started)
    page = await started.browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.on('pageerror', (error) => errors.push(error.message))
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text())
    })
    await page.goto(`${origin}/`)
    await page.waitForSelector('body[data-ready="true"]')
  })
  after(async () => {
    await browser?.close()
    await app?.close()
  })

  const chosenPoint = () => page.getAttribute('.pareto .point.chosen', 'data-model')

  async function waitForServed(model: string): Promise<void> {
    await page.waitForSelector(`#served-model:text-is(${JSON.stringify(model)})`)
  }

  async function attributes(selector: string, name: string): Promise<(string | null)[]> {
    const nodes = page.locator(selector)
    const count = await nodes.count()
    return Promise.all(Array.from({ length: count }, (_, i) => nodes.nth(i).getAttribute(name)))
  }

  it('draws every zoo model in the Pareto chart, with the frontier, before any image', async () => {
    const models = await attributes('.pareto .point', 'data-model')
    assert.deepEqual([...models].sort(), [...FIXTURE_MODELS].sort())
    assert.equal(await page.locator('.pareto polyline.frontier').count(), 1)
    assert.equal(await chosenPoint(), LARGE)
    assert.match((await page.textContent('#selection')) ?? '', new RegExp(`Selected: ${LARGE}`))
  })

  it('an uploaded image is classified by the default model, exactly as the API answers', async () => {
    await page.setInputFiles('#file', fixturePath('images', 'photo.jpg'))
    await waitForServed(LARGE)
    const items = page.locator('#predictions li')
    const shown = await Promise.all(
      Array.from({ length: await items.count() }, async (_, i) => [
        await items.nth(i).locator('.label').textContent(),
        await items.nth(i).locator('.score').textContent(),
      ]),
    )
    const api = (
      await request(origin)
        .post('/v1/classify')
        .set('content-type', 'image/jpeg')
        .send(await readFile(fixturePath('images', 'photo.jpg')))
    ).body as ClassifyResponse
    assert.deepEqual(
      shown,
      api.predictions.map((p) => [p.label, `${(p.score * 100).toFixed(1)}%`]),
    )
    assert.equal(await page.textContent('.badge'), 'budget met')
    assert.equal(await chosenPoint(), LARGE)
    assert.deepEqual(errors, [])
  })

  it('a tighter MFLOPs budget picks another model, highlighted in the chart', async () => {
    await page.check('#use-mflops')
    // Slider position 0.45 on the log scale from 0.8·min to 1.25·max MFLOPs ≈ 0.65 MFLOPs.
    await page.locator('#mflops').fill('0.45')
    await waitForServed(RES20)
    assert.equal(await chosenPoint(), RES20)
    const feasible = await attributes('.pareto .point.feasible', 'data-model')
    assert.deepEqual([...feasible].sort(), [RES20, SMALL].sort())
    assert.equal(await page.locator('.pareto .budget-region').count(), 1)
    assert.match((await page.textContent('#mflops-value')) ?? '', /MFLOPs$/)
  })

  it('an infeasible budget shows the error; with the fallback ticked the cheapest model serves', async () => {
    await page.locator('#mflops').fill('0')
    await page.waitForSelector('#result .error')
    assert.match((await page.textContent('#result .error')) ?? '', /^BUDGET_INFEASIBLE: /)
    // Chromium logs the expected 422 as a console error; only that one is allowed.
    assert.ok(
      errors.every((e) => /status of 422/.test(e)),
      errors.join('\n'),
    )
    errors.length = 0
    await page.check('#smallest')
    await waitForServed(SMALL)
    assert.equal(await page.textContent('.badge'), 'budget missed')
    await page.screenshot({ path: join(tmpdir(), 'alphanet-web-e2e.png'), fullPage: true })
  })

  it('a dropped file is classified like an uploaded one', async () => {
    // The page classifies whatever budget its 150 ms debounce sees: dropping the MFLOPs budget
    // before the fallback leaves no infeasible budget in between (a 422 the page would log).
    await page.uncheck('#use-mflops')
    await page.uncheck('#smallest')
    const png = (await readFile(fixturePath('images', 'gray.png'))).toString('base64')
    // The function runs in the page (Playwright serializes it): `document`, `DataTransfer`, … are
    // the browser's, typed by the minimal declarations above.
    await page.evaluate((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
      const transfer = new DataTransfer()
      transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }))
      const drop = new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true })
      document.getElementById('drop')?.dispatchEvent(drop)
    }, png)
    await page.waitForSelector('#drop-text:text-is("dropped.png")')
    await waitForServed(LARGE)
    assert.deepEqual(errors, [])
  })
})
