/**
 * The judgement behind "retry" versus "relax the budget": a candidate whose only failed
 * constraint is latency, and whose latency on an idle server fits the budget, fails because of
 * the load alone. Selection flags an infeasible outcome with it (selector.ts); admission (admit.ts)
 * answers such an outcome 503 OVERLOADED or 504, never 422.
 */
import {
  idleLatencyEstimate,
  type Budget,
  type SelectableModel,
  type Violation,
} from '../selection/budget.js'

/** The part of a selection verdict the judgement reads (selector.ts's CandidateVerdict). */
export interface LatencyVerdict {
  model: SelectableModel
  considered: boolean
  accepted: boolean
  violations: readonly Pick<Violation, 'constraint'>[]
}

/**
 * Whether `verdict` fails on latency alone, and its latency on an idle server fits the budget.
 * Time the request already spent in the server is not counted: it waited because of the load,
 * so the same request sent again to an idle server would be served.
 */
export function failsOnlyUnderLoad(verdict: LatencyVerdict, budget: Budget): boolean {
  if (!verdict.considered || verdict.accepted || budget.maxLatencyMs === undefined) return false
  if (!verdict.violations.every((v) => v.constraint === 'maxLatencyMs')) return false
  const idle = idleLatencyEstimate(verdict.model)
  return idle !== null && idle <= budget.maxLatencyMs
}
