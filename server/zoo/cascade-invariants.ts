/**
 * What the JSON Schema cannot say about the manifest's cascades (docs/zoo-contract.md,
 * "Cascades"): names are unique among models and cascades, stages name models of the zoo in
 * strictly increasing MFLOPs and share one input contract and label set (so the server feeds every
 * stage the same tensor), one threshold per stage but the last, and the figures are consistent
 * with the stages (worst = Σ stage MFLOPs; first stage ≤ expected ≤ worst; exit shares sum to 1).
 */
import type { Manifest, ModelManifest } from './manifest-schema.js'

/** MFLOPs are written rounded to 4 decimals; sums of rounded values may differ by this. */
const MFLOPS_SLACK = 1e-3
const FRACTION_SLACK = 1e-6

const sameInput = (a: ModelManifest, b: ModelManifest) =>
  JSON.stringify(a.input) === JSON.stringify(b.input) && JSON.stringify(a.labels) === JSON.stringify(b.labels)

function exitShareProblem(label: string, shares: number[], stages: number): string | undefined {
  if (shares.length !== stages) return `${label} has ${shares.length} values for ${stages} stages`
  const sum = shares.reduce((a, b) => a + b, 0)
  if (Math.abs(sum - 1) > FRACTION_SLACK) return `${label} sums to ${sum}, not 1`
  return undefined
}

export function cascadeProblems(manifest: Manifest): string[] {
  const problems: string[] = []
  const models = new Map(manifest.models.map((m) => [m.name, m]))
  const cascadeNames = new Set<string>()
  ;(manifest.cascades ?? []).forEach((cascade, i) => {
    const where = `cascades[${i}] (${cascade.name})`
    if (models.has(cascade.name)) problems.push(`${where}: name "${cascade.name}" is also a model's name`)
    if (cascadeNames.has(cascade.name)) problems.push(`${where}: duplicate cascade name "${cascade.name}"`)
    cascadeNames.add(cascade.name)
    const stages: ModelManifest[] = []
    for (const name of cascade.stages) {
      const model = models.get(name)
      if (model) stages.push(model)
      else problems.push(`${where}: stage "${name}" names no model of the zoo`)
    }
    if (cascade.thresholds.length !== cascade.stages.length - 1) {
      problems.push(
        `${where}: ${cascade.stages.length} stages need ${cascade.stages.length - 1} threshold(s), got ${cascade.thresholds.length}`,
      )
    }
    const exits = [
      exitShareProblem('heldOut.exitFractions', cascade.heldOut.exitFractions, cascade.stages.length),
      exitShareProblem('evaluation.exitFractions', cascade.evaluation.exitFractions, cascade.stages.length),
    ]
    for (const problem of exits) if (problem) problems.push(`${where}: ${problem}`)
    if (cascade.latencyMs && cascade.latencyMs.worst < cascade.latencyMs.expected) {
      problems.push(
        `${where}: latencyMs.worst ${cascade.latencyMs.worst} is below latencyMs.expected ${cascade.latencyMs.expected}`,
      )
    }
    if (stages.length !== cascade.stages.length) return
    const first = stages[0] as ModelManifest
    stages.forEach((stage, k) => {
      const previous = stages[k - 1]
      if (previous && stage.mflops <= previous.mflops) {
        problems.push(
          `${where}: stages must have strictly increasing MFLOPs ("${stage.name}" ${stage.mflops} after "${previous.name}" ${previous.mflops})`,
        )
      }
      if (k > 0 && !sameInput(first, stage)) {
        problems.push(
          `${where}: stage "${stage.name}" has another input contract or label set than "${first.name}"`,
        )
      }
    })
    const worst = stages.reduce((sum, s) => sum + s.mflops, 0)
    if (Math.abs(cascade.worstMflops - worst) > MFLOPS_SLACK) {
      problems.push(`${where}: worstMflops ${cascade.worstMflops} is not the stages' sum ${worst.toFixed(4)}`)
    }
    for (const key of ['expectedMflops', 'evaluation.meanMflops'] as const) {
      const value = key === 'expectedMflops' ? cascade.expectedMflops : cascade.evaluation.meanMflops
      if (value < first.mflops - MFLOPS_SLACK || value > worst + MFLOPS_SLACK) {
        problems.push(
          `${where}: ${key} ${value} is outside [${first.mflops}, ${worst.toFixed(4)}] (first stage … every stage)`,
        )
      }
    }
  })
  return problems
}
