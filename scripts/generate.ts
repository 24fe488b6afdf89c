/**
 * Writes the generated, committed artefacts, or with --check verifies they are current:
 *   models/manifest.schema.json  JSON Schema (draft 2020-12) of the zoo manifest, from server/zoo/manifest-schema.ts
 *   openapi/openapi.json         OpenAPI 3.1 document of the HTTP API, from the route schemas (scripts/openapi-document.ts)
 *   docs/ecosystem.md            its settings table, from server/config.ts (scripts/settings-table.ts)
 * test/generate.test.ts runs the check, so a change to a schema without regenerating fails the suite.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import { projectRoot } from '../server/config.js'
import { ManifestSchema } from '../server/zoo/manifest-schema.js'
import { openApiDocument } from './openapi-document.js'
import { SETTINGS_DOC, settingsDocument } from './settings-table.js'

export interface GeneratedFile {
  /** Path relative to the project root. */
  path: string
  content: string
}

const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema'

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`
}

/** The manifest JSON Schema as plain JSON, with its dialect declared first. */
export function manifestJsonSchema(): Record<string, unknown> {
  const schema = JSON.parse(JSON.stringify(ManifestSchema)) as Record<string, unknown>
  return { $schema: JSON_SCHEMA_DIALECT, ...schema }
}

export async function generatedFiles(): Promise<GeneratedFile[]> {
  return [
    { path: 'models/manifest.schema.json', content: json(manifestJsonSchema()) },
    { path: 'openapi/openapi.json', content: json(await openApiDocument()) },
    { path: SETTINGS_DOC, content: await settingsDocument() },
  ]
}

/** Files whose committed content differs from what would be generated (missing counts as stale). */
export async function staleFiles(root = projectRoot()): Promise<string[]> {
  const stale: string[] = []
  for (const file of await generatedFiles()) {
    const current = await readFile(join(root, file.path), 'utf8').catch(() => undefined)
    if (current !== file.content) stale.push(file.path)
  }
  return stale
}

export async function writeGenerated(root = projectRoot()): Promise<string[]> {
  const written: string[] = []
  for (const file of await generatedFiles()) {
    const target = join(root, file.path)
    await mkdir(dirname(target), { recursive: true })
    await writeFile(target, file.content)
    written.push(relative(root, target))
  }
  return written
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--check')) {
    const stale = await staleFiles()
    if (stale.length > 0) {
      console.error(
        `generated files are stale: ${stale.join(', ')}\nrun \`npm run generate\` and commit the result`,
      )
      return 1
    }
    console.log('generated files are current')
    return 0
  }
  for (const path of await writeGenerated()) console.log(`wrote ${path}`)
  return 0
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2))
}
