/**
 * Run-time faults, injected for real (the zoo is started with fault injection, a test-only switch):
 * an inference worker that dies mid-batch — by an uncaught exception or by process.exit — fails
 * that batch's requests with a coded error at once and is replaced; a model whose session.run
 * fails (onnxruntime rejecting the run) is taken out of service with the reason, selection routes
 * around it, and a probe puts it back once it runs again. Over HTTP too.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import request from 'supertest'
import { ApiError } from '../../server/errors.js'
import { ServingZoo } from '../../server/runtime/serving-zoo.js'
import type { GenerationSettings } from '../../server/runtime/zoo-generation.js'
import type { ClassifyResponse } from '../../server/schemas/classify.js'
import type { ModelSummary } from '../../server/schemas/models.js'
import { selectModel } from '../../server/selection/selector.js'
import { buildTestApp, FIXTURE_ZOO_DIR, fixturePath, startedServingZoo, until } from '../helper.js'
import { readFile } from 'node:fs/promises'

const SETTINGS: GenerationSettings = {
  zooDir: FIXTURE_ZOO_DIR,
  executionProvider: 'cpu',
  workerThreads: 1,
  intraOpThreads: 1,
  warmupRuns: 1,
  maxBatchSize: 4,
  maxQueueDelayUs: 0,
  maxQueueSize: 64,
  inferenceTimeoutMs: 30_000,
  probeDelayMs: 50,
  faultInjection: true,
}

const RGB = 'fixture-rgb32'
const rgbInput = () => new Float32Array(3 * 32 * 32).fill(0.25)

function isCode(code: string) {
  return (error: unknown) => error instanceof ApiError && error.code === code
}

function started(t: { after(fn: () => Promise<void>): void }, settings: Partial<GenerationSettings> = {}) {
  return startedServingZoo(t, { ...SETTINGS, ...settings })
}

describe('worker crashes', () => {
  for (const fault of ['crash', 'exit'] as const) {
    it(`a worker dying (${fault}) fails its batch with INFERENCE_FAILED at once, and is replaced`, async (t) => {
      const { zoo, log } = await started(t)
      zoo.injectFault(fault, RGB)
      // Three requests in one batch: all of them fail, none hangs.
      const batch = await Promise.allSettled(
        Array.from({ length: 3 }, () => zoo.run(RGB, rgbInput(), [1, 3, 32, 32])),
      )
      for (const outcome of batch) {
        assert.equal(outcome.status, 'rejected')
        assert.ok(isCode('INFERENCE_FAILED')(outcome.reason))
        assert.match((outcome.reason as Error).message, /inference worker \d+ died/)
      }
      // The replacement loads its sessions and serves; the model itself stays ready.
      await until(async () => {
        try {
          return (await zoo.run(RGB, rgbInput(), [1, 3, 32, 32])).logits.length === 10
        } catch {
          return false
        }
      })
      assert.equal(zoo.get(RGB)?.ready, true)
      assert.ok(log.entries.some((e) => /inference worker died and is being replaced/.test(e.msg)))
    })
  }

  it('requests queued behind the dying batch are served by the replacement', async (t) => {
    const { zoo } = await started(t, { maxBatchSize: 1 })
    zoo.injectFault('crash', RGB)
    const first = zoo.run(RGB, rgbInput(), [1, 3, 32, 32])
    const queued = Array.from({ length: 3 }, () => zoo.run(RGB, rgbInput(), [1, 3, 32, 32]))
    await assert.rejects(first, isCode('INFERENCE_FAILED'))
    const results = await Promise.all(queued)
    assert.ok(results.every((r) => r.logits.length === 10))
  })

  it('a preprocessing worker dying fails the images it held, never hangs, and is replaced', async (t) => {
    const { zoo, log } = await started(t)
    const jpeg = await readFile(fixturePath('images', 'photo.jpg'))
    const image = () => zoo.runImage(RGB, new Uint8Array(jpeg), { maxPixels: 1_000_000 })
    zoo.injectFault('preprocess-crash')
    const outcomes = await Promise.allSettled([image(), image(), image()])
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        assert.ok(isCode('INFERENCE_FAILED')(outcome.reason), String(outcome.reason))
      } else {
        assert.equal(outcome.value.logits.length, 10)
      }
    }
    await until(async () => {
      try {
        return (await image()).logits.length === 10
      } catch {
        return false
      }
    })
    assert.ok(log.entries.some((e) => /preprocessing worker died and is being replaced/.test(e.msg)))
  })

  it('fault injection is refused unless the zoo was started with it', async (t) => {
    const { zoo } = await started(t, { faultInjection: false })
    assert.throws(() => {
      zoo.injectFault('crash')
    }, /not enabled/)
  })
})

describe('a model failing at run time', () => {
  it('is marked not ready with the reason, routed around, and probed back into service', async (t) => {
    const { zoo, log } = await started(t)
    // Every run of rgb32 fails (probes included) until the fault is cleared.
    zoo.injectFault('model-error', RGB, 1_000_000)
    await assert.rejects(zoo.run(RGB, rgbInput(), [1, 3, 32, 32]), (error: unknown) => {
      assert.ok(isCode('INFERENCE_FAILED')(error))
      // onnxruntime's own message about the bad input it was given.
      assert.match((error as Error).message, /fixture-rgb32: .*dimension|fixture-rgb32: .*[Ii]nvalid/)
      return true
    })
    const entry = zoo.get(RGB)
    assert.equal(entry?.ready, false)
    assert.match(entry.reason ?? '', /^failed at run time: /)
    assert.ok(log.entries.some((e) => e.level === 'warn' && /taken out of service/.test(e.msg)))
    await assert.rejects(zoo.run(RGB, rgbInput(), [1, 3, 32, 32]), isCode('MODEL_NOT_READY'))

    // Selection routes around it: the most accurate remaining model serves.
    const outcome = selectModel(zoo.list(), { budget: { minTop1: 0.85 }, onInfeasible: 'reject' })
    assert.equal(outcome.kind === 'selected' ? outcome.model.name : outcome.kind, 'fixture-gray28-large')

    // Probes keep failing while the fault lasts; once it is gone the next probe restores it.
    await sleep(200)
    assert.equal(zoo.get(RGB)?.ready, false)
    zoo.clearFaults()
    await until(() => zoo.get(RGB)?.ready === true)
    assert.equal(zoo.get(RGB)?.reason, undefined)
    assert.equal((await zoo.run(RGB, rgbInput(), [1, 3, 32, 32])).logits.length, 10)
    assert.ok(log.entries.some((e) => /back in service/.test(e.msg)))
  })
})

describe('faults over HTTP', () => {
  async function faultyApp(t: Parameters<typeof buildTestApp>[0]) {
    // The switch is read when the zoo plugin starts: set it around buildApp only.
    process.env.ALPHANET_FAULT_INJECTION = '1'
    try {
      return await buildTestApp(t, { warmupRuns: 1, maxBatchSize: 4 })
    } finally {
      delete process.env.ALPHANET_FAULT_INJECTION
    }
  }

  it('a broken model answers 500 once, then GET /models shows why and classify routes around it', async (t) => {
    const app = await faultyApp(t)
    const zoo = app.zoo
    assert.ok(zoo instanceof ServingZoo)
    zoo.injectFault('model-error', RGB, 1_000_000)
    const jpeg = await readFile(fixturePath('images', 'photo.jpg'))
    const classify = () =>
      request(app.server).post('/v1/classify?minTop1=0.85').set('content-type', 'image/jpeg').send(jpeg)

    const failed = await classify()
    assert.equal(failed.status, 500)
    assert.equal((failed.body as { code: string }).code, 'INFERENCE_FAILED')

    const models = (await request(app.server).get('/models').expect(200)).body as { models: ModelSummary[] }
    const rgb = models.models.find((m) => m.name === RGB)
    assert.equal(rgb?.ready, false)
    assert.match(rgb.reason ?? '', /failed at run time/)
    assert.equal(rgb.live, null)

    const rerouted = await classify()
    assert.equal(rerouted.status, 200)
    assert.equal((rerouted.body as ClassifyResponse).model.name, 'fixture-gray28-large')
    const explicit = await request(app.server)
      .post(`/v1/classify?model=${RGB}`)
      .set('content-type', 'image/jpeg')
      .send(jpeg)
    assert.equal(explicit.status, 503)
    assert.equal((explicit.body as { code: string }).code, 'MODEL_NOT_READY')
    zoo.clearFaults()
  })

  it('a crashed worker answers 500 INFERENCE_FAILED, and the server keeps serving after replacing it', async (t) => {
    const app = await faultyApp(t)
    const zoo = app.zoo
    assert.ok(zoo instanceof ServingZoo)
    zoo.injectFault('crash')
    const jpeg = await readFile(fixturePath('images', 'photo.jpg'))
    const classify = () =>
      request(app.server).post('/v1/classify').set('content-type', 'image/jpeg').send(jpeg)
    const crashed = await classify()
    assert.equal(crashed.status, 500)
    assert.equal((crashed.body as { code: string }).code, 'INFERENCE_FAILED')
    await until(async () => (await classify()).status === 200)
    assert.equal((await request(app.server).get('/readyz')).status, 200)
  })
})
