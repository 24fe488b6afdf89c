/**
 * The transport benchmark's smoke run: `bench/transport.ts --quick` over the fixture zoo, the
 * server from source: both transports answer (the script itself refuses to go on when their
 * logits differ), and the report holds every section with figures that agree with each other.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { FIXTURE_ZOO_DIR, ROOT } from './helper.js'

interface Run {
  rps: number
  p50Ms: number
  p99Ms: number
  serverCpuMsPerRequest: number
  failures: number
}
interface TransportReport {
  quick: boolean
  models: {
    overhead: {
      model: string
      httpMs: number
      grpcMs: number
      bareRunMs: number
      grpcMinusHttpMs: number
      liveHttpMs: number
      liveGrpcMs: number
    }
    throughput: { clients: number; http: Run; grpc: Run; grpcToHttp: number }[]
  }[]
}

describe('bench/transport.ts --quick', () => {
  it('measures HTTP binary OIP and gRPC side by side and writes a consistent report', async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'alphanet-bench-transport-'))
    t.after(() => rm(out, { recursive: true, force: true }))
    const args = ['--quick', '--from-source', '--zoo', FIXTURE_ZOO_DIR, '--out', out, '--name', 'smoke']
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'transport.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const code = await new Promise((resolve) => child.on('exit', resolve))
    assert.equal(code, 0, stderr)
    const report = JSON.parse(await readFile(join(out, 'smoke.json'), 'utf8')) as TransportReport
    assert.equal(report.quick, true)
    // The smallest and the largest fixture model.
    assert.deepEqual(
      report.models.map((m) => m.overhead.model),
      ['fixture-gray28-small', 'fixture-rgb32'],
    )
    for (const { overhead, throughput } of report.models) {
      for (const ms of [
        overhead.httpMs,
        overhead.grpcMs,
        overhead.bareRunMs,
        overhead.liveHttpMs,
        overhead.liveGrpcMs,
      ])
        assert.ok(ms > 0)
      assert.ok(Math.abs(overhead.grpcMinusHttpMs - (overhead.grpcMs - overhead.httpMs)) < 0.01)
      assert.deepEqual(
        throughput.map((l) => l.clients),
        [1, 4],
      )
      for (const level of throughput) {
        for (const run of [level.http, level.grpc]) {
          assert.ok(run.rps > 0 && run.p99Ms >= run.p50Ms && run.serverCpuMsPerRequest > 0)
          assert.equal(run.failures, 0)
        }
        assert.ok(Math.abs(level.grpcToHttp - level.grpc.rps / level.http.rps) < 0.01)
      }
    }
    const markdown = await readFile(join(out, 'smoke.md'), 'utf8')
    assert.match(markdown, /## Overhead, one request at a time/)
    assert.match(markdown, /\| fixture-rgb32 \| 4 \|/)
  })
})
