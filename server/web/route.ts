/**
 * The demo page at `/`: plain HTML, CSS and JS from server/web/assets (no framework, no CDN),
 * read once at start-up and served from memory. The page talks to the public API only
 * (GET /models, POST /v1/select, POST /v1/classify). Not part of the OpenAPI document.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import { projectRoot } from '../config.js'

/** Resolved from the project root so the built server (dist/) serves the same files. */
export const WEB_ASSETS_DIR = join(projectRoot(), 'server', 'web', 'assets')

const ASSETS = [
  { path: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { path: '/ui/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { path: '/ui/chart.js', file: 'chart.js', type: 'text/javascript; charset=utf-8' },
  { path: '/ui/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
  { path: '/ui/icon.svg', file: 'icon.svg', type: 'image/svg+xml' },
  // Browsers ask for /favicon.ico on their own; answer with the same icon instead of a 404.
  { path: '/favicon.ico', file: 'icon.svg', type: 'image/svg+xml' },
] as const

/** Everything the page loads comes from this origin; images are previewed from blob: URLs. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

const webPage: FastifyPluginAsync = async (app) => {
  for (const asset of ASSETS) {
    const content = readFileSync(join(WEB_ASSETS_DIR, asset.file))
    app.get(asset.path, { schema: { hide: true } }, async (_request, reply) =>
      reply
        .type(asset.type)
        .header('content-security-policy', CONTENT_SECURITY_POLICY)
        .header('x-content-type-options', 'nosniff')
        .header('cache-control', 'no-cache')
        .send(content),
    )
  }
}

export default webPage
