/**
 * A request's budget and how one model measures up against it. Pure: no Fastify, no I/O.
 *
 * Constraints (each optional, all must hold):
 * - maxMflops    — the model's MFLOPs (from the manifest) ≤ maxMflops;
 * - maxLatencyMs — the model's batch-1 p50 latency measured on THIS host at warm-up ≤ maxLatencyMs
 *                  (a model without a measurement cannot satisfy a latency budget);
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

/** The latency a budget is checked against: p50 measured on this host, if any. */
export function latencyEstimate(model: SelectableModel): number | null {
  return model.latencyMs?.p50 ?? null
}

/** Every constraint `model` fails, in the order ready, maxMflops, maxLatencyMs, minTop1. */
export function violations(model: SelectableModel, budget: Budget): Violation[] {
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
    const latency = latencyEstimate(model)
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
      found.push({
        constraint: 'maxLatencyMs',
        limit: budget.maxLatencyMs,
        actual: latency,
        message: `p50 latency ${latency} ms > maxLatencyMs ${budget.maxLatencyMs}`,
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
