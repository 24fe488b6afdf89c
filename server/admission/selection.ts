/**
 * Admission's refusals of a selection outcome that serves nothing (admit.ts stage `selection`): an
 * unknown model (404), a model or zoo not ready (503), and a budget no ready model meets — 503
 * OVERLOADED with Retry-After when only the load stands in the way (load-only.ts), 504
 * DEADLINE_EXCEEDED once the request has spent its whole latency budget waiting, and 422
 * BUDGET_INFEASIBLE only when the budget cannot be met even on an idle server.
 */
import { apiError, type ApiError } from '../errors.js'
import { latencyEstimate } from '../selection/budget.js'
import type { SelectionOutcome, SelectionRequest } from '../selection/selector.js'
import { alternativeView, budgetView, candidateView } from '../selection/views.js'
import type { Servable } from '../cascade/candidates.js'

/** The coded error for an outcome that serves no model; undefined when a model was selected. */
export function selectionRefusal(
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
