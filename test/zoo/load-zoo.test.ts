import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { loadZoo, sha256File } from '../../server/zoo/load-zoo.js'
import { ManifestError } from '../../server/zoo/validate-manifest.js'
import { BROKEN_MODELS, copyFixtureZoo, createBrokenZoo, FIXTURE_MODELS, FIXTURE_ZOO_DIR } from '../helper.js'

describe('loadZoo', () => {
  it('loads the fixture zoo with every file verified', async () => {
    const zoo = await loadZoo(FIXTURE_ZOO_DIR)
    assert.equal(zoo.dir, FIXTURE_ZOO_DIR)
    assert.deepEqual(
      zoo.models.map((m) => m.name),
      [...FIXTURE_MODELS],
    )
    for (const model of zoo.models) {
      assert.equal(model.ready, true, model.reason)
      assert.equal(model.path, join(FIXTURE_ZOO_DIR, model.file))
      assert.equal(await sha256File(model.path), model.sha256)
    }
  })

  it('marks a missing file and a checksum mismatch not ready, keeping the others', async (t) => {
    const zoo = await loadZoo(await createBrokenZoo(t))
    const byName = new Map(zoo.models.map((m) => [m.name, m]))
    for (const name of FIXTURE_MODELS) assert.equal(byName.get(name)?.ready, true)
    const missing = byName.get(BROKEN_MODELS.missing)
    assert.equal(missing?.ready, false)
    assert.equal(missing.reason, `model file ${BROKEN_MODELS.missing}.onnx is missing`)
    const checksum = byName.get(BROKEN_MODELS.checksum)
    assert.equal(checksum?.ready, false)
    assert.match(checksum.reason ?? '', /has sha256 [0-9a-f]{64}, the manifest declares 0{64}/)
    // A corrupt file with a matching checksum passes here; session creation rejects it (runtime tests).
    assert.equal(byName.get(BROKEN_MODELS.corrupt)?.ready, true)
  })

  it('keeps the manifest latency apart from the latency measured on this host', async (t) => {
    const dir = await copyFixtureZoo(t, {
      models: ['fixture-rgb32'],
      mutate: (m) => {
        const model = m.models[0]
        if (model) model.latencyMs = { p50: 1.5, p95: 2.5, batchSize: 1, host: 'training-box' }
      },
    })
    const [model] = (await loadZoo(dir)).models
    assert.deepEqual(model?.pipelineLatencyMs, { p50: 1.5, p95: 2.5, batchSize: 1, host: 'training-box' })
    assert.equal(model.latencyMs, undefined)
  })

  it('rejects a directory without a manifest, naming the path', async () => {
    await assert.rejects(
      loadZoo('/nonexistent/zoo'),
      (error: unknown) =>
        error instanceof ManifestError && /\/nonexistent\/zoo\/manifest.json not found/.test(error.message),
    )
  })

  it('rejects an invalid manifest as a whole', async (t) => {
    const dir = await copyFixtureZoo(t, {
      models: ['fixture-rgb32'],
      mutate: (m) => {
        m.defaultModel = 'missing-model'
      },
    })
    await assert.rejects(loadZoo(dir), /defaultModel "missing-model" names no model/)
  })
})
