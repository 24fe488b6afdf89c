/**
 * Audit: no file path ever comes from request input. The server reads files from three places
 * only — its configuration (ZOO_DIR), the zoo manifest (plain file names inside ZOO_DIR) and fixed
 * assets of the project — and never fetches anything by URL. This test fails when a module that
 * handles requests starts touching the file system or the network, so the change gets reviewed.
 * (The behaviour — hostile names answered as lookups — is fuzzed in test/fuzz/requests.test.ts.)
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { ManifestSchema } from '../../server/zoo/manifest-schema.js'
import { ROOT } from '../helper.js'

const SERVER = join(ROOT, 'server')

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.(ts|mts|mjs|js)$/.test(name) ? [path] : []
  })
}

/** Server-side modules (the demo page's own scripts run in the browser and are left out). */
const FILES = sources(SERVER)
  .map((path) => ({ path: relative(ROOT, path).replaceAll('\\', '/'), text: readFileSync(path, 'utf8') }))
  .filter((file) => !file.path.startsWith('server/web/assets/'))

/**
 * Modules outside runtime/, zoo/ and cli/ allowed to use the file system, each reading a path fixed
 * by the project or the configuration at start-up (never per request).
 */
const FS_ALLOWED: Readonly<Record<string, string>> = {
  'server/config.ts': 'checks whether models/manifest.json exists to pick the default ZOO_DIR',
  'server/plugins/openapi.ts': "reads the project's package.json for the API version",
  'server/routes/v2/metadata.ts': "reads the project's package.json for the server version",
  'server/web/route.ts': 'reads the demo page assets (a fixed list) once at start-up',
}

/** Directories whose file access takes paths from the configuration or the manifest only. */
const FS_DIRECTORIES = ['server/runtime/', 'server/zoo/', 'server/cli/']

const FS_IMPORT = /from\s+['"](?:node:)?fs(?:\/promises)?['"]|require\(\s*['"](?:node:)?fs/
/** Outgoing connections: fetch, http(s).request/get, net/tls connect, HTTP client packages. */
const OUTGOING =
  /\bfetch\s*\(|\bhttps?\.(?:request|get)\s*\(|\b(?:net|tls)\.(?:connect|createConnection)\s*\(|from\s+['"](?:undici|axios|got|node-fetch)['"]|import\s*\{[^}]*\b(?:request|get|connect|createConnection)\b[^}]*\}\s*from\s*['"](?:node:)?(?:https?|net|tls)['"]/

describe('audit: no file path or URL from request input', () => {
  it('only reviewed modules touch the file system', () => {
    const users = FILES.filter((f) => FS_IMPORT.test(f.text)).map((f) => f.path)
    const unreviewed = users.filter(
      (path) => !FS_ALLOWED[path] && !FS_DIRECTORIES.some((d) => path.startsWith(d)),
    )
    assert.deepEqual(unreviewed, [], 'new file-system users: review them and add them here with a reason')
    for (const path of Object.keys(FS_ALLOWED)) assert.ok(users.includes(path), `${path} no longer uses fs`)
  })

  it('no file-system call takes an argument derived from the request', () => {
    const call =
      /\b(?:readFile|readFileSync|createReadStream|open|openSync|stat|statSync|lstat|access|existsSync|readdir|readdirSync|copyFile|writeFile|rm|unlink|sendFile)\s*\(([^)]*)\)/g
    const offending: string[] = []
    for (const file of FILES) {
      for (const match of file.text.matchAll(call)) {
        const args = match[1] ?? ''
        if (/\b(?:request|req|params|query|body|headers|url)\b/.test(args))
          offending.push(`${file.path}: ${match[0]}`)
      }
    }
    assert.deepEqual(offending, [])
  })

  it('the server never fetches anything by URL (no image URLs, no remote models)', () => {
    // main.ts only listens; nothing in server/ opens an outgoing connection.
    const clients = FILES.filter((f) => OUTGOING.test(f.text)).map((f) => f.path)
    assert.deepEqual(clients, [])
  })

  it('a reload is only ever of the configured ZOO_DIR: no caller passes a directory', () => {
    const calls = FILES.filter((f) => !f.path.startsWith('server/runtime/')).flatMap((f) =>
      [...f.text.matchAll(/zooManager\.reload\(([^)]*)\)/g)].map((m) => `${f.path}: ${m[0]}`),
    )
    assert.ok(calls.length >= 2, calls.join('\n'))
    for (const call of calls) assert.match(call, /reload\(\)$/, call)
  })

  it('model files are plain names inside ZOO_DIR: the manifest schema forbids separators and dot names', () => {
    const modelFile = (
      ManifestSchema.properties.models as unknown as { items: { properties: { file: { pattern?: string } } } }
    ).items.properties.file
    const pattern = new RegExp(modelFile.pattern ?? '')
    for (const bad of ['../x.onnx', '/etc/passwd', 'a/b.onnx', 'a\\b.onnx', '..', '.']) {
      assert.doesNotMatch(bad, pattern, bad)
    }
    assert.match('model-a.onnx', pattern)
  })
})
