/**
 * The serving benchmark's smoke run: `bench/run.ts --quick` over the fixture zoo, the server from
 * source, no PyTorch peer. Proves the script runs end to end and writes a complete, consistent
 * report (behaviour, not timing: the figures of a few seconds on a shared machine mean nothing).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { FIXTURE_MODELS, FIXTURE_ZOO_DIR, ROOT } from './helper.js'

interface Level {
  clients: number
  rps: number
  failures: number
}
interface SloConfig {
  config: string
  requests: number
  withinBudgetShare: number
  meanTop1Served: number
  served: Record<string, number>
}
interface QuickReport {
  quick: boolean
  machine: { cores: number; loadAtStart: number[] }
  zoos: {
    label: string
    overhead: {
      model: string
      httpMs: number
      inProcessMs: number
      overheadMs: number
      ratio: number
      idleInferenceMs: number
      bareRunMs: number
      inferenceRatio: number
    }[]
    throughput: {
      model: string
      levels: Level[]
      inProcessPipelineRps: number
      runtimeBatchedRps: number
      tensorPathRps: number
      ratioToInProcess: number
      health: { probes: number; p99Ms: number }
    }
    slo?: { budgetMs: number; arrivals: number; configs: SloConfig[] }
  }[]
  targets: { name: string; met: boolean | null }[]
}

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('exit', (code) => {
      resolve({ code, stderr })
    })
  })
}

describe('bench/run.ts --quick', () => {
  it('runs every section over the fixture zoo and writes a consistent JSON + Markdown report', async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'alphanet-bench-'))
    t.after(() => rm(out, { recursive: true, force: true }))
    const { code, stderr } = await run([
      '--quick',
      '--from-source',
      '--zoo',
      FIXTURE_ZOO_DIR,
      '--out',
      out,
      '--name',
      'smoke',
    ])
    assert.equal(code, 0, stderr)
    const report = JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8')) as QuickReport
    assert.equal(report.quick, true)
    assert.ok(report.machine.cores >= 1 && report.machine.loadAtStart.length === 3)
    assert.equal(report.zoos.length, 1, 'quick mode benchmarks the given zoo only')
    const [zoo] = report.zoos
    assert.ok(zoo)
    // The cheapest and the largest fixture models are the ones measured.
    assert.deepEqual(
      zoo.overhead.map((o) => o.model),
      ['fixture-gray28-small', 'fixture-rgb32'],
    )
    for (const overhead of zoo.overhead) {
      assert.ok(overhead.httpMs > 0 && overhead.inProcessMs > 0)
      assert.ok(Math.abs(overhead.overheadMs - (overhead.httpMs - overhead.inProcessMs)) < 0.01)
      assert.ok(overhead.idleInferenceMs > 0 && overhead.bareRunMs > 0)
      assert.ok(overhead.inferenceRatio > 0)
    }
    const tp = zoo.throughput
    assert.deepEqual(
      tp.levels.map((l) => l.clients),
      [1, 4],
    )
    for (const l of tp.levels) {
      assert.ok(l.rps > 0, `no answers at ${l.clients} clients`)
      assert.equal(l.failures, 0)
    }
    assert.ok(tp.inProcessPipelineRps > 0 && tp.runtimeBatchedRps > 0 && tp.tensorPathRps > 0)
    assert.ok(tp.health.probes > 0 && tp.health.p99Ms > 0)
    // The SLO ramp replays one arrival schedule per configuration: auto, then the extremes.
    const slo = zoo.slo
    assert.ok(slo && slo.budgetMs > 0 && slo.arrivals > 0)
    assert.deepEqual(
      slo.configs.map((c) => c.config),
      ['auto (maxLatencyMs)', 'fixture-gray28-small', 'fixture-rgb32'],
    )
    for (const config of slo.configs) {
      assert.equal(config.requests, slo.arrivals)
      assert.ok(config.withinBudgetShare >= 0 && config.withinBudgetShare <= 1)
      for (const model of Object.keys(config.served)) {
        assert.ok((FIXTURE_MODELS as readonly string[]).includes(model), model)
      }
    }
    assert.deepEqual(Object.keys(slo.configs[1]?.served ?? {}), ['fixture-gray28-small'])
    assert.ok(report.targets.length >= 4 && report.targets.every((t) => typeof t.met === 'boolean'))

    const markdown = await readFile(join(out, 'smoke.md'), 'utf8')
    for (const heading of ['## Targets', '### Overhead', '### Throughput', '### SLO ramp']) {
      assert.ok(markdown.includes(heading), `missing ${heading}`)
    }
  })

  it('refuses bad options with a message', async () => {
    const { code, stderr } = await run(['--quick', '--seconds', '0'])
    assert.notEqual(code, 0)
    assert.match(stderr, /--seconds must be a positive number/)
  })
})
