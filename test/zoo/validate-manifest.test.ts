import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Manifest } from '../../server/zoo/manifest-schema.js'
import { ManifestError, parseManifest, validateManifest } from '../../server/zoo/validate-manifest.js'
import { readFixtureManifest } from '../helper.js'

/** Expects validateManifest to reject `edit(fixture)` with a problem matching every pattern. */
async function rejects(edit: (m: Manifest & Record<string, unknown>) => void, ...patterns: RegExp[]) {
  const manifest = (await readFixtureManifest()) as Manifest & Record<string, unknown>
  edit(manifest)
  assert.throws(
    () => validateManifest(manifest),
    (error: unknown) => {
      assert.ok(error instanceof ManifestError, String(error))
      for (const pattern of patterns) {
        assert.ok(
          error.problems.some((p) => pattern.test(p)),
          `no problem matches ${pattern}: ${error.problems.join(' | ')}`,
        )
      }
      return true
    },
  )
}

const first = (m: Manifest) => {
  const model = m.models[0]
  if (!model) throw new Error('fixture has no models')
  return model
}

describe('manifest validation', () => {
  it('accepts the fixture manifest', async () => {
    const manifest = validateManifest(await readFixtureManifest())
    assert.equal(manifest.models.length, 4)
  })

  it('rejects an unknown schemaVersion with one clear message', async () => {
    await rejects((m) => {
      m.schemaVersion = 2 as 1
      m.models = 'garbage' as unknown as Manifest['models']
    }, /^unsupported schemaVersion 2: this server reads version 1/)
    await rejects((m) => {
      delete (m as Partial<Manifest>).schemaVersion
    }, /missing "schemaVersion"/)
    await rejects((m) => {
      m.schemaVersion = '1' as unknown as 1
    }, /unsupported schemaVersion "1"/)
  })

  it('names the field of schema violations', async () => {
    await rejects((m) => {
      first(m).top1 = 1.5
    }, /^models\[0\]\.top1: must be <= 1/)
    await rejects((m) => {
      delete (first(m) as Partial<Manifest['models'][number]>).sha256
    }, /^models\[0\]: missing required "sha256"/)
    await rejects((m) => {
      ;(first(m) as Record<string, unknown>).topl = 0.5
    }, /^models\[0\]: unknown field "topl"/)
    await rejects((m) => {
      first(m).sha256 = 'ABC'
    }, /models\[0\]\.sha256/)
    await rejects((m) => {
      first(m).mflops = 0
    }, /models\[0\]\.mflops/)
    await rejects((m) => {
      first(m).input.channels = 2 as 1
    }, /models\[0\]\.input\.channels/)
    await rejects((m) => {
      first(m).arch.depth = [1, 1]
    }, /models\[0\]\.arch\.depth/)
    await rejects((m) => {
      m.models = []
    }, /^models: /)
  })

  it('only accepts plain file names inside the zoo directory', async () => {
    for (const file of ['../escape.onnx', 'sub/dir.onnx', '..', '.', 'C:\\x.onnx']) {
      await rejects((m) => {
        first(m).file = file
      }, /models\[0\]\.file/)
    }
  })

  it('checks the invariants the schema cannot express', async () => {
    await rejects((m) => {
      const copy = structuredClone(first(m))
      copy.file = 'other.onnx'
      m.models.push(copy)
    }, /duplicate model name "fixture-gray28-small"/)
    await rejects((m) => {
      const copy = structuredClone(first(m))
      copy.name = 'another-name'
      m.models.push(copy)
    }, /file "fixture-gray28-small.onnx" is also used by "fixture-gray28-small"/)
    await rejects((m) => {
      m.defaultModel = 'no-such-model'
    }, /defaultModel "no-such-model" names no model/)
    await rejects((m) => {
      first(m).input.mean = [0.1, 0.2, 0.3]
    }, /input\.mean has 3 values for 1 channel/)
    await rejects((m) => {
      first(m).input.std = [0.1, 0.2, 0.3]
    }, /input\.std has 3 values for 1 channel/)
    await rejects((m) => {
      first(m).input.std = [0]
    }, /input\.std/)
    await rejects((m) => {
      first(m).input.resizeShortSide = 20
    }, /resizeShortSide 20 is smaller than input\.size 28/)
    await rejects((m) => {
      first(m).arch.resolution = 99
    }, /arch\.resolution 99 differs from resolution 28/)
    await rejects((m) => {
      first(m).top5 = 0.5
    }, /top5 0.5 is below top1 0.8/)
  })

  it('reports every problem at once', async () => {
    await rejects(
      (m) => {
        m.defaultModel = 'ghost'
        first(m).input.resizeShortSide = 1
      },
      /defaultModel "ghost"/,
      /resizeShortSide 1/,
    )
  })

  it('parses JSON text and reports syntax errors as manifest problems', () => {
    assert.throws(
      () => parseManifest('{"schemaVersion": 1,', 'zoo/manifest.json'),
      /zoo\/manifest.json is invalid:\n {2}not valid JSON/,
    )
    assert.throws(() => parseManifest('[]'), /must be a JSON object/)
  })
})
