import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generatedFiles, staleFiles } from '../scripts/generate.js'

describe('generated files', () => {
  it('are committed and current (run `npm run generate` after changing a schema)', async () => {
    assert.deepEqual(await staleFiles(), [])
  })

  it('include the manifest JSON Schema with its draft declared', async () => {
    const files = await generatedFiles()
    const schemaFile = files.find((f) => f.path === 'models/manifest.schema.json')
    assert.ok(schemaFile)
    const schema = JSON.parse(schemaFile.content) as Record<string, unknown>
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema')
    assert.deepEqual(schema.required, ['schemaVersion', 'zoo', 'models'])
  })
})
