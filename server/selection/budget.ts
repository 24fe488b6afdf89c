/**
 * A request's budget and how one model measures up against it. Pure: no Fastify, no I/O.
 *
 * Constraints (each optional, all must hold):
 * - maxMflops    — the model's MFLOPs (from the manifest) ≤ maxMflops;
 * - maxLatencyMs — the latency the runtime predicts for this request under the CURRENT load ≤
 *                  maxLatencyMs: queue wait + worker time of the batch it would run in (decode,
 *                  preprocess, session.run at that batch size) + hand-off, from live measurements
 *                  (runtime/scheduler.ts). Without live figures (a model list not from a serving
 *                  runtime) the batch-1 p50 measured on this host at warm-up stands in; a model
 *                  with neither cannot satisfy a latency budget;
 * - minTop1      — the model's top-1 accuracy (fraction) ≥ minTop1.
 * A model must also be ready (loaded and warm) to be eligible.
 */

export interface Budget {
  maxMflops?: number
  maxLatencyMs?: number
  minTop1?: number
}

/** What to do when no ready model satisfies the budget: 422, or serve the cheapest ready model. */
export type OnInfeasible = 'reject' | 'smallest'

export const BUDGET_KEYS = [
  'maxMflops',
  'maxLatencyMs',
  'minTop1',
] as const satisfies readonly (keyof Budget)[]

/** The view of a zoo model the selection needs (ModelEntry satisfies it). */
export interface SelectableModel {
  name: string
  mflops: number
  top1: number
  ready: boolean
  reason?: string
  latencyMs?: { p50: number; p95: number }
  /**
   * Load-aware prediction for a request arriving now, the same on an unloaded server, and the
   * predicted session.run time of the batch it would run in (the work it adds to the queue).
   */
  live?: { predictedLatencyMs: number; idleLatencyMs: number; serviceMs?: number }
}

export type Constraint = 'ready' | keyof Budget

/** One failed constraint, with the two values compared. */
export interface Violation {
  constraint: Constraint
  /** The budget's bound; null for `ready`. */
  limit: number | null
  /** The model's value; null when unknown (no latency measured) or for `ready`. */
  actual: number | null
  message: string
}

export function hasBudget(budget: Budget): boolean {
  return BUDGET_KEYS.some((key) => budget[key] !== undefined)
}

/** The latency a budget is checked against: the live prediction, else the warm-up p50, if any. */
export function latencyEstimate(model: SelectableModel): number | null {
  return model.live?.predictedLatencyMs ?? model.latencyMs?.p50 ?? null
}

/** The same on an unloaded server: what the budget would be checked against without queueing. */
export function idleLatencyEstimate(model: SelectableModel): number | null {
  return model.live?.idleLatencyMs ?? model.latencyMs?.p50 ?? null
}

/**
 * Every constraint `model` fails, in the order ready, maxMflops, maxLatencyMs, minTop1.
 * @param elapsedMs time the request has already spent in the server (reading, validating): a
 *   latency budget counts from arrival, so it must hold elapsed + predicted.
 */
export function violations(model: SelectableModel, budget: Budget, elapsedMs = 0): Violation[] {
  const found: Violation[] = []
  if (!model.ready) {
    found.push({
      constraint: 'ready',
      limit: null,
      actual: null,
      message: `not ready${model.reason ? `: ${model.reason}` : ''}`,
    })
  }
  if (budget.maxMflops !== undefined && model.mflops > budget.maxMflops) {
    found.push({
      constraint: 'maxMflops',
      limit: budget.maxMflops,
      actual: model.mflops,
      message: `${model.mflops} MFLOPs > maxMflops ${budget.maxMflops}`,
    })
  }
  if (budget.maxLatencyMs !== undefined) {
    const estimate = latencyEstimate(model)
    const latency = estimate === null ? null : Math.round((estimate + elapsedMs) * 1000) / 1000
    if (latency === null) {
      // A model that is not ready has no measurement; its `ready` violation already says why.
      if (model.ready) {
        found.push({
          constraint: 'maxLatencyMs',
          limit: budget.maxLatencyMs,
          actual: null,
          message: 'no latency measured on this host',
        })
      }
    } else if (latency > budget.maxLatencyMs) {
      const what = model.live ? 'predicted latency under current load' : 'p50 latency'
      const spent = elapsedMs > 0 ? ` (incl. ${Math.round(elapsedMs * 1000) / 1000} ms already spent)` : ''
      found.push({
        constraint: 'maxLatencyMs',
        limit: budget.maxLatencyMs,
        actual: latency,
        message: `${what} ${latency} ms${spent} > maxLatencyMs ${budget.maxLatencyMs}`,
      })
    }
  }
  if (budget.minTop1 !== undefined && model.top1 < budget.minTop1) {
    found.push({
      constraint: 'minTop1',
      limit: budget.minTop1,
      actual: model.top1,
      message: `top-1 ${model.top1} < minTop1 ${budget.minTop1}`,
    })
  }
  return found
}

/** "maxMflops ≤ 5, minTop1 ≥ 0.8" — for messages; "no budget" when empty. */
export function describeBudget(budget: Budget): string {
  const parts: string[] = []
  if (budget.maxMflops !== undefined) parts.push(`maxMflops ≤ ${budget.maxMflops}`)
  if (budget.maxLatencyMs !== undefined) parts.push(`maxLatencyMs ≤ ${budget.maxLatencyMs}`)
  if (budget.minTop1 !== undefined) parts.push(`minTop1 ≥ ${budget.minTop1}`)
  return parts.length > 0 ? parts.join(', ') : 'no budget'
}
