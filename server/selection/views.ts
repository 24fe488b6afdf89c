/**
 * A selection outcome as the API shows it: response parts (served model, budget, candidates,
 * alternatives) and, for an outcome that serves nothing, the catalogue error every route answers
 * (POST /v1/select reports the same error inside its 200 body).
 */
import { apiError, type ApiError } from '../errors.js'
import type { Alternative, Candidate, ServedModel } from '../schemas/selection.js'
import type { InferenceObservation } from '../metrics.js'
import { hasBudget, latencyEstimate, type Budget, type OnInfeasible } from './budget.js'
import type { CandidateVerdict, SelectionOutcome, SelectionRequest } from './selector.js'
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

/** The coded error for an outcome that serves no model; undefined when a model was selected. */
export function selectionError(
  outcome: SelectionOutcome<Servable>,
  request: SelectionRequest,
): ApiError | undefined {
  switch (outcome.kind) {
    case 'selected':
      return undefined
    case 'model-not-found':
      return apiError('MODEL_NOT_FOUND', `no model named "${outcome.name}" in the zoo (see GET /models)`, {
        model: outcome.name,
      })
    case 'model-not-ready':
      return apiError('MODEL_NOT_READY', outcome.explanation, {
        model: outcome.model.name,
        reason: outcome.model.reason ?? 'warming up',
      })
    case 'no-ready-model':
      return apiError('NOT_READY', 'no model is ready yet; retry once GET /readyz answers 200')
    case 'infeasible': {
      const cheapest = outcome.cheapest
      const fastest = outcome.fastest
      if (outcome.overloaded) {
        // The budget is fine on an idle server; only the current load breaks it: retry, not relax.
        // Once the request has spent its whole budget waiting, its deadline has passed (504).
        const budgetMs = request.budget.maxLatencyMs ?? Number.POSITIVE_INFINITY
        const spentMs = request.elapsedMs ?? 0
        if (spentMs >= budgetMs) {
          return apiError(
            'DEADLINE_EXCEEDED',
            `the request spent ${spentMs.toFixed(1)} ms waiting under the current load, past its maxLatencyMs ${budgetMs}; retry shortly`,
            { remainingMs: 0, neededMs: (fastest && latencyEstimate(fastest)) ?? 0 },
          )
        }
        return apiError(
          'OVERLOADED',
          `${outcome.explanation}; retry shortly, or pass onInfeasible=smallest to be served anyway.`,
          {
            retryAfterS: 1,
            budget: budgetView(request, false),
            cheapest: alternativeView(cheapest),
            fastest: alternativeView(fastest),
            candidates: outcome.candidates.map(candidateView),
          },
        )
      }
      const hints = [
        cheapest ? `cheapest ready model: ${cheapest.name} (${cheapest.mflops} MFLOPs)` : undefined,
        fastest ? `fastest: ${fastest.name} (${latencyEstimate(fastest) ?? '?'} ms)` : undefined,
      ].filter((h) => h !== undefined)
      return apiError(
        'BUDGET_INFEASIBLE',
        `${outcome.explanation}${hints.length > 0 ? `; ${hints.join(', ')}` : ''}. Relax the budget or pass onInfeasible=smallest.`,
        {
          budget: budgetView(request, false),
          cheapest: alternativeView(cheapest),
          fastest: alternativeView(fastest),
          candidates: outcome.candidates.map(candidateView),
        },
      )
    }
  }
}
