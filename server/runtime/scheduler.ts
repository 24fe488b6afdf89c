/**
 * Dynamic batching, bounded queues and deadlines in front of the worker pool (one scheduler per
 * zoo generation), and the latency predictions load-aware selection reads.
 *
 * - One queue per model, ordered by deadline. Whenever a worker is idle the scheduler picks the
 *   queue whose head has the earliest deadline (EDF across models) and sends its head requests as
 *   one batch: as many as fit in the model's maximum batch (MAX_BATCH_SIZE, or 1 for a graph with
 *   a fixed batch of 1) without making the batch finish after the head's deadline. Under low load
 *   a request therefore runs alone at once; under load the queue fills while the workers are busy
 *   and the next batch takes everything waiting — Triton's dynamic batcher with
 *   max_queue_delay_microseconds = 0. A positive MAX_QUEUE_DELAY_US holds a queue that is not full
 *   for up to that long after its oldest request arrived, to let a bigger batch form.
 * - Bounded: a model's queue holds at most MAX_QUEUE_SIZE rows; beyond that a request is refused
 *   at once with OVERLOADED (503) and a Retry-After estimate of the time to drain the backlog.
 * - Deadlines: every request has one — the caller's (from maxLatencyMs) or INFERENCE_TIMEOUT_MS after
 *   submission. A request that can no longer finish in time even if started now, alone, is
 *   answered DEADLINE_EXCEEDED (504) before any compute: at submission, at every dispatch, and by
 *   a timer set for the earliest such moment, so a request never waits past its deadline unseen.
 * - Predictions: for a request of model m arriving now, the later of (a) the time until its batch
 *   starts (the running batches' remaining time plus the queued work, shared over the workers)
 *   plus its batch's run time at the size it would run in (it joins m's last partial batch), and
 *   (b) the steady-state latency m would settle to if it served the current arrival rate alone
 *   (latency-model.ts steadyState) — (a) sees the queue that exists, (b) the one about to form;
 *   then the measured hand-off overhead. Service times come from each model's ModelLatency,
 *   which every completed batch updates; budget checks use its cautious (mean + spread) figure.
 */
import { ApiError } from '../errors.js'
import type { InferenceResult } from './types.js'
import { RateMeter, steadyState, type ModelLatency } from './latency-model.js'
import { WorkerCrashError } from './worker-pool.js'
import {
  epochMs,
  type BatchItem,
  type BatchReply,
  type BatchTask,
  type WorkerFault,
} from './worker-protocol.js'

export interface SchedulerSettings {
  /** Largest batch, in rows, for models whose graph allows batching. */
  maxBatchSize: number
  /** How long a partial batch may wait for more requests while a worker is idle, ms. */
  maxQueueDelayMs: number
  /** Rows a model's queue may hold; more are refused with OVERLOADED. */
  maxQueueSize: number
  /** INFERENCE_TIMEOUT_MS: deadline of a request that brings none, counted from submission, ms. */
  inferenceTimeoutMs: number
}

/** What the scheduler needs from the worker pool. */
export interface BatchExecutor {
  /** Workers serving now. */
  readonly size: number
  /** Workers with no batch running. */
  readonly idle: number
  execute(task: Omit<BatchTask, 'kind' | 'id'>, transfer: ArrayBuffer[]): Promise<BatchReply>
}

export interface ScheduledModel {
  name: string
  /** Largest batch this model runs (its graph's limit and MAX_BATCH_SIZE). */
  maxBatch: number
  latency: ModelLatency
}

export interface SubmitOptions {
  /** Absolute deadline on this thread's performance.now() clock, ms. */
  deadline?: number
  /** Buffers of the item to move to the worker instead of copying (the caller gives them up). */
  transfer?: ArrayBuffer[]
  /** Aborted when the client has gone: a request still queued is dropped with CLIENT_CLOSED. */
  signal?: AbortSignal
}

export interface BatchObservation {
  batchSize: number
  requests: number
  /** Mean queue time of the batch's requests, ms. */
  queueMs: number
  inferenceMs: number
}

export type ShedReason = 'queue-full' | 'deadline'

export interface SchedulerHooks {
  /** A batch ran (successfully) on a worker. */
  onBatch?(model: string, observation: BatchObservation): void
  /** A request was refused or expired before compute. */
  onShed?(model: string, reason: ShedReason): void
  /** session.run of `model` failed: the model itself is broken. */
  onModelFault?(model: string, message: string): void
  /** A worker died under a batch of `model`. */
  onWorkerCrash?(model: string, message: string): void
}

/** A request's latency if it arrived now, and its parts. */
export interface LatencyPrediction {
  /**
   * Cautious estimate of queue wait + worker time of its batch + hand-off (+ its preprocessing,
   * where added): the mean scaled by the observed spread (ModelLatency.cautionFactor), ms.
   */
  predictedLatencyMs: number
  /** The same as a plain mean, ms. */
  expectedLatencyMs: number
  /** Requests submitted per second, all models (moving average over about a second). */
  arrivalRatePerS: number
  /** Share of the workers this model would need if it served that whole rate (≥ 1: overload). */
  utilization: number
  queueWaitMs: number
  /** Rows of the batch it would run in. */
  batchSize: number
  /** Predicted session.run time of that batch, ms. */
  serviceMs: number
  /** Predicted per-image preprocessing time, ms. */
  preprocessMs: number
  /** The same cautious estimate on an unloaded server (warm-up run time, no queue), ms. */
  idleLatencyMs: number
  /** Requests waiting for this model, and running now. */
  queued: number
  inFlight: number
}

interface Job {
  item: BatchItem
  rows: number
  deadline: number
  enqueuedAt: number
  submittedAt: number
  transfer: ArrayBuffer[]
  resolve: (result: InferenceResult) => void
  reject: (error: Error) => void
  /** Detaches the job from its request's abort signal (once it leaves the queue). */
  detach: () => void
}

interface ModelState extends ScheduledModel {
  queue: Job[]
  queuedRows: number
  inFlight: number
}

interface RunningBatch {
  model: ModelState
  expectedEnd: number
}

/** Index at which a job with `deadline` goes to keep `queue` sorted (after equal deadlines). */
function insertionIndex(queue: readonly Job[], deadline: number): number {
  let lo = 0
  let hi = queue.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((queue[mid] as Job).deadline <= deadline) lo = mid + 1
    else hi = mid
  }
  return lo
}

export class Scheduler {
  private readonly models = new Map<string, ModelState>()
  private readonly running = new Set<RunningBatch>()
  /** Main-thread overhead of a batch round trip beyond the worker's own time, ms. */
  private handoffMs = 0.2
  private pumpPending = false
  private timer: NodeJS.Timeout | undefined
  private timerAt = Number.POSITIVE_INFINITY
  private closing = false
  private idleWaiters: (() => void)[] = []
  private readonly faults: { model: string | undefined; fault: WorkerFault; remaining: number }[] = []
  /** Submissions per ms over all models (the load selection must fit a model to). */
  private readonly arrivals = new RateMeter(1000)

  constructor(
    private readonly executor: BatchExecutor,
    models: readonly ScheduledModel[],
    private readonly settings: SchedulerSettings,
    private readonly hooks: SchedulerHooks = {},
  ) {
    for (const model of models) {
      this.models.set(model.name, {
        ...model,
        maxBatch: Math.max(1, Math.min(model.maxBatch, settings.maxBatchSize)),
        queue: [],
        queuedRows: 0,
        inFlight: 0,
      })
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
        this.removeJob(state, index)
        job.reject(clientClosedError(model))
        if (this.isIdle()) this.notifyIdle()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      state.queue.splice(insertionIndex(state.queue, deadline), 0, job)
      state.queuedRows += rows
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
   * Why a request of `rows` rows for `model` must be refused right now, if it must: its queue is
   * full (OVERLOADED), or even run at once and alone it would finish after `deadline`
   * (DEADLINE_EXCEEDED); `beforeMs` is work it still needs before it can be queued (preprocessing),
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
    if (this.closing) return new ApiError('MODEL_NOT_READY', `model ${model} is being unloaded`)
    const state = this.models.get(model)
    if (!state) return new ApiError('MODEL_NOT_READY', `model ${model} has no session`)
    const queued = state.queuedRows + aheadRows
    if (queued > 0 && queued + rows > this.settings.maxQueueSize) {
      this.hooks.onShed?.(model, 'queue-full')
      const aheadMs = aheadRows > 0 ? state.latency.runMs(aheadRows) : 0
      const drainMs = (this.backlogMs(now) + aheadMs) / Math.max(1, this.executor.size)
      return new ApiError(
        'OVERLOADED',
        `model ${model} has ${queued} rows queued or being preprocessed (MAX_QUEUE_SIZE ${this.settings.maxQueueSize}); retry later`,
        { model, retryAfterS: Math.max(1, Math.ceil(drainMs / 1000)) },
      )
    }
    const needed = beforeMs + this.handoffMs + state.latency.runMs(rows)
    if (now + needed > deadline) {
      this.hooks.onShed?.(model, 'deadline')
      return this.deadlineError(model, deadline, now, needed)
    }
    return undefined
  }

  private deadlineError(model: string, deadline: number, now: number, neededMs: number): ApiError {
    const leftMs = Math.max(0, deadline - now)
    return new ApiError(
      'DEADLINE_EXCEEDED',
      `model ${model} cannot answer within the request's deadline: ${leftMs.toFixed(1)} ms left, a run needs ≈${neededMs.toFixed(1)} ms`,
      { model, remainingMs: Math.round(leftMs * 1000) / 1000, neededMs: Math.round(neededMs * 1000) / 1000 },
    )
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

  private removeJob(state: ModelState, index: number): Job {
    const [job] = state.queue.splice(index, 1) as [Job]
    state.queuedRows -= job.rows
    job.detach()
    return job
  }

  /** Answers every queued request that can no longer meet its deadline. */
  private expire(now: number): void {
    for (const state of this.models.values()) {
      for (let i = 0; i < state.queue.length;) {
        const job = state.queue[i] as Job
        if (now > this.latestStart(state, job)) {
          this.removeJob(state, i)
          this.hooks.onShed?.(state.name, 'deadline')
          job.reject(
            this.deadlineError(state.name, job.deadline, now, this.handoffMs + state.latency.runMs(job.rows)),
          )
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
    this.armTimer(wakeAt, now)
    if (this.isIdle()) this.notifyIdle()
  }

  private armTimer(at: number, now: number): void {
    if (at === Number.POSITIVE_INFINITY) return
    if (this.timer && this.timerAt <= at) return
    if (this.timer) clearTimeout(this.timer)
    this.timerAt = at
    // +0.05 ms so the check runs after the moment, not a hair before it.
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.timerAt = Number.POSITIVE_INFINITY
        this.pump()
      },
      Math.max(0, at - now + 0.05),
    )
  }

  /** Takes the head requests of `state` as one batch and sends it to an idle worker. */
  private dispatch(state: ModelState, now: number): void {
    const head = state.queue[0] as Job
    let rows = 0
    let count = 0
    for (const job of state.queue) {
      const nextRows = rows + job.rows
      if (count > 0) {
        if (nextRows > state.maxBatch) break
        const finish = now + this.handoffMs + state.latency.runMs(nextRows)
        if (finish > head.deadline) break
      }
      rows = nextRows
      count++
    }
    const jobs: Job[] = []
    for (let i = 0; i < count; i++) jobs.push(this.removeJob(state, 0))

    const transfer = jobs.flatMap((job) => job.transfer)
    const task: Omit<BatchTask, 'kind' | 'id'> = { model: state.name, items: jobs.map((job) => job.item) }
    const fault = this.takeFault(state.name)
    if (fault) task.fault = fault
    const batch: RunningBatch = { model: state, expectedEnd: now + state.latency.runMs(rows) }
    this.running.add(batch)
    state.inFlight += count
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

    let queueSum = 0
    jobs.forEach((job, i) => {
      const placed = reply.items[i]
      const queueMs = Math.max(0, reply.startedAt - job.submittedAt)
      queueSum += queueMs
      if (!placed) {
        job.reject(new ApiError('INFERENCE_FAILED', `model ${state.name}: the worker skipped a request`))
      } else if ('error' in placed) {
        job.reject(rebuildError(placed.error))
      } else {
        const start = placed.offset * reply.classes
        job.resolve({
          logits: reply.logits.subarray(start, start + placed.rows * reply.classes),
          dims: [placed.rows, reply.classes],
          queueMs,
          inferenceMs: reply.inferenceMs,
          batchSize: reply.batchRows,
          preprocessMs: placed.preprocessMs ?? 0,
        })
        if (placed.preprocessMs !== undefined && placed.preprocessMs > 0) {
          state.latency.observePreprocess(placed.preprocessMs)
        }
      }
    })
    if (reply.batchRows > 0) {
      this.hooks.onBatch?.(state.name, {
        batchSize: reply.batchRows,
        requests: jobs.length,
        queueMs: queueSum / jobs.length,
        inferenceMs: reply.inferenceMs,
      })
    }
  }

  /** Worker time of `rows` queued rows cut into batches of `maxBatch`. */
  private queueWorkMs(state: ModelState, rows: number): number {
    if (rows <= 0) return 0
    const full = Math.floor(rows / state.maxBatch)
    const rest = rows - full * state.maxBatch
    return full * state.latency.runMs(state.maxBatch) + (rest > 0 ? state.latency.runMs(rest) : 0)
  }

  /** Remaining time of running batches plus all queued work, ms (summed over workers). */
  private backlogMs(now = performance.now()): number {
    let total = 0
    for (const batch of this.running) total += Math.max(0, batch.expectedEnd - now)
    for (const state of this.models.values()) total += this.queueWorkMs(state, state.queuedRows)
    return total
  }

  /**
   * The latency a one-row request to `model` would see if it were queued now, its own
   * preprocessing not included (InferencePool.predict adds the preprocessing stage).
   */
  predict(model: string, now = performance.now()): LatencyPrediction | undefined {
    const state = this.models.get(model)
    if (!state) return undefined
    const backlog = this.backlogMs(now)
    const queued = [...this.models.values()].some((s) => s.queue.length > 0)
    const workers = Math.max(1, this.executor.size)
    // The request joins its model's last partial batch: that batch's work is its own, not a wait.
    const partialRows = state.queuedRows % state.maxBatch
    const ahead = backlog - (partialRows > 0 ? state.latency.runMs(partialRows) : 0)
    const queueWaitMs = this.executor.idle > 0 && !queued ? 0 : Math.max(0, ahead) / workers
    const batchSize = partialRows + 1
    const serviceMs = state.latency.runMs(batchSize)
    const preprocessMs = state.latency.preprocessMs()
    // An unloaded server: the warm-up run time, with the same caution as the prediction.
    const idleMs = (state.latency.runMs(1) / state.latency.contentionFactor) * state.latency.cautionFactor
    // The later of: draining what is queued now, and the regime the current arrival rate leads to
    // if this model took it all (rules a model out before its queue has grown).
    const arrivalRate = this.arrivals.rateAt(now)
    const steady = steadyState(state.latency, arrivalRate, workers, state.maxBatch)
    const computeMs = Math.max(queueWaitMs + serviceMs, steady.latencyMs)
    return {
      predictedLatencyMs: computeMs * state.latency.cautionFactor + this.handoffMs,
      expectedLatencyMs: computeMs + this.handoffMs,
      arrivalRatePerS: arrivalRate * 1000,
      utilization: steady.utilization,
      queueWaitMs,
      batchSize,
      serviceMs,
      preprocessMs,
      idleLatencyMs: idleMs + this.handoffMs,
      queued: state.queue.length,
      inFlight: state.inFlight,
    }
  }

  /** Fails every queued request of `model` (it just broke) with `error`. */
  rejectQueued(model: string, error: ApiError): void {
    const state = this.models.get(model)
    if (!state) return
    while (state.queue.length > 0) this.removeJob(state, 0).reject(error)
    if (this.isIdle()) this.notifyIdle()
  }

  /** Test-only: the next `count` batches (of `model`, or of any model) carry `fault`. */
  armFault(fault: WorkerFault, model: string | undefined, count: number): void {
    this.faults.push({ model, fault, remaining: count })
  }

  disarmFaults(): void {
    this.faults.length = 0
  }

  private takeFault(model: string): WorkerFault | undefined {
    const index = this.faults.findIndex((f) => f.model === undefined || f.model === model)
    const armed = this.faults[index]
    if (!armed) return undefined
    if (--armed.remaining <= 0) this.faults.splice(index, 1)
    return armed.fault
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
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }
}

function clientClosedError(model: string): ApiError {
  return new ApiError(
    'CLIENT_CLOSED',
    `the client closed the connection while its request for model ${model} was queued`,
    { model },
  )
}

/** An item error from a worker → the catalogue error it names (INFERENCE_FAILED if unknown). */
export function rebuildError(error: {
  code: string
  message: string
  details?: Record<string, unknown>
}): ApiError {
  try {
    return new ApiError(error.code as ApiError['code'], error.message, error.details ?? {})
  } catch {
    return new ApiError('INFERENCE_FAILED', error.message)
  }
}
