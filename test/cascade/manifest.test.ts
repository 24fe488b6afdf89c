/** The manifest's cascades: accepted when consistent, refused with a clear problem otherwise. */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Manifest } from '../../server/zoo/manifest-schema.js'
import { ManifestError, validateManifest } from '../../server/zoo/validate-manifest.js'
import { readFixtureManifest, ROOT } from '../helper.js'
import { fixtureCascade } from './fixture-cascade.js'

async function withCascades(...cascades: unknown[]): Promise<Manifest> {
  const manifest = await readFixtureManifest()
  return { ...manifest, cascades } as Manifest
}

async function refused(cascade: unknown, pattern: RegExp): Promise<void> {
  const manifest = await withCascades(cascade)
  assert.throws(
    () => validateManifest(manifest),
    (error: unknown) => {
      assert.ok(error instanceof ManifestError)
      assert.ok(
        error.problems.some((p) => pattern.test(p)),
        `no problem matches ${pattern}: ${error.problems.join(' | ')}`,
      )
      return true
    },
  )
}

describe('manifest cascades', () => {
  it('a zoo with or without cascades is valid', async () => {
    validateManifest(await readFixtureManifest())
    validateManifest(await withCascades())
    assert.equal(validateManifest(await withCascades(fixtureCascade())).cascades?.length, 1)
    // Three stages: a third model of the gray28 contract, a copy of the large one that costs more.
    const manifest = await withCascades(
      fixtureCascade({
        stages: ['fixture-gray28-small', 'fixture-gray28-large', 'fixture-gray28-larger'],
        thresholds: [0.9, 0.8],
        worstMflops: 0.188848 + 2.07488 + 3,
        heldOut: { ...fixtureCascade().heldOut, exitFractions: [0.8, 0.1, 0.1] },
        evaluation: { ...fixtureCascade().evaluation, exitFractions: [0.8, 0.12, 0.08] },
      }),
    )
    const large = manifest.models.find((m) => m.name === 'fixture-gray28-large')
    assert.ok(large)
    manifest.models.push({
      ...large,
      name: 'fixture-gray28-larger',
      file: 'fixture-gray28-larger.onnx',
      mflops: 3,
    })
    assert.equal(validateManifest(manifest).cascades?.[0]?.stages.length, 3)
    // The bundled zoo's manifest, whatever cascades the last publish kept.
    const bundled = JSON.parse(await readFile(join(ROOT, 'models', 'manifest.json'), 'utf8')) as Manifest
    assert.ok(validateManifest(bundled).models.length > 0)
  })

  it('refuses inconsistent cascades with the reason', async () => {
    await refused(fixtureCascade({ stages: ['fixture-gray28-small', 'nope'] }), /stage "nope" names no model/)
    await refused(fixtureCascade({ name: 'fixture-gray28-small' }), /is also a model's name/)
    await refused(fixtureCascade({ thresholds: [0.5, 0.6] }), /2 stages need 1 threshold/)
    await refused(
      fixtureCascade({ stages: ['fixture-gray28-large', 'fixture-gray28-small'] }),
      /strictly increasing MFLOPs/,
    )
    await refused(
      fixtureCascade({
        stages: ['fixture-gray28-large', 'fixture-rgb32'],
        worstMflops: 5.1699,
        expectedMflops: 3,
      }),
      /another input contract/,
    )
    await refused(fixtureCascade({ worstMflops: 3 }), /worstMflops 3 is not the stages' sum 2.2637/)
    await refused(fixtureCascade({ expectedMflops: 0.1 }), /expectedMflops 0.1 is outside/)
    await refused(
      fixtureCascade({ heldOut: { ...fixtureCascade().heldOut, exitFractions: [0.5, 0.4] } }),
      /heldOut.exitFractions sums to 0.9/,
    )
    await refused(
      fixtureCascade({ latencyMs: { expected: 2, worst: 1, batchSize: 1, host: 'h' } }),
      /latencyMs.worst 1 is below/,
    )
    await refused({ ...fixtureCascade(), rule: 'margin' }, /cascades\[0\]\.rule/)
    await refused({ ...fixtureCascade(), thresholds: [1.5] }, /cascades\[0\]\.thresholds\[0\]/)
    const twice = await withCascades(fixtureCascade(), fixtureCascade())
    assert.throws(() => validateManifest(twice), /duplicate cascade name "fixture-cascade"/)
  })
})
