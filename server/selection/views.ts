/**
 * A selection outcome as the API shows it: response parts (served model, budget, candidates,
 * alternatives). The catalogue error for an outcome that serves nothing is admission's
 * (server/admission/selection.ts); POST /v1/select reports it inside its 200 body.
 */
import type { Alternative, Candidate, ServedModel } from '../schemas/selection.js'
import type { InferenceObservation } from '../metrics.js'
import { hasBudget, latencyEstimate, type Budget, type OnInfeasible } from './budget.js'
import type { CandidateVerdict, SelectionRequest } from './selector.js'
import { isCascade, type Servable } from '../cascade/candidates.js'
import type { ModelEntry } from '../zoo/model-entry.js'

export interface BudgetView extends Budget {
  onInfeasible: OnInfeasible
  met: boolean
}

export function budgetView(request: SelectionRequest, met: boolean): BudgetView {
  return { ...request.budget, onInfeasible: request.onInfeasible, met }
}

/** What the metrics record of a served choice: the servable chosen, why, and the budget verdict. */
export function choiceObservation(
  request: SelectionRequest,
  choice: { model: { name: string }; reason: string; budgetMet: boolean },
): Pick<InferenceObservation, 'model' | 'selectionReason' | 'budget'> {
  return {
    model: choice.model.name,
    selectionReason: choice.reason,
    budget: hasBudget(request.budget) ? (choice.budgetMet ? 'met' : 'missed') : 'none',
  }
}

export function servedModel(entry: ModelEntry): ServedModel {
  return {
    name: entry.name,
    mflops: entry.mflops,
    top1: entry.top1,
    resolution: entry.resolution,
    inputSize: entry.input.size,
    executionProvider: entry.executionProvider ?? null,
  }
}

/** A candidate's verdict; a cascade's live figures are its stages' sums, not a model's, so none are shown. */
export function candidateView(verdict: CandidateVerdict<Servable>): Candidate {
  return {
    name: verdict.model.name,
    mflops: verdict.model.mflops,
    top1: verdict.model.top1,
    latencyMs: verdict.latencyMs,
    ready: verdict.model.ready,
    live: isCascade(verdict.model) ? null : (verdict.model.live ?? null),
    considered: verdict.considered,
    accepted: verdict.accepted,
    violations: verdict.violations,
  }
}

export function alternativeView(entry: Servable | undefined): Alternative {
  if (!entry) return null
  return { name: entry.name, mflops: entry.mflops, top1: entry.top1, latencyMs: latencyEstimate(entry) }
}
