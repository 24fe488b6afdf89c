/**
 * Latency measurement on this host: percentiles of timed batch-1 runs, so the latency budget of a
 * request is judged against this machine and this execution provider, not the training host.
 */
import type { MeasuredLatency } from '../zoo/model-entry.js'

/** Nearest-rank percentile (p in (0, 100]) of unsorted samples; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)))
  return sorted[rank - 1] ?? Number.NaN
}

const round = (ms: number) => Math.round(ms * 1000) / 1000

export function summarise(samples: readonly number[]): MeasuredLatency {
  return { p50: round(percentile(samples, 50)), p95: round(percentile(samples, 95)), samples: samples.length }
}

/**
 * Deterministic input in [-1, 1) (a linear congruential sequence): real-looking values so no
 * kernel takes a zero shortcut, identical across runs so measurements are comparable.
 */
export function syntheticInput(length: number, seed = 12345): Float32Array {
  const data = new Float32Array(length)
  let state = seed >>> 0
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    data[i] = state / 2 ** 31 - 1
  }
  return data
}

/** Runs `runOnce` `runs` times back to back and summarises the inference times it reports. */
export async function measureLatency(runs: number, runOnce: () => Promise<number>): Promise<MeasuredLatency> {
  const samples: number[] = []
  for (let i = 0; i < runs; i++) samples.push(await runOnce())
  return summarise(samples)
}
