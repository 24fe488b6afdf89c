/**
 * Test-only fault injection (FAULT_INJECTION): which of the next batches carry a fault for the
 * inference worker to act out (throw, crash, hang), per model or for any model.
 */
import type { WorkerFault } from './worker-protocol.js'

export class FaultPlan {
  private readonly armed: { model: string | undefined; fault: WorkerFault; remaining: number }[] = []

  /** The next `count` batches (of `model`, or of any model) carry `fault`. */
  arm(fault: WorkerFault, model: string | undefined, count: number): void {
    this.armed.push({ model, fault, remaining: count })
  }

  disarm(): void {
    this.armed.length = 0
  }

  /** The fault a batch of `model` carries, if one is armed (counted as used). */
  take(model: string): WorkerFault | undefined {
    const index = this.armed.findIndex((f) => f.model === undefined || f.model === model)
    const armed = this.armed[index]
    if (!armed) return undefined
    if (--armed.remaining <= 0) this.armed.splice(index, 1)
    return armed.fault
  }
}
