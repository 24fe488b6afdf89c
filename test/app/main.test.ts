/**
 * The process entry end to end: flags and environment, start-up failures with their exit codes,
 * SIGHUP reload and SIGTERM drain with exit 0.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { describe, it } from 'node:test'
import { diagnoseCudaFailure } from '../../server/runtime/cuda-diagnostics.js'
import { FIXTURE_ZOO_DIR, ROOT } from '../helper.js'

const BASE_ENV = {
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  ZOO_DIR: FIXTURE_ZOO_DIR,
  WORKER_THREADS: '1',
  INTRA_OP_THREADS: '1',
  WARMUP_RUNS: '2',
  EXECUTION_PROVIDER: 'cpu',
  HOST: '127.0.0.1',
  PORT: '0',
  GRPC_PORT: '0',
}

interface Run {
  child: ChildProcessWithoutNullStreams
  stdout: () => string
  stderr: () => string
  exit: Promise<number | null>
}

function start(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', ...args], {
    cwd: ROOT,
    env: { ...BASE_ENV, ...env },
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  const exit = once(child, 'exit').then(([code]) => code as number | null)
  return { child, stdout: () => out, stderr: () => err, exit }
}

/** Resolves with the first log line whose message matches. */
async function waitForLog(run: Run, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const line = run
      .stdout()
      .split('\n')
      .find((l) => pattern.test(l))
    if (line !== undefined) return line
    if (run.child.exitCode !== null)
      throw new Error(`exited ${run.child.exitCode}: ${run.stderr()}${run.stdout()}`)
    if (Date.now() > deadline)
      throw new Error(`no log line ${pattern} within ${timeoutMs} ms:\n${run.stdout()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('server/main', () => {
  it('--help prints every setting and exits 0', async () => {
    const run = start(['--help'])
    assert.equal(await run.exit, 0)
    for (const name of ['--zoo-dir', 'ZOO_DIR', 'EXECUTION_PROVIDER', 'WORKER_THREADS', 'INTRA_OP_THREADS']) {
      assert.match(run.stdout(), new RegExp(name))
    }
  })

  it('exits 2 on an invalid setting, naming it', async () => {
    const run = start(['--port', 'eighty'])
    assert.equal(await run.exit, 2)
    assert.match(run.stderr(), /--port: expected an integer, got "eighty"/)
  })

  it('exits 1 when EXECUTION_PROVIDER=cuda and CUDA is unavailable', async (t) => {
    if (diagnoseCudaFailure('').missing.length === 0) {
      t.diagnostic('CUDA is available on this host: the unavailable path cannot occur')
      return
    }
    const run = start([], { EXECUTION_PROVIDER: 'cuda' })
    assert.equal(await run.exit, 1)
    assert.match(
      run.stderr(),
      /cannot start: EXECUTION_PROVIDER=cuda: CUDA execution provider unavailable: missing .*libcudnn\.so\.9/,
    )
  })

  it('serves, reloads on SIGHUP, and drains on SIGTERM with exit 0', async () => {
    const run = start([])
    try {
      const listening = await waitForLog(run, /Server listening at http:\/\/127\.0\.0\.1:\d+/)
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(listening)?.[1] ?? ''
      const ready = await fetch(`${url}/readyz`)
      assert.equal(ready.status, 200)
      assert.deepEqual(await ready.json(), { status: 'ready', models: 4 })

      run.child.kill('SIGHUP')
      await waitForLog(run, /"msg":"zoo reloaded"/)
      assert.equal((await fetch(`${url}/readyz`)).status, 200)

      run.child.kill('SIGTERM')
      assert.equal(await run.exit, 0)
      assert.match(run.stdout(), /"msg":"shutting down: refusing new requests, finishing in-flight ones"/)
      assert.match(run.stdout(), /"msg":"shut down cleanly"/)
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL')
    }
  })
})
