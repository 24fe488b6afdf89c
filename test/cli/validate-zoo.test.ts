import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { readDataset } from '../../server/cli/dataset-file.js'
import { runCli } from '../../server/cli/validate-zoo.js'
import {
  validateZoo,
  type ValidationOptions,
  type ValidationReport,
} from '../../server/cli/zoo-validation.js'
import {
  BROKEN_MODELS,
  copyFixtureZoo,
  createBrokenZoo,
  fixturePath,
  FIXTURE_ZOO_DIR,
  ROOT,
} from '../helper.js'

const DATASET = fixturePath('zoo', 'fixture-gray28.dataset.bin')
const OPTIONS: ValidationOptions = {
  zooDir: FIXTURE_ZOO_DIR,
  executionProvider: 'cpu',
  intraOpThreads: 1,
  latencyRuns: 3,
  referenceTolerance: 1e-4,
  batchSize: 16,
}

const model = (report: ValidationReport, name: string) => {
  const found = report.models.find((m) => m.name === name)
  assert.ok(found, `no report for ${name}`)
  return found
}

describe('zoo validation', () => {
  it('passes the fixture zoo: references reproduced, top-1 measured where the dataset fits', async () => {
    const report = await validateZoo({
      ...OPTIONS,
      dataset: await readDataset(DATASET),
      datasetPath: DATASET,
    })
    assert.equal(report.ok, true, JSON.stringify(report, null, 2))
    assert.equal(report.zoo, 'fixture-zoo')
    assert.equal(report.executionProvider, 'cpu')
    assert.deepEqual(report.dataset, { path: DATASET, samples: 64, classes: 10 })
    for (const m of report.models) {
      assert.ok(m.reference && m.reference.maxAbsDiff <= 1e-4, `${m.name}: ${JSON.stringify(m.reference)}`)
      assert.equal(m.latencyMs?.samples, 3)
    }
    // The dataset is labelled with fixture-gray28-large's own predictions.
    const large = model(report, 'fixture-gray28-large').top1
    assert.ok(large && 'measured' in large)
    assert.equal(large.measured, 1)
    assert.equal(large.samples, 64)
    assert.equal(large.delta, 1 - 0.88)
    const small = model(report, 'fixture-gray28-small').top1
    assert.ok(small && 'measured' in small && small.measured < 1)
    const rgb = model(report, 'fixture-rgb32').top1
    assert.ok(rgb && 'skipped' in rgb)
    assert.match(rgb.skipped, /another input contract \(channels 1 vs 3, size 28 vs 32/)
  })

  it('fails a model whose top-1 is off the manifest by more than the tolerance', async () => {
    const report = await validateZoo({
      ...OPTIONS,
      dataset: await readDataset(DATASET),
      top1Tolerance: 0.05,
      latencyRuns: 1,
    })
    assert.equal(report.ok, false)
    assert.deepEqual(model(report, 'fixture-gray28-large').problems, [
      "top-1 1.0000 differs from the manifest's 0.88 by more than 0.05",
    ])
  })

  it('fails a model whose output does not reproduce its reference', async (t) => {
    const dir = await copyFixtureZoo(t, { models: ['fixture-rgb32'] })
    const path = join(dir, 'fixture-rgb32.reference.json')
    const reference = JSON.parse(await readFile(path, 'utf8')) as { output: { data: number[] } }
    reference.output.data[3] = (reference.output.data[3] ?? 0) + 0.01
    await writeFile(path, JSON.stringify(reference))
    const report = await validateZoo({ ...OPTIONS, zooDir: dir, latencyRuns: 1 })
    assert.equal(report.ok, false)
    const [problem] = model(report, 'fixture-rgb32').problems
    assert.match(problem ?? '', /^reference output differs by 1\.00\de-2 \(> 0\.0001\)$/)
  })

  it('reports every broken model of a zoo', async (t) => {
    const report = await validateZoo({ ...OPTIONS, zooDir: await createBrokenZoo(t), latencyRuns: 1 })
    assert.equal(report.ok, false)
    assert.match(model(report, BROKEN_MODELS.missing).problems[0] ?? '', /is missing/)
    assert.match(model(report, BROKEN_MODELS.checksum).problems[0] ?? '', /has sha256/)
    assert.match(model(report, BROKEN_MODELS.corrupt).problems[0] ?? '', /^session creation failed/)
    assert.equal(model(report, 'fixture-rgb32').ok, true)
  })

  it('reports an invalid manifest as a zoo-level problem', async () => {
    const report = await validateZoo({ ...OPTIONS, zooDir: '/nonexistent' })
    assert.equal(report.ok, false)
    assert.match(report.problems[0] ?? '', /manifest.json not found/)
  })
})

function collector() {
  const io = { stdout: '', stderr: '' }
  return {
    io,
    output: {
      out: (text: string) => {
        io.stdout += text
      },
      err: (text: string) => {
        io.stderr += text
      },
    },
  }
}

describe('zoo:validate CLI', () => {
  it('prints the JSON report, writes --json and exits 0 on a valid zoo', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'validate-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const out = join(dir, 'report.json')
    const { io, output } = collector()
    const argv = [
      FIXTURE_ZOO_DIR,
      '--dataset',
      DATASET,
      '--json',
      out,
      '--runs',
      '2',
      '--intra-op-threads',
      '1',
    ]
    assert.equal(await runCli(argv, output), 0)
    const printed = JSON.parse(io.stdout) as ValidationReport
    assert.equal(printed.ok, true)
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')), printed)
    assert.equal(io.stderr, '')
  })

  it('exits 1 with a summary on a broken zoo or an unreadable dataset', async (t) => {
    const broken = await createBrokenZoo(t, { includeGood: false })
    const first = collector()
    assert.equal(await runCli([broken, '--runs', '1'], first.output), 1)
    assert.match(first.io.stderr, /zoo validation FAILED\n {2}broken-missing-file: model file .* is missing/)
    assert.equal((JSON.parse(first.io.stdout) as ValidationReport).ok, false)
    const second = collector()
    assert.equal(await runCli([FIXTURE_ZOO_DIR, '--dataset', '/no/data.bin'], second.output), 1)
    assert.match(second.io.stderr, /dataset \/no\/data.bin: cannot read/)
  })

  it('exits 2 on usage errors', async () => {
    for (const [argv, pattern] of [
      [[], /expected exactly one zoo directory/],
      [['a', 'b'], /expected exactly one zoo directory/],
      [[FIXTURE_ZOO_DIR, '--runs', '0'], /--runs expects a positive integer, got "0"/],
      [[FIXTURE_ZOO_DIR, '--execution-provider', 'tpu'], /--execution-provider must be auto, cuda or cpu/],
      [[FIXTURE_ZOO_DIR, '--bogus'], /Unknown option '--bogus'/],
    ] as const) {
      const { io, output } = collector()
      assert.equal(await runCli([...argv], output), 2, String(argv))
      assert.match(io.stderr, pattern)
      assert.match(io.stderr, /Usage: npm run zoo:validate/)
    }
  })

  it('runs as a process (the npm script entry)', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'server/cli/validate-zoo.ts',
        FIXTURE_ZOO_DIR,
        '--runs',
        '1',
        '--intra-op-threads',
        '1',
      ],
      { cwd: ROOT },
    )
    assert.equal((JSON.parse(stdout) as ValidationReport).ok, true)
  })
})
