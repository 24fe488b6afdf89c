/**
 * The one selection (server/selection/selector.ts) over the zoo's models AND its cascades: every
 * route that picks what serves a request (/v1/classify, /v1/select, /v2 infer) calls this, so a
 * cascade can be named like a model and competes with the models under a budget by the figures
 * candidates.ts documents. The explanation of a selected cascade says which figure each budget
 * key was compared with.
 */
import type { ZooView } from '../runtime/types.js'
import { hasBudget } from '../selection/budget.js'
import { selectModel, type SelectionOutcome, type SelectionRequest } from '../selection/selector.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { cascadeCandidates, cascadeNote, isCascade, type CascadeCandidate } from './candidates.js'

export type Servable = ModelEntry | CascadeCandidate

/** Models (with live figures where the decision needs them) and cascades, as selection candidates. */
export function servables(zoo: ZooView, selection: SelectionRequest): Servable[] {
  const cascades = zoo.cascades()
  const named = selection.model
  const namesCascade = named !== undefined && cascades.some((c) => c.name === named)
  // Live predictions are needed for every model when a budget is judged across them or a cascade
  // (whose latency sums its stages') is named; otherwise for the one model that will serve.
  const liveFor = namesCascade
    ? undefined
    : (named ?? (hasBudget(selection.budget) ? undefined : selection.defaultModel))
  const models = zoo.list(liveFor === undefined ? {} : { liveFor })
  return [...models, ...cascadeCandidates(cascades, models)]
}

export function selectServable(zoo: ZooView, selection: SelectionRequest): SelectionOutcome<Servable> {
  const outcome = selectModel(servables(zoo, selection), selection)
  if (outcome.kind === 'selected' && isCascade(outcome.model)) {
    return { ...outcome, explanation: outcome.explanation + cascadeNote(outcome.model) }
  }
  return outcome
}

/** The model whose input contract and labels serve the request (a cascade's: its first stage). */
export function contractModel(servable: Servable): ModelEntry {
  if (!isCascade(servable)) return servable
  const first = servable.stages[0]
  if (!first) throw new Error(`cascade ${servable.name} has no stages`)
  return first
}
