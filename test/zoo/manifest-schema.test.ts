/**
 * The training side validates manifests with Python's jsonschema against the committed
 * models/manifest.schema.json: prove that schema accepts what the server accepts and rejects
 * what it rejects, with the interpreter the pipeline uses.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Compile } from 'typebox/compile'
import { ManifestSchema } from '../../server/zoo/manifest-schema.js'
import { readFixtureManifest, ROOT } from '../helper.js'

const PYTHON = process.env.PYTHON ?? '/usr/bin/python3'

const CHECK = `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)
out = []
for doc in json.load(sys.stdin):
    out.append(sorted(e.json_path for e in validator.iter_errors(doc)))
print(json.dumps({"validator": cls.__name__, "errors": out}))
`

describe('models/manifest.schema.json', () => {
  it('judges manifests the same in Python jsonschema as in the server', async () => {
    const good = await readFixtureManifest()
    const bad = structuredClone(good)
    const model = bad.models[0]
    assert.ok(model)
    model.top1 = 1.2
    model.file = '../outside.onnx'
    ;(model as Record<string, unknown>).unexpected = true
    const wrongVersion = { ...structuredClone(good), schemaVersion: 2 }

    const output = execFileSync(PYTHON, ['-c', CHECK, join(ROOT, 'models', 'manifest.schema.json')], {
      input: JSON.stringify([good, bad, wrongVersion]),
      encoding: 'utf8',
    })
    const result = JSON.parse(output) as { validator: string; errors: string[][] }
    assert.equal(result.validator, 'Draft202012Validator')
    assert.deepEqual(result.errors[0], [])
    assert.deepEqual(result.errors[1], ['$.models[0]', '$.models[0].file', '$.models[0].top1'])
    assert.deepEqual(result.errors[2], ['$.schemaVersion'])

    const server = Compile(ManifestSchema)
    assert.equal(server.Check(good), true)
    assert.equal(server.Check(bad), false)
    assert.equal(server.Check(wrongVersion), false)
  })
})
