/**
 * onnxruntime-node sessions of the models a set of cascades uses, as the batched stage runners of
 * server/cascade/dataset-evaluation.ts (shared by `zoo:validate` and `zoo:cascades`).
 */
import type { ExecutionProviderName, ModelEntry } from '../zoo/model-entry.js'
import type { StageRunner } from '../cascade/dataset-evaluation.js'
import ort, { type InferenceSession } from '../runtime/ort.js'
import { createSession } from '../runtime/session.js'

export interface StageSessions {
  runner: (name: string) => StageRunner
  session: (name: string) => InferenceSession
  release: () => Promise<void>
}

export async function openStageSessions(
  models: readonly ModelEntry[],
  names: Iterable<string>,
  provider: ExecutionProviderName,
  intraOpThreads: number,
): Promise<StageSessions> {
  const byName = new Map(models.map((m) => [m.name, m]))
  const sessions = new Map<string, InferenceSession>()
  const runners = new Map<string, StageRunner>()
  try {
    for (const name of new Set(names)) {
      const model = byName.get(name)
      if (!model) throw new Error(`no model named "${name}" in the zoo`)
      if (!model.ready)
        throw new Error(`model "${name}" is not ready: ${model.reason ?? 'file check failed'}`)
      const session = await createSession(model.path, { provider, intraOpThreads })
      sessions.set(name, session)
      const { channels, size } = model.input
      runners.set(name, {
        name,
        mflops: model.mflops,
        run: async (images, count) => {
          const tensor = new ort.Tensor('float32', images, [count, channels, size, size])
          const outputs = await session.run({ [model.input.name]: tensor })
          const output = outputs[session.outputNames[0] ?? '']
          if (!output) throw new Error(`model "${name}" returned no output`)
          return output.data as Float32Array
        },
      })
    }
  } catch (error) {
    await Promise.all([...sessions.values()].map((s) => s.release()))
    throw error
  }
  const lookup = <T>(map: Map<string, T>, name: string): T => {
    const value = map.get(name)
    if (value === undefined) throw new Error(`no session for model "${name}"`)
    return value
  }
  return {
    runner: (name) => lookup(runners, name),
    session: (name) => lookup(sessions, name),
    release: async () => {
      await Promise.all([...sessions.values()].map((s) => s.release()))
    },
  }
}
