/**
 * Cascades as candidates of the one selection function (server/selection/selector.ts): a cascade
 * is selectable like a model, with these figures (docs/api.md, "Cascades"):
 *   mflops       its expectedMflops (mean over the held-out split) — what maxMflops compares;
 *   top1         its measured top-1 on the evaluation split — what minTop1 compares;
 *   latency      the live predictions of ALL its stages summed (any request may need every stage)
 *                — what maxLatencyMs compares; on an idle server the stages' idle predictions summed;
 *   ready        every stage is ready.
 */
import type { SelectableModel } from '../selection/budget.js'
import type { CascadeManifest } from '../zoo/manifest-schema.js'
import type { ModelEntry } from '../zoo/model-entry.js'

export interface CascadeCandidate extends SelectableModel {
  cascade: CascadeManifest
  /** The stage models, in order, as listed (with live figures when they were asked for). */
  stages: ModelEntry[]
}

/** What a selection can serve: a model, or a cascade of models. */
export type Servable = ModelEntry | CascadeCandidate

export function isCascade(candidate: SelectableModel): candidate is CascadeCandidate {
  return 'cascade' in candidate
}

const sum = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) * 1000) / 1000

export function cascadeCandidate(cascade: CascadeManifest, models: readonly ModelEntry[]): CascadeCandidate {
  const stages: ModelEntry[] = []
  const problems: string[] = []
  for (const name of cascade.stages) {
    const model = models.find((m) => m.name === name)
    if (!model) problems.push(`stage ${name} is not in the zoo`)
    else {
      stages.push(model)
      if (!model.ready) problems.push(`stage ${name} is not ready${model.reason ? ` (${model.reason})` : ''}`)
    }
  }
  const candidate: CascadeCandidate = {
    name: cascade.name,
    mflops: cascade.expectedMflops,
    top1: cascade.top1,
    ready: problems.length === 0,
    cascade,
    stages,
  }
  if (problems.length > 0) candidate.reason = problems.join('; ')
  const measured = stages.map((s) => s.latencyMs)
  if (problems.length === 0 && measured.every((m) => m !== undefined)) {
    candidate.latencyMs = { p50: sum(measured.map((m) => m.p50)), p95: sum(measured.map((m) => m.p95)) }
  }
  const live = stages.map((s) => s.live)
  if (problems.length === 0 && live.every((l) => l !== undefined)) {
    candidate.live = {
      predictedLatencyMs: sum(live.map((l) => l.predictedLatencyMs)),
      idleLatencyMs: sum(live.map((l) => l.idleLatencyMs)),
      serviceMs: live[0]?.serviceMs ?? 0,
    }
  }
  return candidate
}

/** Every cascade of the zoo as a selection candidate, given the listed models. */
export function cascadeCandidates(
  cascades: readonly CascadeManifest[],
  models: readonly ModelEntry[],
): CascadeCandidate[] {
  return cascades.map((c) => cascadeCandidate(c, models))
}

/** Why the selected candidate's figures are what the budget was compared with (for explanations). */
export function cascadeNote(candidate: CascadeCandidate): string {
  const stages = candidate.cascade.stages.length
  return (
    ` (${candidate.name} is a cascade of ${candidate.cascade.stages.join(' → ')}: maxMflops is compared with its ` +
    `expected ${candidate.cascade.expectedMflops} MFLOPs (worst case ${candidate.cascade.worstMflops}), ` +
    `maxLatencyMs with the summed live predictions of all ${stages} stages, minTop1 with its measured top-1)`
  )
}
