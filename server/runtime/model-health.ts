/**
 * Run-time health of the models of one generation. A model whose session.run fails (onnxruntime
 * throws on valid input: a broken graph, a provider fault, exhausted device memory) is marked not
 * ready with the reason, so selection routes around it and explicit requests get MODEL_NOT_READY;
 * the requests queued for it fail at once rather than run into the same fault. A probe — one
 * synthetic batch-1 run — then retries it after PROBE_DELAY, doubling up to a minute while it keeps
 * failing, and puts it back into service as soon as one succeeds.
 */
import { ApiError } from '../errors.js'
import type { ModelEntry } from '../zoo/model-entry.js'
import type { GenerationRuntime } from './generation-runtime.js'
import { syntheticInput } from './latency.js'

export interface HealthLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

export const MAX_PROBE_DELAY_MS = 60_000

export class ModelHealth {
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private readonly delays = new Map<string, number>()
  private closed = false

  constructor(
    private readonly models: readonly ModelEntry[],
    private readonly runtime: () => GenerationRuntime | undefined,
    private readonly log: HealthLog,
    private readonly firstProbeDelayMs: number,
  ) {}

  /** session.run of `name` failed with `message`. */
  modelFailed(name: string, message: string): void {
    const model = this.models.find((m) => m.name === name)
    if (!model || this.closed) return
    if (model.ready) {
      model.ready = false
      model.reason = `failed at run time: ${message}`
      this.log.warn({ model: name, reason: model.reason }, `model ${name} taken out of service`)
      this.runtime()?.rejectQueued(
        name,
        new ApiError('MODEL_NOT_READY', `model ${name} is not ready: ${model.reason}`, {
          model: name,
          reason: model.reason,
        }),
      )
    }
    this.scheduleProbe(name)
  }

  private scheduleProbe(name: string): void {
    if (this.closed || this.timers.has(name)) return
    const delay = this.delays.get(name) ?? this.firstProbeDelayMs
    this.delays.set(name, Math.min(MAX_PROBE_DELAY_MS, delay * 2))
    const timer = setTimeout(() => {
      this.timers.delete(name)
      void this.probe(name)
    }, delay)
    timer.unref()
    this.timers.set(name, timer)
  }

  private async probe(name: string): Promise<void> {
    const model = this.models.find((m) => m.name === name)
    const runtime = this.runtime()
    if (!model || !runtime || this.closed) return
    const { channels, size } = model.input
    try {
      await runtime.run(name, syntheticInput(channels * size * size), [1, channels, size, size])
    } catch (error) {
      // A failing run reports itself through modelFailed(), which schedules the next probe; any
      // other refusal (e.g. the runtime closing) ends probing.
      if (!this.timers.has(name) && !this.isClosed() && !model.ready) this.scheduleProbe(name)
      this.log.info({ model: name, err: error }, `model ${name} still failing`)
      return
    }
    if (this.isClosed()) return
    model.ready = true
    delete model.reason
    this.delays.delete(name)
    this.log.info({ model: name }, `model ${name} back in service`)
  }

  /** Read through a method: `closed` can change while a probe awaits. */
  private isClosed(): boolean {
    return this.closed
  }

  /** Stops probing (the generation is closing). */
  close(): void {
    this.closed = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }
}
