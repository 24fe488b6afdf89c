/**
 * A cascade as an Open Inference Protocol model (/v2 REST and gRPC): it is addressed by its name,
 * its metadata is its first stage's input contract and labels (every stage shares them), and it
 * is ready when every stage is.
 */
import type { ZooView } from '../runtime/types.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import { cascadeCandidate } from './candidates.js'

/** The model-shaped view of the cascade `name` (name, expected MFLOPs, top-1, readiness; the first stage's input), or undefined. */
export function cascadeModelView(zoo: ZooView, name: string): ModelEntry | undefined {
  const cascade = zoo.cascades().find((c) => c.name === name)
  if (!cascade) return undefined
  const candidate = cascadeCandidate(cascade, zoo.list({ liveFor: '' }))
  const first = candidate.stages[0]
  if (!first) return undefined
  const view: ModelEntry = {
    ...first,
    name: cascade.name,
    mflops: cascade.expectedMflops,
    top1: cascade.top1,
    ready: candidate.ready,
  }
  if (candidate.reason !== undefined) view.reason = candidate.reason
  else delete view.reason
  return view
}
