/** npm run zoo:cascades: usage errors, held-out probabilities, candidate evaluation. */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { runCascadesCli } from '../../server/cli/cascades.js'
import { FIXTURE_ZOO_DIR } from '../helper.js'

const DATASET = join(FIXTURE_ZOO_DIR, 'fixture-gray28.dataset.bin')
const GRAY = ['fixture-gray28-small', 'fixture-gray28-large']

async function cli(argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const code = await runCascadesCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) })
  return { code, out: out.join(''), err: err.join('') }
}

describe('zoo:cascades', () => {
  it('refuses bad usage with exit 2 and the reason', async () => {
    assert.match((await cli(['guess', FIXTURE_ZOO_DIR, '--dataset', DATASET])).err, /unknown command "guess"/)
    assert.equal((await cli(['evaluate', FIXTURE_ZOO_DIR])).code, 2)
    assert.match((await cli(['evaluate', FIXTURE_ZOO_DIR, '--dataset', DATASET])).err, /needs --cascades/)
    assert.match(
      (await cli(['probabilities', FIXTURE_ZOO_DIR, '--dataset', DATASET, '--out', 'x', '--runs', '-1'])).err,
      /--runs/,
    )
  })

  it('writes softmax outputs and evaluates candidates; bad candidates exit 1', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'cascades-cli-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const out = join(dir, 'p.bin')
    const probs = await cli([
      'probabilities',
      FIXTURE_ZOO_DIR,
      '--dataset',
      DATASET,
      '--out',
      out,
      '--models',
      GRAY.join(','),
    ])
    assert.equal(probs.code, 0, probs.err)
    const bytes = await readFile(out)
    assert.equal(bytes.toString('latin1', 0, 8), 'AZPROB01')
    const headerLength = bytes.readUInt32LE(8)
    const header = JSON.parse(bytes.toString('utf8', 12, 12 + headerLength)) as {
      count: number
      classes: number
    }
    assert.equal(bytes.length, 12 + headerLength + 2 * header.count * header.classes * 8)
    const rows = new Float64Array(
      bytes.buffer.slice(
        bytes.byteOffset + 12 + headerLength,
        bytes.byteOffset + 12 + headerLength + header.classes * 8,
      ),
    )
    assert.ok(Math.abs(rows.reduce((a, b) => a + b, 0) - 1) < 1e-9)

    const candidates = join(dir, 'c.json')
    await writeFile(
      candidates,
      JSON.stringify({ cascades: [{ name: 'c', stages: GRAY, thresholds: [2e-1] }] }),
    )
    const evaluated = await cli(['evaluate', FIXTURE_ZOO_DIR, '--dataset', DATASET, '--cascades', candidates])
    assert.equal(evaluated.code, 0, evaluated.err)
    const report = JSON.parse(evaluated.out) as {
      cascades: { top1: number; exitFractions: number[]; meanMflops: number }[]
    }
    const [result] = report.cascades
    assert.ok(result && result.top1 >= 0 && result.top1 <= 1)
    assert.ok(Math.abs(result.exitFractions.reduce((a, b) => a + b, 0) - 1) < 1e-9)

    await writeFile(
      candidates,
      JSON.stringify({ cascades: [{ name: 'c', stages: GRAY, thresholds: [0.1, 0.2] }] }),
    )
    assert.match(
      (await cli(['evaluate', FIXTURE_ZOO_DIR, '--dataset', DATASET, '--cascades', candidates])).err,
      /2 stages need 1 threshold/,
    )
    await writeFile(
      candidates,
      JSON.stringify({
        cascades: [{ name: 'c', stages: ['fixture-gray28-small', 'nope'], thresholds: [0.5] }],
      }),
    )
    const missing = await cli(['evaluate', FIXTURE_ZOO_DIR, '--dataset', DATASET, '--cascades', candidates])
    assert.equal(missing.code, 1)
    assert.match(missing.err, /no model named "nope"/)
  })
})
