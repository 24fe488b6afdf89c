/**
 * The one selection every route calls — POST /v1/classify, POST /v1/select (and so the web page),
 * /v2 infer on a named model, a cascade or `alphanet-auto`, and gRPC ModelInfer: request fields →
 * SelectionRequest → the zoo's models and cascades as candidates, with live figures where the
 * decision needs them → the pure selector (selector.ts) → an outcome, and admission's refusal
 * (server/admission/admit.ts) for an outcome that serves nothing. A cascade competes with the models under a budget by the figures
 * server/cascade/candidates.ts documents; the explanation of a selected cascade says which figure
 * each budget key was compared with.
 */
import { admit } from '../admission/admit.js'
import type { ApiError } from '../errors.js'
import { apiError } from '../errors.js'
import type { ZooView } from '../runtime/types.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { cascadeCandidates, cascadeNote, isCascade, type Servable } from '../cascade/candidates.js'
import { hasBudget, type Budget, type OnInfeasible } from './budget.js'
import { selectModel, type Selected, type SelectionOutcome, type SelectionRequest } from './selector.js'

export type { Servable } from '../cascade/candidates.js'

/** The request fields that drive a selection (a /v1 query or body, /v2 `parameters`). */
export interface SelectionFields {
  maxMflops?: number
  maxLatencyMs?: number
  minTop1?: number
  model?: string
  onInfeasible?: OnInfeasible
}

export function selectionRequest(fields: SelectionFields, defaultModel: string): SelectionRequest {
  const budget: Budget = {}
  if (fields.maxMflops !== undefined) budget.maxMflops = fields.maxMflops
  if (fields.maxLatencyMs !== undefined) budget.maxLatencyMs = fields.maxLatencyMs
  if (fields.minTop1 !== undefined) budget.minTop1 = fields.minTop1
  const request: SelectionRequest = { budget, onInfeasible: fields.onInfeasible ?? 'reject' }
  if (fields.model !== undefined) request.model = fields.model
  if (defaultModel !== '') request.defaultModel = defaultModel
  return request
}

/**
 * Which model needs live figures (a prediction under the current load), or undefined for all.
 * All, when a budget is judged across the models or a cascade (whose latency sums its stages') is
 * named; otherwise only the one model that will serve — the named one, else the default.
 */
export function liveFor(zoo: ZooView, selection: SelectionRequest): string | undefined {
  const named = selection.model
  if (named !== undefined && zoo.cascades().some((c) => c.name === named)) return undefined
  return named ?? (hasBudget(selection.budget) ? undefined : selection.defaultModel)
}

/** The model whose input contract and labels serve the request (a cascade's: its first stage). */
export function contractModel(servable: Servable): ModelEntry {
  if (!isCascade(servable)) return servable
  const first = servable.stages[0]
  if (!first) throw new Error(`cascade ${servable.name} has no stages`)
  return first
}

/** Models (with live figures where the decision needs them) and cascades, as candidates. */
export function servables(zoo: ZooView, selection: SelectionRequest): Servable[] {
  const live = liveFor(zoo, selection)
  const models = zoo.list(live === undefined ? {} : { liveFor: live })
  return [...models, ...cascadeCandidates(zoo.cascades(), models)]
}

export interface ChoiceRequest {
  fields: SelectionFields
  /** Time the request has already spent in the server, ms (a latency budget counts from arrival). */
  elapsedMs?: number
  /**
   * Only candidates whose input contract passes (/v2 `alphanet-auto`: the models and cascades that
   * accept the request's tensor). An explicitly named model is never filtered.
   */
  accepts?: (contract: ModelEntry) => boolean
}

export interface Choice {
  selection: SelectionRequest
  outcome: SelectionOutcome<Servable>
  /** The catalogue error to answer when the outcome serves nothing; undefined when selected. */
  error: ApiError | undefined
}

/** The selection for one request, against the zoo as it stands now. */
export function choose(zoo: ZooView, request: ChoiceRequest): Choice {
  const selection = selectionRequest(request.fields, zoo.defaultModelName())
  if (request.elapsedMs !== undefined) selection.elapsedMs = request.elapsedMs
  let candidates = servables(zoo, selection)
  const { accepts } = request
  if (accepts && selection.model === undefined) {
    candidates = candidates.filter((c) => {
      const contract = isCascade(c) ? c.stages[0] : c
      return contract !== undefined && accepts(contract)
    })
  }
  let outcome = selectModel(candidates, selection)
  if (outcome.kind === 'selected' && isCascade(outcome.model)) {
    outcome = { ...outcome, explanation: outcome.explanation + cascadeNote(outcome.model) }
  }
  return { selection, outcome, error: admit({ stage: 'selection', outcome, request: selection }) }
}

/** choose(), for a route that serves: the selected outcome, or its catalogue error thrown. */
export function chooseOrThrow(
  zoo: ZooView,
  request: ChoiceRequest,
): { selection: SelectionRequest; outcome: Selected<Servable> } {
  const { selection, outcome, error } = choose(zoo, request)
  if (error) throw error
  if (outcome.kind !== 'selected') throw apiError('INTERNAL_ERROR', 'selection produced no model')
  return { selection, outcome }
}
