/**
 * The scheduler over a fake executor whose batches finish when the test says so: batching,
 * earliest-deadline-first across models, bounded queues, deadlines (refused before compute, never
 * left waiting), the queue-delay window, predictions under load, and draining.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { ApiError } from '../../server/errors.js'
import { ModelLatency } from '../../server/runtime/latency-model.js'
import { Scheduler } from '../../server/runtime/scheduler.js'
import type { BatchExecutor, SchedulerSettings } from '../../server/runtime/scheduling.js'
import { WorkerCrashError } from '../../server/runtime/thread-pool.js'
import type { BatchReply, BatchTask } from '../../server/runtime/worker-protocol.js'

const CLASSES = 2

interface Pending {
  task: Omit<BatchTask, 'kind' | 'id'>
  finish: (inferenceMs?: number) => void
  fail: (error: Error) => void
  reply: (reply: BatchReply) => void
}

/** Runs nothing: records each batch and lets the test finish it. */
class FakeExecutor implements BatchExecutor {
  readonly batches: Pending[] = []
  private busy = 0

  constructor(readonly size = 1) {}

  get idle(): number {
    return this.size - this.busy
  }

  /** The `index`-th batch sent, which must exist. */
  at(index: number): Pending {
    const batch = this.batches[index]
    if (!batch) throw new Error(`no batch #${index} (${this.batches.length} sent)`)
    return batch
  }

  count(): number {
    return this.batches.length
  }

  execute(task: Omit<BatchTask, 'kind' | 'id'>): Promise<BatchReply> {
    this.busy++
    return new Promise<BatchReply>((resolve, reject) => {
      const done = () => {
        this.busy--
      }
      this.batches.push({
        task,
        finish: (inferenceMs = 1) => {
          done()
          let offset = 0
          const items = task.items.map((item) => {
            const rows = item.kind === 'tensor' ? item.rows : 1
            const placed = { offset, rows }
            offset += rows
            return placed
          })
          // Row r of the batch gets logits [r, -r], so a test can tell whose rows came back.
          const logits = new Float32Array(offset * CLASSES)
          for (let r = 0; r < offset; r++) logits.set([r, -r], r * CLASSES)
          resolve({
            id: 0,
            ok: true,
            logits,
            classes: CLASSES,
            items,
            batchRows: offset,
            startedAt: performance.timeOrigin + performance.now(),
            inferenceMs,
          })
        },
        fail: (error) => {
          done()
          reject(error)
        },
        reply: (reply) => {
          done()
          resolve(reply)
        },
      })
    })
  }
}

const SETTINGS: SchedulerSettings = {
  maxBatchSize: 4,
  maxQueueDelayMs: 0,
  maxQueueSize: 16,
  inferenceTimeoutMs: 10_000,
}

/** Run time 2 ms at batch 1, 4 ms at batch 4 (interpolated between). */
const latency = () =>
  new ModelLatency(
    new Map([
      [1, 2],
      [4, 4],
    ]),
    0,
  )

function scheduler(settings: Partial<SchedulerSettings> = {}, workers = 1, hooks = {}) {
  const executor = new FakeExecutor(workers)
  const models = ['a', 'b'].map((name) => ({ name, maxBatch: 64, latency: latency() }))
  return { executor, scheduler: new Scheduler(executor, models, { ...SETTINGS, ...settings }, hooks) }
}

const tensor = (rows = 1) => ({ kind: 'tensor' as const, input: new Float32Array(rows), rows })
/** Lets completions reach the scheduler and its coalesced dispatch run (a few event-loop turns). */
async function turn(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve))
}

function isCode(code: string) {
  return (error: unknown) => error instanceof ApiError && error.code === code
}

describe('Scheduler', () => {
  it('runs a lone request at once and batches what arrives while the worker is busy', async () => {
    const { executor, scheduler: s } = scheduler()
    const first = s.submit('a', tensor(), 1)
    await turn()
    assert.equal(executor.batches.length, 1)
    assert.equal(executor.at(0).task.items.length, 1)
    // Six more while the worker is busy: the next batches take four (the maximum), then two.
    const more = Array.from({ length: 6 }, () => s.submit('a', tensor(), 1))
    await turn()
    assert.equal(executor.batches.length, 1)
    executor.at(0).finish()
    assert.equal((await first).batchSize, 1)
    await turn()
    assert.equal(executor.at(1).task.items.length, 4)
    executor.at(1).finish()
    await turn()
    assert.equal(executor.at(2).task.items.length, 2)
    executor.at(2).finish()
    const results = await Promise.all(more)
    assert.deepEqual(
      results.map((r) => r.batchSize),
      [4, 4, 4, 4, 2, 2],
    )
    // Each request gets its own row of the batch's logits.
    assert.deepEqual(
      results.map((r) => [...r.logits]),
      [
        [0, -0],
        [1, -1],
        [2, -2],
        [3, -3],
        [0, -0],
        [1, -1],
      ],
    )
    assert.ok(results.every((r) => r.dims[0] === 1 && r.dims[1] === CLASSES))
  })

  it('counts rows, not requests, against the maximum batch; an oversized request runs alone', async () => {
    const { executor, scheduler: s } = scheduler()
    const blocker = s.submit('a', tensor(), 1)
    await turn()
    const big = s.submit('a', tensor(6), 6)
    const small = s.submit('a', tensor(), 1)
    executor.at(0).finish()
    await blocker
    await turn()
    assert.equal(executor.at(1).task.items.length, 1)
    executor.at(1).finish()
    assert.deepEqual((await big).dims, [6, CLASSES])
    await turn()
    executor.at(2).finish()
    assert.equal((await small).batchSize, 1)
  })

  it('serves the model whose oldest request has the earliest deadline first', async () => {
    const { executor, scheduler: s } = scheduler()
    const blocker = s.submit('a', tensor(), 1)
    await turn()
    const now = performance.now()
    const late = s.submit('a', tensor(), 1, { deadline: now + 5000 })
    const urgent = s.submit('b', tensor(), 1, { deadline: now + 1000 })
    executor.at(0).finish()
    await blocker
    await turn()
    assert.equal(executor.at(1).task.model, 'b')
    executor.at(1).finish()
    await urgent
    await turn()
    assert.equal(executor.at(2).task.model, 'a')
    executor.at(2).finish()
    await late
  })

  it('refuses a request beyond MAX_QUEUE_SIZE rows with OVERLOADED and a retry estimate', async () => {
    const shed: string[] = []
    const { executor, scheduler: s } = scheduler({ maxQueueSize: 3 }, 1, {
      onShed: (model: string, reason: string) => shed.push(`${model}:${reason}`),
    })
    const running = s.submit('a', tensor(), 1)
    await turn()
    const queued = [s.submit('a', tensor(), 1), s.submit('a', tensor(2), 2)]
    await assert.rejects(s.submit('a', tensor(), 1), (error: unknown) => {
      assert.ok(isCode('OVERLOADED')(error))
      assert.equal((error as ApiError).details.retryAfterS, 1)
      assert.equal((error as ApiError).statusCode, 503)
      return true
    })
    // Another model's queue is separate.
    const other = s.submit('b', tensor(), 1)
    assert.deepEqual(shed, ['a:queue-full'])
    executor.at(0).finish()
    await running
    for (let i = 1; i <= 2; i++) {
      await turn()
      executor.at(i).finish()
    }
    await Promise.all([...queued, other])
  })

  it('refuses at once a request whose deadline even an immediate run would miss', async () => {
    const { executor, scheduler: s } = scheduler()
    await assert.rejects(
      s.submit('a', tensor(), 1, { deadline: performance.now() + 1 }),
      (error: unknown) => {
        assert.ok(isCode('DEADLINE_EXCEEDED')(error))
        assert.equal((error as ApiError).statusCode, 504)
        assert.match((error as Error).message, /needs ≈2\.\d ms/)
        return true
      },
    )
    assert.equal(executor.batches.length, 0)
  })

  it('answers a queued request as soon as it can no longer meet its deadline, before any compute', async () => {
    const { executor, scheduler: s } = scheduler()
    const running = s.submit('a', tensor(), 1)
    await turn()
    const begin = performance.now()
    const doomed = s.submit('a', tensor(), 1, { deadline: begin + 30 })
    // The worker stays busy: the request must not wait for it past its last possible start.
    await assert.rejects(doomed, isCode('DEADLINE_EXCEEDED'))
    const waited = performance.now() - begin
    assert.ok(waited >= 25 && waited < 1000, `answered after ${waited} ms`)
    executor.at(0).finish()
    await running
    await turn()
    assert.equal(executor.batches.length, 1, 'the expired request never reached a worker')
  })

  it('drops a queued request whose client has gone; a running one finishes with its batch', async () => {
    const { executor, scheduler: s } = scheduler()
    const runningClient = new AbortController()
    const running = s.submit('a', tensor(), 1, { signal: runningClient.signal })
    await turn()
    const goneClient = new AbortController()
    const gone = s.submit('a', tensor(), 1, { signal: goneClient.signal })
    const kept = s.submit('a', tensor(), 1)
    assert.equal(s.predict('a')?.queued, 2)
    goneClient.abort()
    runningClient.abort()
    await assert.rejects(gone, isCode('CLIENT_CLOSED'))
    assert.equal(s.predict('a')?.queued, 1, 'the abandoned request left the queue at once')
    executor.at(0).finish()
    assert.equal((await running).batchSize, 1)
    await turn()
    assert.equal(executor.at(1).task.items.length, 1, 'only the live request ran')
    executor.at(1).finish()
    await kept
    // Already gone before submission: refused without queueing.
    await assert.rejects(s.submit('a', tensor(), 1, { signal: AbortSignal.abort() }), isCode('CLIENT_CLOSED'))
    assert.equal(s.predict('a')?.queued, 0)
  })

  it('applies the server-wide timeout to requests without a deadline', async () => {
    const { executor, scheduler: s } = scheduler({ inferenceTimeoutMs: 20 })
    const running = s.submit('a', tensor(), 1)
    await turn()
    await assert.rejects(s.submit('a', tensor(), 1), isCode('DEADLINE_EXCEEDED'))
    executor.at(0).finish()
    await running
  })

  it('with a queue delay, holds a partial batch while a worker is idle, up to the delay', async () => {
    const { executor, scheduler: s } = scheduler({ maxQueueDelayMs: 40 })
    const begin = performance.now()
    const first = s.submit('a', tensor(), 1)
    await sleep(10)
    const second = s.submit('a', tensor(), 1)
    await turn()
    assert.equal(executor.batches.length, 0, 'held for more requests')
    while (executor.count() === 0) await sleep(2)
    assert.ok(performance.now() - begin >= 39)
    assert.equal(executor.at(0).task.items.length, 2)
    executor.at(0).finish()
    await Promise.all([first, second])
    // A full batch goes at once.
    const full = Array.from({ length: 4 }, () => s.submit('a', tensor(), 1))
    await turn()
    assert.equal(executor.at(1).task.items.length, 4)
    executor.at(1).finish()
    await Promise.all(full)
  })

  it('predicts more latency as work queues up, and the batch a newcomer would join', async () => {
    const { executor, scheduler: s } = scheduler()
    const idle = s.predict('a')
    assert.ok(idle)
    assert.equal(idle.queueWaitMs, 0)
    assert.equal(idle.batchSize, 1)
    assert.ok(Math.abs(idle.serviceMs - 2) < 1e-9)
    assert.ok(Math.abs(idle.predictedLatencyMs - idle.idleLatencyMs) < 1e-9)
    // An idle worker takes the request at once (same turn): it is running already.
    const jobs = [s.submit('a', tensor(), 1)]
    assert.equal(executor.batches.length, 1)
    const oneRunning = s.predict('a')
    assert.ok(oneRunning && oneRunning.queueWaitMs > 0 && oneRunning.queueWaitMs <= 2)
    for (let i = 0; i < 5; i++) jobs.push(s.submit('a', tensor(), 1))
    const queued = s.predict('a')
    // Five queued: one full batch of four ahead, the newcomer joins the partial batch of one.
    assert.ok(queued)
    assert.equal(queued.queued, 5)
    assert.equal(queued.batchSize, 2)
    assert.ok(queued.queueWaitMs >= 4 - 1e-9, `wait ${queued.queueWaitMs}`)
    assert.ok(queued.predictedLatencyMs > oneRunning.predictedLatencyMs)
    // Another model shares the worker, so it waits behind the same queue.
    assert.ok((s.predict('b')?.queueWaitMs ?? 0) >= queued.queueWaitMs)
    for (let i = 0; i < 3; i++) {
      executor.at(i).finish()
      await turn()
    }
    await Promise.all(jobs)
    assert.equal(s.predict('a')?.queueWaitMs, 0)
  })

  it('counts work held in a queue as a wait even while a worker is idle', async () => {
    // A held (not yet full) batch of model a waits on an idle worker; b would queue behind it.
    const { executor, scheduler: s } = scheduler({ maxQueueDelayMs: 50 })
    const client = new AbortController()
    const held = s.submit('a', tensor(), 1, { signal: client.signal })
    assert.equal(executor.batches.length, 0, 'held')
    const b = s.predict('b')
    assert.ok(b && b.queueWaitMs > 0, `wait ${b?.queueWaitMs}`)
    client.abort()
    await assert.rejects(held, isCode('CLIENT_CLOSED'))
  })

  it('learns run times from completed batches', async () => {
    const { executor, scheduler: s } = scheduler()
    for (let i = 0; i < 20; i++) {
      const job = s.submit('a', tensor(), 1)
      await turn()
      executor.at(i).finish(6)
      await job
    }
    // Observed 6 ms against a 2 ms profile: the estimate converges to three times the profile.
    assert.ok(Math.abs((s.latency('a')?.contentionFactor ?? 0) - 3) < 0.1)
    assert.ok(Math.abs((s.predict('a')?.serviceMs ?? 0) - 6) < 0.2)
  })

  it('fails a batch’s requests with INFERENCE_FAILED when its worker dies or the model fails', async () => {
    const faults: string[] = []
    const { executor, scheduler: s } = scheduler({}, 1, {
      onWorkerCrash: (model: string) => faults.push(`crash:${model}`),
      onModelFault: (model: string) => faults.push(`model:${model}`),
    })
    const crashed = s.submit('a', tensor(), 1)
    await turn()
    executor.at(0).fail(new WorkerCrashError('inference worker 7 died: boom'))
    await assert.rejects(crashed, (error: unknown) => {
      assert.ok(isCode('INFERENCE_FAILED')(error))
      assert.match((error as Error).message, /worker 7 died: boom/)
      return true
    })
    const broken = s.submit('b', tensor(), 1)
    await turn()
    executor.at(1).reply({
      id: 0,
      ok: false,
      code: 'INFERENCE_FAILED',
      message: 'model b: Got invalid dimensions',
      modelFault: true,
      startedAt: 0,
    })
    await assert.rejects(broken, isCode('INFERENCE_FAILED'))
    assert.deepEqual(faults, ['crash:a', 'model:b'])
  })

  it('drain() refuses new requests and resolves once queued and running ones are answered', async () => {
    const { executor, scheduler: s } = scheduler()
    const jobs = [s.submit('a', tensor(), 1), s.submit('a', tensor(), 1)]
    await turn()
    const running = s.submit('a', tensor(), 1)
    let drained = false
    const draining = s.drain().then(() => {
      drained = true
    })
    await assert.rejects(s.submit('a', tensor(), 1), isCode('MODEL_NOT_READY'))
    await turn()
    assert.equal(drained, false)
    executor.at(0).finish()
    await turn()
    await turn()
    assert.equal(drained, false)
    executor.at(1).finish()
    await Promise.all([...jobs, running, draining])
    assert.equal(drained, true)
  })
})
