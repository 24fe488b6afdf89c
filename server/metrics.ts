/**
 * Prometheus metrics of the server (prom-client), one registry per app plus the process-wide
 * default metrics (CPU, memory, event loop, GC), merged at scrape time.
 *
 * Label cardinality is bounded by construction: a `model` label is only ever a name of the served
 * zoo (`none` when no model was chosen, `unknown` for anything else — a name from a request is
 * never copied into a label), `code` comes from the error catalogue, `reason` from the selector's
 * fixed set, `route` from the registered routes, `api` and `outcome` from fixed lists here.
 *
 * Hooks for other parts of the server:
 * - `recordExecution(model, { batchSize, queueMs, inferenceMs })` — what one request's inference
 *   cost (the routes call it): queue and compute time, and its tensor's rows as the batch size.
 * - `recordBatch(model, size)` — one executed batch, for a dynamic batcher below `app.inference`
 *   that merges requests: from its first call on, batch sizes come only from it and the
 *   request-level sizes of recordExecution are ignored, so nothing is counted twice.
 * - `recordShed(model, reason)` — a request refused by load shedding (reason: a short fixed token;
 *   keep the set small). Answers with the catalogue's shedding codes are counted automatically (see
 *   SHED_REASONS), so a shedding component only calls it for refusals that never become a response.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Inference APIs whose requests are counted per model. */
export type InferenceApi = 'v1' | 'v2' | 'grpc'

export type BudgetOutcome = 'met' | 'missed' | 'infeasible'

/** What a served (or failed) inference request is known to have used. */
export interface InferenceObservation {
  api: InferenceApi
  /** The model that served, or was chosen before the request failed; undefined when none was. */
  model?: string | undefined
  /** The selector's reason (explicit, default, best-within-budget, …). */
  selectionReason?: string | undefined
  /** Whether the request carried a budget, and whether the served model met it. */
  budget?: BudgetOutcome | 'none' | undefined
}

export interface ExecutionTiming {
  batchSize: number
  queueMs: number
  inferenceMs: number
}

/** Catalogue codes that mean "refused to protect the server", and their `reason` label. */
export const SHED_REASONS: Readonly<Record<string, string>> = {
  OVERLOADED: 'overloaded',
  DEADLINE_EXCEEDED: 'deadline',
  RATE_LIMITED: 'rate-limited',
}

export const NO_MODEL = 'none'
export const UNKNOWN_MODEL = 'unknown'
export const UNMATCHED_ROUTE = 'unmatched'

/** Latency buckets in seconds: sub-millisecond CPU models up to multi-second overload. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256]

let processRegistry: Registry | undefined

/** Default process metrics are process-wide: collected once, shared by every app in the process. */
function defaultMetricsRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export interface ServerMetricsOptions {
  /** Names of the zoo's models now (labels are restricted to these). */
  modelNames: () => Iterable<string>
  /** Readiness per model, read at scrape time. */
  modelReadiness: () => Iterable<{ name: string; ready: boolean }>
}

export class ServerMetrics {
  readonly registry = new Registry()

  private readonly httpRequests = new Counter({
    name: 'alphanet_http_requests_total',
    help: 'HTTP requests by method, route template and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    registers: [this.registry],
  })

  private readonly httpDuration = new Histogram({
    name: 'alphanet_http_request_duration_seconds',
    help: 'Time from receiving an HTTP request to sending the response, by method and route template.',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  private readonly inferenceRequests = new Counter({
    name: 'alphanet_inference_requests_total',
    help: 'Inference requests answered successfully, by serving model and API (v1 = /v1/classify, v2 = Open Inference Protocol).',
    labelNames: ['model', 'api'] as const,
    registers: [this.registry],
  })

  private readonly inferenceFailures = new Counter({
    name: 'alphanet_inference_failures_total',
    help: 'Inference requests answered with an error, by model (none: failed before a model was chosen), API and error code.',
    labelNames: ['model', 'api', 'code'] as const,
    registers: [this.registry],
  })

  private readonly requestSeconds = new Histogram({
    name: 'alphanet_inference_request_seconds',
    help: 'Total time of successful inference requests (receive to respond), by model and API.',
    labelNames: ['model', 'api'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  private readonly queueSeconds = new Histogram({
    name: 'alphanet_inference_queue_seconds',
    help: 'Time a model execution waited for a free inference worker, by model.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  private readonly computeSeconds = new Histogram({
    name: 'alphanet_inference_compute_seconds',
    help: 'Time inside onnxruntime session.run per model execution, by model.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })

  private readonly batchSize = new Histogram({
    name: 'alphanet_inference_batch_size',
    help: 'Images per model execution, by model.',
    labelNames: ['model'] as const,
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  })

  private readonly budgets = new Counter({
    name: 'alphanet_budget_requests_total',
    help: 'Requests that carried a budget, by serving model and outcome (met; missed: served anyway by onInfeasible=smallest; infeasible: refused, model none).',
    labelNames: ['model', 'outcome'] as const,
    registers: [this.registry],
  })

  private readonly selections = new Counter({
    name: 'alphanet_model_selections_total',
    help: 'How often each model was selected to serve a request, by selection reason.',
    labelNames: ['model', 'reason'] as const,
    registers: [this.registry],
  })

  private readonly shed = new Counter({
    name: 'alphanet_shed_requests_total',
    help: 'Requests refused by load shedding, by model (none if refused before selection) and reason.',
    labelNames: ['model', 'reason'] as const,
    registers: [this.registry],
  })

  /** Set by the first recordBatch call: a batcher reports executed batch sizes itself. */
  private batchesFromExecutor = false

  constructor(private readonly options: ServerMetricsOptions) {
    const readiness = options.modelReadiness
    new Gauge({
      name: 'alphanet_model_ready',
      help: '1 when the model is loaded, warm and selectable, else 0.',
      labelNames: ['model'] as const,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const { name, ready } of readiness()) this.set({ model: name }, ready ? 1 : 0)
      },
    })
  }

  /** A zoo model name as a label; anything the zoo does not know collapses to one value. */
  modelLabel(name: string | undefined): string {
    if (name === undefined) return NO_MODEL
    for (const known of this.options.modelNames()) if (known === name) return name
    return UNKNOWN_MODEL
  }

  recordHttp(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    const routeLabel = route ?? UNMATCHED_ROUTE
    this.httpRequests.inc({ method, route: routeLabel, status_code: String(statusCode) })
    this.httpDuration.observe({ method, route: routeLabel }, seconds)
  }

  /** A successful inference request. */
  recordServed(observation: InferenceObservation, totalMs: number): void {
    const model = this.modelLabel(observation.model)
    this.inferenceRequests.inc({ model, api: observation.api })
    this.requestSeconds.observe({ model, api: observation.api }, totalMs / 1000)
    if (observation.selectionReason !== undefined) {
      this.selections.inc({ model, reason: observation.selectionReason })
    }
    if (observation.budget !== undefined && observation.budget !== 'none') {
      this.budgets.inc({ model, outcome: observation.budget })
    }
  }

  /** A failed inference request with its catalogue error code. */
  recordFailure(observation: InferenceObservation, code: string): void {
    const model = this.modelLabel(observation.model)
    this.inferenceFailures.inc({ model, api: observation.api, code })
    if (code === 'BUDGET_INFEASIBLE') this.budgets.inc({ model: NO_MODEL, outcome: 'infeasible' })
  }

  /** Counts an error answer as shed when its code is a shedding code; any route, any API. */
  recordRefusal(model: string | undefined, code: string): void {
    const reason = SHED_REASONS[code]
    if (reason !== undefined) this.recordShed(model, reason)
  }

  recordExecution(model: string, timing: ExecutionTiming): void {
    const label = this.modelLabel(model)
    this.queueSeconds.observe({ model: label }, timing.queueMs / 1000)
    this.computeSeconds.observe({ model: label }, timing.inferenceMs / 1000)
    if (!this.batchesFromExecutor) this.batchSize.observe({ model: label }, timing.batchSize)
  }

  recordBatch(model: string, size: number): void {
    this.batchesFromExecutor = true
    this.batchSize.observe({ model: this.modelLabel(model) }, size)
  }

  recordShed(model: string | undefined, reason: string): void {
    this.shed.inc({ model: this.modelLabel(model), reason })
  }

  get contentType(): string {
    return this.registry.contentType
  }

  /** The exposition text: this app's metrics plus the process's default metrics. */
  async scrape(): Promise<string> {
    return Registry.merge([defaultMetricsRegistry(), this.registry]).metrics()
  }
}
