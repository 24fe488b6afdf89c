import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ApiError } from '../../server/errors.js'
import { imageToTensor } from '../../server/preprocess/image-to-tensor.js'
import { diagnoseCudaFailure } from '../../server/runtime/cuda-diagnostics.js'
import { CudaUnavailableError } from '../../server/runtime/execution-provider.js'
import { ReloadError, ServingZoo } from '../../server/runtime/serving-zoo.js'
import { epochMs } from '../../server/runtime/worker-protocol.js'
import {
  chooseDefaultModel,
  ZooUnavailableError,
  type GenerationSettings,
} from '../../server/runtime/zoo-generation.js'
import type { ModelEntry } from '../../server/zoo/model-entry.js'
import {
  BROKEN_MODELS,
  copyFixtureZoo,
  createBrokenZoo,
  FIXTURE_MODELS,
  FIXTURE_ZOO_DIR,
  fixturePath,
  readReference,
  recordingLog,
  ROOT,
  startedServingZoo,
  until,
} from '../helper.js'

const SETTINGS: GenerationSettings = {
  zooDir: FIXTURE_ZOO_DIR,
  executionProvider: 'cpu',
  workerThreads: 1,
  intraOpThreads: 1,
  warmupRuns: 5,
  maxBatchSize: 8,
  maxQueueDelayUs: 0,
  maxQueueSize: 64,
  inferenceTimeoutMs: 30_000,
}
const cudaAbsent = diagnoseCudaFailure('').missing.length > 0

function isApiError(code: string) {
  return (error: unknown) => error instanceof ApiError && error.code === code
}

function started(t: { after(fn: () => Promise<void>): void }, settings: Partial<GenerationSettings> = {}) {
  return startedServingZoo(t, { ...SETTINGS, ...settings })
}

describe('ServingZoo over the fixture zoo', () => {
  it('loads, warms and measures every model, and reproduces the reference outputs', async (t) => {
    const { zoo } = await started(t)
    assert.equal(zoo.isReady(), true)
    assert.deepEqual(
      zoo.readyModels().map((m) => m.name),
      [...FIXTURE_MODELS],
    )
    assert.equal(zoo.defaultModelName(), 'fixture-gray28-large')
    for (const model of zoo.list()) {
      assert.equal(model.executionProvider, 'cpu')
      assert.equal(model.latencyMs?.samples, 5)
      assert.ok(model.latencyMs.p50 > 0 && model.latencyMs.p95 >= model.latencyMs.p50)

      const reference = await readReference(model.name)
      const result = await zoo.run(model.name, Float32Array.from(reference.input.data), reference.input.shape)
      assert.deepEqual(result.dims, reference.output.shape)
      let maxDiff = 0
      reference.output.data.forEach(
        (v, i) => (maxDiff = Math.max(maxDiff, Math.abs(v - (result.logits[i] ?? NaN)))),
      )
      assert.ok(maxDiff <= 1e-4, `${model.name}: max |onnxruntime - pytorch| = ${maxDiff}`)
      assert.ok(result.inferenceMs > 0 && result.queueMs >= 0)
    }
  })

  it('without batching, queues runs beyond the worker count and reports the queue time', async (t) => {
    const { zoo } = await started(t, { warmupRuns: 1, maxBatchSize: 1 })
    const input = new Float32Array(3 * 32 * 32).fill(0.5)
    const results = await Promise.all(
      Array.from({ length: 6 }, () => zoo.run('fixture-rgb32', input, [1, 3, 32, 32])),
    )
    assert.ok(results.every((r) => r.logits.length === 10 && r.batchSize === 1))
    // One worker: every run after the first waited for the previous ones.
    assert.ok(Math.max(...results.map((r) => r.queueMs)) > Math.min(...results.map((r) => r.inferenceMs)))
    // The input was copied to the worker, not taken away from the caller.
    assert.equal(input.length, 3 * 32 * 32)
  })

  it('merges concurrent runs of one model into one batch, each getting its own rows', async (t) => {
    const { zoo } = await started(t, { warmupRuns: 1, maxBatchSize: 8 })
    const inputs = Array.from({ length: 6 }, (_, i) => new Float32Array(3 * 32 * 32).fill(i / 6))
    const alone: Float32Array[] = []
    for (const input of inputs) {
      const result = await zoo.run('fixture-rgb32', input, [1, 3, 32, 32])
      assert.equal(result.batchSize, 1)
      alone.push(result.logits)
    }
    // Submitted in one event-loop turn: one batch of six rows.
    const together = await Promise.all(inputs.map((input) => zoo.run('fixture-rgb32', input, [1, 3, 32, 32])))
    assert.ok(together.every((r) => r.batchSize === 6 && r.dims[0] === 1))
    together.forEach((r, i) => {
      const single = alone[i] as Float32Array
      assert.ok(
        r.logits.every((v, j) => Math.abs(v - (single[j] ?? NaN)) < 1e-5),
        `request ${i} got another request's logits`,
      )
    })
  })

  it('counts images still being preprocessed against MAX_QUEUE_SIZE: a burst is bounded, never hangs', async (t) => {
    const { zoo } = await started(t, { warmupRuns: 1, maxQueueSize: 2, maxBatchSize: 1 })
    const jpeg = new Uint8Array(await readFile(join(ROOT, 'test', 'fixtures', 'images', 'photo.jpg')))
    const burst = await Promise.allSettled(
      Array.from({ length: 12 }, () => zoo.runImage('fixture-rgb32', jpeg.slice(), { maxPixels: 1_000_000 })),
    )
    const refused = burst.filter((o) => o.status === 'rejected')
    const served = burst.filter((o) => o.status === 'fulfilled')
    // Admitted at most the bound (2) plus the one already running when a later one arrives.
    assert.ok(served.length >= 1 && served.length <= 4, `${served.length} served`)
    for (const o of refused) {
      assert.ok(isApiError('OVERLOADED')(o.reason), String(o.reason))
      assert.ok(((o.reason as ApiError).details.retryAfterS as number) >= 1)
    }
    // Once drained, requests are admitted again.
    assert.equal(
      (await zoo.runImage('fixture-rgb32', jpeg.slice(), { maxPixels: 1_000_000 })).logits.length,
      10,
    )
  })

  it('rejects unknown models and tensors that do not fit the model with coded errors', async (t) => {
    const { zoo } = await started(t, { warmupRuns: 1 })
    await assert.rejects(
      zoo.run('nope', new Float32Array(784), [1, 1, 28, 28]),
      isApiError('MODEL_NOT_FOUND'),
    )
    await assert.rejects(
      zoo.run('fixture-gray28-small', new Float32Array(784), [1, 3, 28, 28]),
      (error: unknown) =>
        isApiError('INFERENCE_FAILED')(error) && /expects \[N, 1, 28, 28\]/.test((error as Error).message),
    )
    await assert.rejects(
      zoo.run('fixture-gray28-small', new Float32Array(100), [1, 1, 28, 28]),
      isApiError('INFERENCE_FAILED'),
    )
    // Batches are fine.
    const batch = await zoo.run('fixture-gray28-small', new Float32Array(3 * 784), [3, 1, 28, 28])
    assert.deepEqual(batch.dims, [3, 10])
  })

  it('decodes an image in the idle inference worker or in the preprocessing stage, with the same answer', async (t) => {
    const { zoo } = await started(t, { warmupRuns: 1 })
    const bytes = await readFile(fixturePath('images', 'photo.jpg'))
    const maxPixels = 1_000_000
    for (const name of ['fixture-gray28-res20', 'fixture-rgb32']) {
      const model = zoo.get(name)
      assert.ok(model)
      const tensor = await imageToTensor({ bytes, maxPixels, deadline: epochMs() + 60_000 }, model.input)
      const size = model.input.size
      const direct = await zoo.run(name, tensor, [1, model.input.channels, size, size])
      // Alone, on an idle server: decoded by the inference worker itself. Several at once: those
      // arriving while the worker is busy go through the preprocessing stage.
      const alone = await zoo.runImage(name, Uint8Array.from(bytes), { maxPixels })
      const together = await Promise.all(
        Array.from({ length: 6 }, () => zoo.runImage(name, Uint8Array.from(bytes), { maxPixels })),
      )
      for (const result of [alone, ...together]) {
        assert.deepEqual(result.logits, direct.logits)
        assert.deepEqual(result.dims, [1, 10])
        assert.ok(result.preprocessMs > 0 && result.inferenceMs > 0)
      }
    }
    // A view into a larger buffer is copied, not transferred.
    const backing = new Uint8Array(bytes.length + 16)
    backing.set(bytes, 16)
    await zoo.runImage('fixture-rgb32', backing.subarray(16), { maxPixels })
    assert.equal(backing.byteLength, bytes.length + 16)
    // The image's own error comes back coded, whichever thread decoded it.
    await assert.rejects(
      zoo.runImage('fixture-rgb32', new Uint8Array(64), { maxPixels }),
      (error: unknown) => error instanceof ApiError && error.statusCode < 500,
    )
    await assert.rejects(zoo.runImage('ghost', bytes, { maxPixels }), isApiError('MODEL_NOT_FOUND'))
  })

  it('serves the good models of a zoo with broken ones, reporting why each broken one is not ready', async (t) => {
    // auto mode on a CPU-only host also exercises the CUDA fallback inside the real start-up path.
    const { zoo, log } = await started(t, {
      zooDir: await createBrokenZoo(t),
      executionProvider: 'auto',
      workerThreads: 2,
      warmupRuns: 1,
    })
    const byName = new Map(zoo.list().map((m) => [m.name, m]))
    for (const name of FIXTURE_MODELS) assert.equal(byName.get(name)?.ready, true)
    assert.equal(
      byName.get(BROKEN_MODELS.missing)?.reason,
      `model file ${BROKEN_MODELS.missing}.onnx is missing`,
    )
    assert.match(byName.get(BROKEN_MODELS.checksum)?.reason ?? '', /the manifest declares 0{64}/)
    assert.match(
      byName.get(BROKEN_MODELS.corrupt)?.reason ?? '',
      /^session creation failed: .*protobuf parsing failed/i,
    )
    for (const name of Object.values(BROKEN_MODELS)) {
      assert.equal(byName.get(name)?.ready, false)
      assert.equal(byName.get(name)?.latencyMs, undefined)
    }
    await assert.rejects(
      zoo.run(BROKEN_MODELS.corrupt, new Float32Array(784), [1, 1, 28, 28]),
      (error: unknown) =>
        isApiError('MODEL_NOT_READY')(error) &&
        (error as ApiError).details.reason === byName.get(BROKEN_MODELS.corrupt)?.reason,
    )

    // A reload reuses the provider decision instead of probing CUDA (and warning) again.
    await zoo.reload()
    const cudaWarnings = log.entries.filter((e) => /CUDA execution provider unavailable/.test(e.msg))
    if (cudaAbsent) {
      assert.equal(cudaWarnings.length, 1, 'one CUDA warning, not one per model, worker or reload')
      assert.equal(cudaWarnings[0]?.level, 'warn')
      for (const name of FIXTURE_MODELS) assert.equal(byName.get(name)?.executionProvider, 'cpu')
    } else {
      assert.equal(cudaWarnings.length, 0)
    }
  })

  it('refuses to start when no model loads, listing every reason', async (t) => {
    const zoo = new ServingZoo(
      { ...SETTINGS, zooDir: await createBrokenZoo(t, { includeGood: false }) },
      recordingLog(),
    )
    t.after(() => zoo.close())
    await assert.rejects(zoo.start(), (error: unknown) => {
      assert.ok(error instanceof ZooUnavailableError)
      assert.match(error.message, /^no model of .* can be loaded:/)
      assert.match(error.message, new RegExp(`${BROKEN_MODELS.missing}: model file .* is missing`))
      assert.match(error.message, new RegExp(`${BROKEN_MODELS.corrupt}: session creation failed`))
      assert.match(error.message, new RegExp(`${BROKEN_MODELS.checksum}: model file .* has sha256`))
      return true
    })
    assert.equal(zoo.isReady(), false)
  })

  it('cuda mode without CUDA stops the start-up with the missing libraries named', async (t) => {
    const zoo = new ServingZoo({ ...SETTINGS, executionProvider: 'cuda' }, recordingLog())
    t.after(() => zoo.close())
    if (!cudaAbsent) {
      await zoo.start()
      assert.ok(zoo.readyModels().every((m) => m.executionProvider === 'cuda'))
      return
    }
    await assert.rejects(
      zoo.start(),
      (error: unknown) => error instanceof CudaUnavailableError && /libcudnn\.so\.9/.test(error.message),
    )
  })

  it('honours DEFAULT_MODEL and rejects one that is not in the zoo', async (t) => {
    const { zoo } = await started(t, { defaultModel: 'fixture-gray28-small', warmupRuns: 1 })
    assert.equal(zoo.defaultModelName(), 'fixture-gray28-small')
    const wrong = new ServingZoo({ ...SETTINGS, defaultModel: 'ghost' }, recordingLog())
    await assert.rejects(wrong.start(), /DEFAULT_MODEL "ghost" is not a model of/)
  })
})

describe('ServingZoo reload', () => {
  it('swaps in a new zoo atomically while runs on the old one complete', async (t) => {
    const first = await copyFixtureZoo(t, { models: ['fixture-gray28-small'] })
    const second = await copyFixtureZoo(t, { models: ['fixture-gray28-large', 'fixture-rgb32'] })
    const { zoo, log } = await started(t, { zooDir: first, warmupRuns: 1 })
    const oldGeneration = zoo.generation?.id
    const input = new Float32Array(784)
    // Runs already submitted to the old generation when the swap happens.
    const inFlight = Array.from({ length: 20 }, () => zoo.run('fixture-gray28-small', input, [1, 1, 28, 28]))
    const result = await zoo.reload(second)
    assert.equal((await Promise.all(inFlight)).length, 20)

    assert.equal(result.generation, (oldGeneration ?? 0) + 1)
    assert.equal(result.previousZooDir, first)
    assert.deepEqual(
      zoo.list().map((m) => m.name),
      ['fixture-gray28-large', 'fixture-rgb32'],
    )
    assert.equal(zoo.defaultModelName(), 'fixture-gray28-large')
    await assert.rejects(
      zoo.run('fixture-gray28-small', input, [1, 1, 28, 28]),
      isApiError('MODEL_NOT_FOUND'),
    )
    assert.equal((await zoo.run('fixture-rgb32', new Float32Array(3072), [1, 3, 32, 32])).dims[1], 10)
    // The old generation's workers are closed once idle (closing is bounded: close-grace.ts).
    await until(() => log.entries.some((e) => e.msg === 'previous zoo generation closed'), 15_000)
  })

  it('keeps the old zoo serving when the new one does not validate or has no loadable model', async (t) => {
    const invalid = await copyFixtureZoo(t, {
      models: ['fixture-rgb32'],
      mutate: (m) => {
        ;(m as { schemaVersion: number }).schemaVersion = 7
      },
    })
    const unloadable = await createBrokenZoo(t, { includeGood: false })
    const { zoo, log } = await started(t, { warmupRuns: 1 })
    const before = zoo.generation

    await assert.rejects(
      zoo.reload(invalid),
      (error: unknown) =>
        error instanceof ReloadError &&
        /previous zoo keeps serving: .*unsupported schemaVersion 7/s.test(error.message),
    )
    await assert.rejects(
      zoo.reload(unloadable),
      (error: unknown) => error instanceof ReloadError && /can be loaded/.test(error.message),
    )
    assert.equal(zoo.generation, before)
    assert.equal(zoo.isReady(), true)
    assert.equal((await zoo.run('fixture-gray28-small', new Float32Array(784), [1, 1, 28, 28])).dims[1], 10)
    assert.equal(log.entries.filter((e) => e.level === 'error' && /reload rejected/.test(e.msg)).length, 2)
  })

  it('allows one reload at a time and none after close', async (t) => {
    const { zoo } = await started(t, { warmupRuns: 1 })
    const running = zoo.reload()
    await assert.rejects(zoo.reload(), /a reload is already in progress/)
    await running
    await zoo.close()
    assert.equal(zoo.isReady(), false)
    await assert.rejects(zoo.reload(), /shutting down/)
  })
})

describe('default model choice', () => {
  const entry = (name: string, top1: number, p50: number, ready = true): ModelEntry =>
    ({ name, top1, mflops: 1, ready, latencyMs: { p50, p95: p50, samples: 1 } }) as ModelEntry

  it('prefers DEFAULT_MODEL, then the manifest default, when ready', () => {
    const models = [entry('a', 0.9, 1), entry('b', 0.8, 1), entry('c', 0.95, 1, false)]
    assert.equal(chooseDefaultModel(models, 'b', 'a'), 'b')
    assert.equal(chooseDefaultModel(models, undefined, 'b'), 'b')
    assert.equal(chooseDefaultModel(models, 'c', 'b'), 'b')
  })

  it('otherwise takes the most accurate ready model, the faster on a tie', () => {
    assert.equal(
      chooseDefaultModel([entry('a', 0.9, 2), entry('b', 0.9, 1), entry('c', 0.99, 1, false)]),
      'b',
    )
    assert.throws(() => chooseDefaultModel([entry('a', 0.9, 1, false)]), ZooUnavailableError)
  })
})
