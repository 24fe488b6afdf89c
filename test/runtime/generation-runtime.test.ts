import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ApiError } from '../../server/errors.js'
import { GenerationRuntime } from '../../server/runtime/generation-runtime.js'
import { FIXTURE_ZOO_DIR } from '../helper.js'

const RGB = {
  name: 'fixture-rgb32',
  path: join(FIXTURE_ZOO_DIR, 'fixture-rgb32.onnx'),
  inputName: 'input',
  channels: 3,
  size: 32,
  classes: 10,
}

describe('GenerationRuntime', () => {
  it('reports per model whether every worker holds a session', async () => {
    const pool = await GenerationRuntime.start({
      models: [
        RGB,
        { ...RGB, name: 'wrong-signature', size: 28 },
        { ...RGB, name: 'absent', path: '/no/such.onnx' },
      ],
      provider: 'cpu',
      cpuFallback: false,
      threads: 2,
      intraOpThreads: 1,
    })
    try {
      assert.equal(pool.threads, 2)
      const { preprocessMs, ...status } = pool.statuses.get('fixture-rgb32') ?? {}
      assert.deepEqual(status, {
        name: 'fixture-rgb32',
        ready: true,
        executionProvider: 'cpu',
        maxBatch: 32,
      })
      assert.ok(typeof preprocessMs === 'number' && preprocessMs > 0)
      assert.match(
        pool.statuses.get('wrong-signature')?.reason ?? '',
        /^signature mismatch: input "input" has shape \[batch, 3, 32, 32\], the manifest implies \[N, 3, 28, 28\]/,
      )
      assert.match(
        pool.statuses.get('absent')?.reason ?? '',
        /^session creation failed: .*File doesn't exist/,
      )
      await assert.rejects(
        pool.run('absent', new Float32Array(3072), [1, 3, 32, 32]),
        (error: unknown) => error instanceof ApiError && error.code === 'MODEL_NOT_READY',
      )
    } finally {
      await pool.close()
    }
  })

  it('close() lets every run already submitted finish, then refuses new ones', async () => {
    const pool = await GenerationRuntime.start({
      models: [RGB],
      provider: 'cpu',
      cpuFallback: false,
      threads: 1,
      intraOpThreads: 1,
    })
    const input = new Float32Array(3072).fill(0.25)
    const runs = Array.from({ length: 30 }, () => pool.run('fixture-rgb32', input, [1, 3, 32, 32]))
    let closed = false
    const closing = pool.close().then(() => {
      closed = true
    })
    await assert.rejects(
      pool.run('fixture-rgb32', input, [1, 3, 32, 32]),
      (error: unknown) => error instanceof ApiError && error.code === 'MODEL_NOT_READY',
    )
    const results = await Promise.all(runs)
    assert.equal(results.length, 30)
    // Same input, same model: identical logits from every run.
    for (const r of results) assert.deepEqual(r.logits, results[0]?.logits)
    await closing
    assert.equal(closed, true)
  })
})
