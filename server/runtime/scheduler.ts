/**
 * Dynamic batching, bounded queues and deadlines in front of the worker pool (one scheduler per
 * zoo generation), and the latency predictions load-aware selection reads.
 *
 * - One queue per model, ordered by deadline. Whenever a worker is idle the scheduler picks the
 *   queue whose head has the earliest deadline (EDF across models) and sends its head requests as
 *   one batch (takeBatch, model-queue.ts): as many as fit in the model's maximum batch
 *   (MAX_BATCH_SIZE, or 1 for a graph with a fixed batch of 1) without making the batch finish
 *   after the head's deadline. Under low load a request therefore runs alone at once; under load
 *   the queue fills while the workers are busy and the next batch takes everything waiting —
 *   Triton's dynamic batcher with max_queue_delay_microseconds = 0. A positive MAX_QUEUE_DELAY_US
 *   holds a queue that is not full for up to that long after its oldest request arrived, to let a
 *   bigger batch form.
 * - Admission (server/admission/admit.ts, stages `queue` and `waiting`): a full queue
 *   (MAX_QUEUE_SIZE rows) or an unreachable deadline is refused at once. Every request has a
 *   deadline — the caller's (from maxLatencyMs) or INFERENCE_TIMEOUT_MS after submission —
 *   checked at submission, at every dispatch and by a timer set for the earliest such moment
 *   (wake-timer.ts), so a request never waits past its deadline unseen.
 * - Predictions (prediction.ts) from the queues and running batches; every completed batch
 *   updates its model's ModelLatency and the measured hand-off overhead they use.
 */
import { admit } from '../admission/admit.js'
import { ApiError } from '../errors.js'
import { FaultPlan } from './fault-plan.js'
import { RateMeter, type ModelLatency } from './latency-model.js'
import {
  answerJobs,
  clientClosedError,
  enqueue,
  modelState,
  removeJob,
  takeBatch,
  type Job,
  type ModelState,
} from './model-queue.js'
import { predictLatency, type Load } from './prediction.js'
import {
  IDLE_HANDOFF_MS,
  type BatchExecutor,
  type LatencyPrediction,
  type ScheduledModel,
  type SchedulerHooks,
  type SchedulerSettings,
  type SubmitOptions,
} from './scheduling.js'
import { WorkerCrashError } from './thread-pool.js'
import type { InferenceResult } from './types.js'
import { WakeTimer } from './wake-timer.js'
import { epochMs, type BatchItem, type BatchReply, type BatchTask } from './worker-protocol.js'

interface RunningBatch {
  model: ModelState
  expectedEnd: number
}

export class Scheduler {
  private readonly models = new Map<string, ModelState>()
  private readonly running = new Set<RunningBatch>()
  /** Main-thread overhead of a batch round trip beyond the worker's own time, ms. */
  private handoffMs = IDLE_HANDOFF_MS
  private pumpPending = false
  private readonly timer = new WakeTimer(() => {
    this.pump()
  })
  private closing = false
  private idleWaiters: (() => void)[] = []
  /** Test-only: faults the next batches carry to their worker. */
  readonly faults = new FaultPlan()
  /** Submissions per ms over all models (the load selection must fit a model to). */
  private readonly arrivals = new RateMeter(1000)

  constructor(
    private readonly executor: BatchExecutor,
    models: readonly ScheduledModel[],
    private readonly settings: SchedulerSettings,
    private readonly hooks: SchedulerHooks = {},
  ) {
    for (const model of models) {
      this.models.set(model.name, modelState(model, settings.maxBatchSize))
    }
  }

  latency(model: string): ModelLatency | undefined {
    return this.models.get(model)?.latency
  }

  /** Replaces `model`'s latency model (start-up installs the measured profile this way). */
  setLatency(model: string, latency: ModelLatency): void {
    const state = this.models.get(model)
    if (state) state.latency = latency
  }

  /** A preprocessing-stage measurement for `model`, ms per image. */
  observePreprocess(model: string, ms: number): void {
    this.models.get(model)?.latency.observePreprocess(ms)
  }

  maxBatch(model: string): number | undefined {
    return this.models.get(model)?.maxBatch
  }

  /** True when a request submitted now would be dispatched at once: a worker idle, nothing queued. */
  get dispatchesAtOnce(): boolean {
    if (this.executor.idle === 0) return false
    for (const state of this.models.values()) if (state.queue.length > 0) return false
    return true
  }

  /** Queues one request; resolves with its logits or rejects with a coded ApiError. */
  submit(
    model: string,
    item: BatchItem,
    rows: number,
    options: SubmitOptions = {},
  ): Promise<InferenceResult> {
    const now = performance.now()
    const deadline = this.deadline(options.deadline, now)
    const refusal = this.refusal(model, rows, deadline, now)
    const state = this.models.get(model)
    if (refusal || !state) return Promise.reject(refusal ?? new Error(`model ${model} has no session`))
    const { signal } = options
    if (signal?.aborted === true) return Promise.reject(clientClosedError(model))
    this.arrivals.mark(now)
    return new Promise<InferenceResult>((resolve, reject) => {
      const job: Job = {
        item,
        rows,
        deadline,
        enqueuedAt: now,
        submittedAt: epochMs(),
        transfer: options.transfer ?? [],
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      }
      // The client has gone: a request still waiting leaves the queue (nobody would read the
      // answer); one already running finishes with its batch.
      const onAbort = (): void => {
        const index = state.queue.indexOf(job)
        if (index < 0) return
        removeJob(state, index)
        job.reject(clientClosedError(model))
        if (this.isIdle()) this.notifyIdle()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      enqueue(state, job)
      // An idle worker and nothing else waiting: nothing to batch with, so dispatch now rather
      // than on the next turn. Otherwise the submissions of this turn are batched together.
      if (
        this.executor.idle > 0 &&
        state.queue.length === 1 &&
        !this.pumpPending &&
        this.holdUntil(state, job) <= now
      ) {
        this.pump()
      } else {
        this.schedulePump()
      }
    })
  }

  /** A request's deadline: its own, capped by the server-wide timeout from `now`. */
  deadline(requested: number | undefined, now = performance.now()): number {
    return Math.min(requested ?? Number.POSITIVE_INFINITY, now + this.settings.inferenceTimeoutMs)
  }

  /**
   * Why a request of `rows` rows for `model` must be refused right now, if it must (admission's
   * `queue` stage): `beforeMs` is work it still needs before it can be queued (preprocessing),
   * `aheadRows` rows for this model not in the queue yet but bound for it (being preprocessed).
   */
  refusal(
    model: string,
    rows: number,
    deadline: number,
    now = performance.now(),
    beforeMs = 0,
    aheadRows = 0,
  ): ApiError | undefined {
    const state = this.models.get(model)
    const why = admit({
      stage: 'queue',
      model,
      closing: this.closing,
      state,
      request: { rows, deadline, now, beforeMs, aheadRows },
      load: (at) => this.load(at),
      settings: this.settings,
    })
    if (why && state && !this.closing) {
      this.hooks.onShed?.(model, why.code === 'OVERLOADED' ? 'queue-full' : 'deadline')
    }
    return why
  }

  /** Coalesces the submissions of one event-loop turn into one dispatch decision. */
  private schedulePump(): void {
    if (this.pumpPending) return
    this.pumpPending = true
    setImmediate(() => {
      this.pumpPending = false
      this.pump()
    })
  }

  /** A worker came back (replacement ready): run what waits. */
  capacityChanged(): void {
    this.schedulePump()
  }

  /** Latest moment `job` of `state` can start and still meet its deadline. */
  private latestStart(state: ModelState, job: Job): number {
    return job.deadline - this.handoffMs - state.latency.runMs(job.rows)
  }

  /** Answers every queued request that can no longer meet its deadline (admission's `waiting` stage). */
  private expire(now: number): void {
    for (const state of this.models.values()) {
      for (let i = 0; i < state.queue.length;) {
        const job = state.queue[i] as Job
        const late = admit({
          stage: 'waiting',
          model: state.name,
          deadline: job.deadline,
          now,
          neededMs: this.handoffMs + state.latency.runMs(job.rows),
        })
        if (late) {
          removeJob(state, i)
          this.hooks.onShed?.(state.name, 'deadline')
          job.reject(late)
        } else {
          i++
        }
      }
    }
  }

  /** When a held (not yet full) queue must be sent at the latest, or +∞ when it is not held. */
  private holdUntil(state: ModelState, head: Job): number {
    if (this.settings.maxQueueDelayMs <= 0 || state.queuedRows >= state.maxBatch)
      return Number.NEGATIVE_INFINITY
    return Math.min(head.enqueuedAt + this.settings.maxQueueDelayMs, this.latestStart(state, head))
  }

  private pump(): void {
    const now = performance.now()
    this.expire(now)
    let wakeAt = Number.POSITIVE_INFINITY
    while (this.executor.idle > 0) {
      let chosen: ModelState | undefined
      for (const state of this.models.values()) {
        const head = state.queue[0]
        if (!head) continue
        const hold = this.holdUntil(state, head)
        if (hold > now) {
          wakeAt = Math.min(wakeAt, hold)
          continue
        }
        if (!chosen || head.deadline < (chosen.queue[0] as Job).deadline) chosen = state
      }
      if (!chosen) break
      this.dispatch(chosen, now)
    }
    for (const state of this.models.values()) {
      for (const job of state.queue) wakeAt = Math.min(wakeAt, this.latestStart(state, job))
    }
    this.timer.arm(wakeAt, now)
    if (this.isIdle()) this.notifyIdle()
  }

  /** Takes the head requests of `state` as one batch and sends it to an idle worker. */
  private dispatch(state: ModelState, now: number): void {
    const jobs = takeBatch(state, now, this.handoffMs)
    const rows = jobs.reduce((sum, job) => sum + job.rows, 0)
    const transfer = jobs.flatMap((job) => job.transfer)
    const task: Omit<BatchTask, 'kind' | 'id'> = { model: state.name, items: jobs.map((job) => job.item) }
    const fault = this.faults.take(state.name)
    if (fault) task.fault = fault
    const batch: RunningBatch = { model: state, expectedEnd: now + state.latency.runMs(rows) }
    this.running.add(batch)
    state.inFlight += jobs.length
    const dispatchedAt = now
    this.executor.execute(task, transfer).then(
      (reply) => {
        this.settle(batch, jobs)
        this.complete(state, jobs, reply, dispatchedAt)
      },
      (error: unknown) => {
        this.settle(batch, jobs)
        const why = error instanceof Error ? error.message : String(error)
        if (error instanceof WorkerCrashError) this.hooks.onWorkerCrash?.(state.name, why)
        for (const job of jobs) {
          job.reject(new ApiError('INFERENCE_FAILED', `model ${state.name}: ${why}`, {}, { cause: error }))
        }
      },
    )
  }

  private settle(batch: RunningBatch, jobs: readonly Job[]): void {
    this.running.delete(batch)
    batch.model.inFlight -= jobs.length
    this.schedulePump()
  }

  private complete(state: ModelState, jobs: readonly Job[], reply: BatchReply, dispatchedAt: number): void {
    if (!reply.ok) {
      if (reply.modelFault) this.hooks.onModelFault?.(state.name, reply.message)
      for (const job of jobs) job.reject(new ApiError(reply.code, reply.message))
      return
    }
    // Images decoded in the worker (concurrently) are its own work, not hand-off.
    let preprocessMs = 0
    for (const placed of reply.items) {
      if ('offset' in placed) preprocessMs = Math.max(preprocessMs, placed.preprocessMs ?? 0)
    }
    const roundTrip = performance.now() - dispatchedAt
    this.handoffMs += 0.2 * (Math.max(0, roundTrip - reply.inferenceMs - preprocessMs) - this.handoffMs)
    if (reply.batchRows > 0) state.latency.observeRun(reply.batchRows, reply.inferenceMs)

    const queueSum = answerJobs(state, jobs, reply)
    if (reply.batchRows > 0) {
      this.hooks.onBatch?.(state.name, {
        batchSize: reply.batchRows,
        requests: jobs.length,
        queueMs: queueSum / jobs.length,
        inferenceMs: reply.inferenceMs,
      })
    }
  }

  /** What the prediction (prediction.ts) reads of the current load. */
  private load(now: number): Load {
    return {
      models: this.models,
      running: this.running,
      workers: this.executor.size,
      idleWorkers: this.executor.idle,
      arrivalRate: this.arrivals.rateAt(now),
      handoffMs: this.handoffMs,
    }
  }

  /**
   * The latency a one-row request to `model` would see if it were queued now, its own
   * preprocessing not included (GenerationRuntime.predict adds the preprocessing stage).
   */
  predict(model: string, now = performance.now()): LatencyPrediction | undefined {
    const state = this.models.get(model)
    return state && predictLatency(this.load(now), state, now)
  }

  /** Fails every queued request of `model` (it just broke) with `error`. */
  rejectQueued(model: string, error: ApiError): void {
    const state = this.models.get(model)
    if (!state) return
    while (state.queue.length > 0) removeJob(state, 0).reject(error)
    if (this.isIdle()) this.notifyIdle()
  }

  private isIdle(): boolean {
    if (this.running.size > 0) return false
    for (const state of this.models.values()) if (state.queue.length > 0) return false
    return true
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  /** Refuses new requests and resolves once every queued and running one has been answered. */
  async drain(): Promise<void> {
    this.closing = true
    if (!this.isIdle()) {
      await new Promise<void>((resolve) => {
        this.idleWaiters.push(resolve)
      })
    }
    this.timer.cancel()
  }
}
