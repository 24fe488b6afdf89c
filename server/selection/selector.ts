/**
 * Which model serves a request. Pure over the zoo's model list, so every rule is unit-tested
 * without a server; the routes turn the outcome into a response or a coded error.
 *
 * Rules, in order:
 * 1. `model` given: only that model is considered (unknown → not-found, not ready → not-ready).
 *    A budget given alongside is checked against it: within budget → served; outside →
 *    infeasible (onInfeasible=reject) or served anyway with `budgetMet: false` (=smallest,
 *    since the cheapest model of a one-model pool is that model).
 * 2. No model and no budget: the default model (DEFAULT_MODEL, else the manifest's, else the most
 *    accurate ready one). If it is not ready, the best-ranked ready model serves instead.
 * 3. A budget: among ready models satisfying every constraint, the best-ranked — highest top-1,
 *    then lower p50 latency, then fewer MFLOPs, then name. None → infeasible (reject) or the
 *    cheapest ready model (smallest: fewest MFLOPs, then lower latency, higher top-1, name).
 * No ready model at all → no-ready-model (503) rather than infeasible: the budget may well be
 * satisfiable once warm-up finishes.
 *
 * Latency is judged under load: a model's estimate is what the runtime predicts a request
 * arriving now would take (see budget.ts). As load rises the most accurate models' predictions
 * pass the budget and the selection steps down the family; as it falls, back up. One more rule
 * keeps that stepping ahead of the load rather than behind it (headroom): with a latency budget, a
 * model other than the fastest feasible one is chosen only if the fastest one would still meet the
 * budget for a request arriving right after — its prediction plus the run this request adds to the
 * queue: a greedy choice that fits its own budget pushes the requests behind it out of theirs and
 * turns load peaks into refusals (the SLO ramp in BENCHMARKS.md). An infeasible
 * outcome is flagged `overloaded` when the budget fails only because of the load — some model
 * would meet it on an idle server (server/admission/load-only.ts) — and admission answers it
 * "retry" (503) instead of "relax the budget" (422): server/admission/admit.ts.
 */
import { failsOnlyUnderLoad } from '../admission/load-only.js'
import { describeBudget, hasBudget, latencyEstimate, violations } from './budget.js'
import type { Budget, OnInfeasible, SelectableModel, Violation } from './budget.js'

export interface SelectionRequest {
  budget: Budget
  onInfeasible: OnInfeasible
  /** Explicit model name from the request. */
  model?: string
  /** The server's default model name (used only without model and budget). */
  defaultModel?: string
  /** Time the request has already spent in the server, ms (latency budgets count from arrival). */
  elapsedMs?: number
}

/** One model's verdict, for the dry-run explanation. */
export interface CandidateVerdict<M extends SelectableModel = SelectableModel> {
  model: M
  /** p50 latency measured on this host, ms; null when not measured. */
  latencyMs: number | null
  /** Whether this model satisfies readiness and every budget constraint. */
  accepted: boolean
  violations: Violation[]
  /** False when an explicit `model` excluded it from consideration. */
  considered: boolean
}

export type SelectionReason =
  'explicit' | 'default' | 'default-unavailable' | 'best-within-budget' | 'smallest-fallback'

interface OutcomeBase<M extends SelectableModel> {
  candidates: CandidateVerdict<M>[]
  /** One sentence on why. */
  explanation: string
}

export interface Selected<M extends SelectableModel> extends OutcomeBase<M> {
  kind: 'selected'
  model: M
  reason: SelectionReason
  /** False only when the budget could not be met and onInfeasible=smallest served anyway. */
  budgetMet: boolean
  /** Latency estimate of the chosen model (p50 on this host), ms. */
  predictedLatencyMs: number | null
}

export interface Infeasible<M extends SelectableModel> extends OutcomeBase<M> {
  kind: 'infeasible'
  /** True when only the current load stands in the way: a model would meet the budget idle. */
  overloaded: boolean
  /** Ready model with the fewest MFLOPs, and the one with the lowest measured latency. */
  cheapest: M | undefined
  fastest: M | undefined
}

export interface ModelNotFound<M extends SelectableModel> extends OutcomeBase<M> {
  kind: 'model-not-found'
  name: string
}

export interface ModelNotReady<M extends SelectableModel> extends OutcomeBase<M> {
  kind: 'model-not-ready'
  model: M
}

export interface NoReadyModel<M extends SelectableModel> extends OutcomeBase<M> {
  kind: 'no-ready-model'
}

export type SelectionOutcome<M extends SelectableModel = SelectableModel> =
  Selected<M> | Infeasible<M> | ModelNotFound<M> | ModelNotReady<M> | NoReadyModel<M>

/** Known latencies sort before unknown ones. */
function compareLatency(a: SelectableModel, b: SelectableModel): number {
  const la = latencyEstimate(a) ?? Number.POSITIVE_INFINITY
  const lb = latencyEstimate(b) ?? Number.POSITIVE_INFINITY
  return la === lb ? 0 : la < lb ? -1 : 1
}

function compareName(a: SelectableModel, b: SelectableModel): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

/** Best first: higher top-1, then lower latency, fewer MFLOPs, name. */
export function compareByAccuracy(a: SelectableModel, b: SelectableModel): number {
  return b.top1 - a.top1 || compareLatency(a, b) || a.mflops - b.mflops || compareName(a, b)
}

/** Cheapest first: fewer MFLOPs, then lower latency, higher top-1, name. */
export function compareByCost(a: SelectableModel, b: SelectableModel): number {
  return a.mflops - b.mflops || compareLatency(a, b) || b.top1 - a.top1 || compareName(a, b)
}

/** Fastest first among measured models: lower latency, then fewer MFLOPs, higher top-1, name. */
function compareBySpeed(a: SelectableModel, b: SelectableModel): number {
  return compareLatency(a, b) || a.mflops - b.mflops || b.top1 - a.top1 || compareName(a, b)
}

/** The item `compare` puts first (the earliest of equals, as a stable sort would): one pass, no copy. */
function first<M>(items: readonly M[], compare: (a: M, b: M) => number): M | undefined {
  let best: M | undefined
  for (const item of items) if (best === undefined || compare(item, best) < 0) best = item
  return best
}

/**
 * The headroom rule (see the module comment): `model` may be chosen over `fastest` only if a
 * request arriving right after could still be served by `fastest` within the latency budget.
 * Always true without a latency budget, for the fastest model itself, or without live figures.
 */
function leavesHeadroom(model: SelectableModel, fastest: SelectableModel, budget: Budget): boolean {
  if (model === fastest || budget.maxLatencyMs === undefined) return true
  const added = model.live?.serviceMs
  const next = fastest.live?.predictedLatencyMs
  if (added === undefined || next === undefined) return true
  return next + added <= budget.maxLatencyMs
}

export function selectModel<M extends SelectableModel>(
  models: readonly M[],
  request: SelectionRequest,
): SelectionOutcome<M> {
  const { budget, onInfeasible } = request
  const budgeted = hasBudget(budget)
  const explicit = request.model
  const candidates: CandidateVerdict<M>[] = models.map((model) => {
    const failed = violations(model, budget, request.elapsedMs ?? 0)
    return {
      model,
      latencyMs: latencyEstimate(model),
      accepted: failed.length === 0,
      violations: failed,
      considered: explicit === undefined || model.name === explicit,
    }
  })
  const ready = models.filter((m) => m.ready)
  const budgetText = describeBudget(budget)

  const selected = (
    model: M,
    reason: SelectionReason,
    budgetMet: boolean,
    explanation: string,
  ): Selected<M> => ({
    kind: 'selected',
    model,
    reason,
    budgetMet,
    predictedLatencyMs: latencyEstimate(model),
    candidates,
    explanation,
  })
  const infeasible = (explanation: string): Infeasible<M> => {
    const overloaded = candidates.some((c) => failsOnlyUnderLoad(c, budget))
    return {
      kind: 'infeasible',
      overloaded,
      cheapest: first(ready, compareByCost),
      fastest: first(
        ready.filter((m) => latencyEstimate(m) !== null),
        compareBySpeed,
      ),
      candidates,
      explanation: overloaded
        ? `${explanation} under the current load (it would be met on an idle server)`
        : explanation,
    }
  }

  if (explicit !== undefined) {
    const verdict = candidates.find((c) => c.model.name === explicit)
    if (!verdict) {
      return {
        kind: 'model-not-found',
        name: explicit,
        candidates,
        explanation: `no model named ${explicit}`,
      }
    }
    const { model } = verdict
    if (!model.ready) {
      return {
        kind: 'model-not-ready',
        model,
        candidates,
        explanation: `${model.name} is not ready${model.reason ? `: ${model.reason}` : ''}`,
      }
    }
    if (verdict.accepted) {
      const within = budgeted ? ` and is within the budget (${budgetText})` : ''
      return selected(model, 'explicit', true, `${model.name} was requested by name${within}`)
    }
    const why = verdict.violations.map((v) => v.message).join('; ')
    if (onInfeasible === 'smallest') {
      return selected(
        model,
        'explicit',
        false,
        `${model.name} was requested by name and is served although it is outside the budget (${why}) because onInfeasible=smallest`,
      )
    }
    return infeasible(`the requested model ${model.name} is outside the budget: ${why}`)
  }

  if (ready.length === 0) {
    return { kind: 'no-ready-model', candidates, explanation: 'no model is ready yet' }
  }

  if (!budgeted) {
    const fallback = first(ready, compareByAccuracy)
    if (!fallback) return { kind: 'no-ready-model', candidates, explanation: 'no model is ready yet' }
    const defaultModel = models.find((m) => m.name === request.defaultModel)
    if (defaultModel?.ready) {
      return selected(
        defaultModel,
        'default',
        true,
        `no budget given: ${defaultModel.name} is the default model`,
      )
    }
    const missing =
      request.defaultModel === undefined
        ? 'no default model is configured'
        : `the default model ${request.defaultModel} is ${defaultModel ? 'not ready' : 'not in the zoo'}`
    return selected(
      fallback,
      'default-unavailable',
      true,
      `no budget given and ${missing}: ${fallback.name} is the most accurate ready model`,
    )
  }

  const feasible = candidates.filter((c) => c.accepted).map((c) => c.model)
  const fastest = first(feasible, compareBySpeed)
  const roomy = feasible.filter((m) => fastest === undefined || leavesHeadroom(m, fastest, budget))
  const best = first(roomy, compareByAccuracy)
  if (best) {
    const heldBack = feasible.filter((m) => !roomy.includes(m) && compareByAccuracy(m, best) < 0)
    const headroom =
      heldBack.length > 0
        ? `; ${heldBack.map((m) => m.name).join(', ')} would fit too, but would leave the requests behind it no room within the budget under the current load`
        : ''
    return selected(
      best,
      'best-within-budget',
      true,
      `${best.name} is the most accurate of ${feasible.length} ready model(s) within the budget (${budgetText})${headroom}`,
    )
  }
  if (onInfeasible === 'smallest') {
    const cheapest = first(ready, compareByCost)
    if (cheapest) {
      return selected(
        cheapest,
        'smallest-fallback',
        false,
        `no ready model satisfies the budget (${budgetText}); onInfeasible=smallest serves the cheapest ready model ${cheapest.name}`,
      )
    }
  }
  return infeasible(`no ready model satisfies the budget (${budgetText})`)
}
