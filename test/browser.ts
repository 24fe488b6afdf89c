/**
 * Headless Chromium against the real app, for the suites that need a browser (the demo page, the
 * Content-Security-Policy). They skip only when Chromium is missing and CI is unset; in CI the
 * Makefile installs it, so a missing browser fails instead of silently skipping.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser } from 'playwright-core'
import { startApp } from './routes/support.js'

const CHROMIUM = '/usr/bin/chromium'
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
]

const available = existsSync(CHROMIUM)

/** The `skip` option of a browser suite. */
export const skipWithoutBrowser: string | false =
  !available && !process.env.CI
    ? `${CHROMIUM} is not installed (apt-get install chromium, or run \`make test\`)`
    : false

/** The app listening on an ephemeral loopback port, and a browser to point at `origin`. */
export async function appInBrowser(): Promise<{ app: FastifyInstance; browser: Browser; origin: string }> {
  assert.ok(available, `${CHROMIUM} is required in CI (Makefile DEBIAN_PACKAGES installs it)`)
  const app = await startApp()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  assert.ok(address && typeof address === 'object')
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS })
  return { app, browser, origin: `http://127.0.0.1:${address.port}` }
}
