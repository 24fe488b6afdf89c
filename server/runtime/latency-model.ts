/**
 * Live service-time model of one served model (on its execution provider), from which the
 * scheduler predicts the latency a request would see now.
 *
 * - Run time at batch size b: the warm-up profile base(b) — measured at the powers of two up to
 *   the model's maximum batch, made non-decreasing in b, linearly interpolated between sizes and
 *   extrapolated per row beyond the largest — times a contention factor, an exponentially
 *   weighted moving average (EWMA) of observed/base over every batch that runs, shared by all
 *   models of an execution provider (Contention).
 *   One factor for all sizes means a batch of 16 under load also updates what a batch of 1 would
 *   take, and a size measured at warm-up but not seen since never goes stale.
 * - Preprocessing per image (decode + resample + normalise, in the worker): an EWMA of observed
 *   per-image time, seeded by a synthetic image at start-up.
 * - Spread: an EWMA of the absolute deviation of each observation from the running mean, so a
 *   budget check can use a cautious estimate (mean + DEVIATIONS deviations) where a miss matters,
 *   while sums over queues (where deviations average out) and definite-miss checks use the mean.
 * - Robustness (SpreadEstimate): one outlier — a 36-megapixel image among thumbnails, a batch
 *   stalled by the OS — is clipped before it enters the averages, and an estimate that stops
 *   receiving observations relaxes back to its seed. Without both, a burst of huge images can raise
 *   every prediction above every budget; nothing is admitted any more, so nothing is measured that
 *   could lower them again (RELIABILITY.md, bug 8). Relaxing turns that lock into periodic
 *   probing: a request is admitted once the estimate has decayed, and its measurement says whether
 *   the slowdown is real.
 * Pure arithmetic: the scheduler feeds observations and asks questions.
 */

/** Weight of a new observation in every moving average (≈ the last 10 observations dominate). */
export const EWMA_WEIGHT = 0.2

/**
 * How many mean deviations above the mean a budget check allows for (as TCP's retransmission timer
 * does with round-trip times): run times on a busy CPU have a long tail, and "predicted to meet
 * the budget" should hold for nearly every request, not half of them.
 */
export const DEVIATIONS = 3

/**
 * Time constant with which an estimate that receives no observations returns to its seed, ms.
 * Long against the gaps between observations under traffic (milliseconds), short against an
 * outage: a wrongly raised estimate lets traffic through again within seconds.
 */
export const RELAX_TAU_MS = 5_000

/**
 * An observation beyond mean + DEVIATIONS × max(deviation, CLIP_FLOOR × mean) is clipped to that
 * bound. The floor keeps a steady, tight series (deviation ≈ 0) adaptable: a real shift still
 * moves the mean by ≥ EWMA_WEIGHT × DEVIATIONS × CLIP_FLOOR (15 %) per observation.
 */
export const CLIP_FLOOR = 0.25

/**
 * A moving mean and mean absolute deviation (both EWMAs) that clips upward outliers and relaxes
 * toward `seed` (deviation toward 0) with time constant RELAX_TAU_MS while nothing is observed.
 */
export class SpreadEstimate {
  private mean: number
  private spread = 0
  private observedAt: number
  private count = 0

  constructor(
    private readonly seed: number,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.mean = seed
    this.observedAt = clock()
  }

  /** Share of the distance from the seed still left after the time since the last observation. */
  private remaining(): number {
    return Math.exp(-Math.max(0, this.clock() - this.observedAt) / RELAX_TAU_MS)
  }

  get value(): number {
    return this.seed + (this.mean - this.seed) * this.remaining()
  }

  get deviation(): number {
    return this.spread * this.remaining()
  }

  /** Mean plus DEVIATIONS mean deviations. */
  get cautious(): number {
    return this.value + DEVIATIONS * this.deviation
  }

  /** Observations since the seed. */
  get samples(): number {
    return this.count
  }

  observe(sample: number): void {
    if (!Number.isFinite(sample) || sample < 0) return
    const mean = this.value
    const spread = this.deviation
    // The first observation replaces the seed unclipped: the seed may be a guess, not a mean.
    const bound = this.count === 0 ? sample : mean + DEVIATIONS * Math.max(spread, CLIP_FLOOR * mean)
    const clipped = Math.min(sample, bound)
    this.spread = spread + EWMA_WEIGHT * (Math.abs(clipped - mean) - spread)
    this.mean = mean + EWMA_WEIGHT * (clipped - mean)
    this.observedAt = this.clock()
    this.count++
  }
}

/**
 * How much slower than at warm-up runs are now (observed / profiled run time, as an EWMA) and how
 * much that ratio scatters. Shared by every model on one execution provider: on a CPU the ratio
 * is mostly a property of the machine (other load, thermal state), so a batch of any model
 * updates what every model's next run is expected to take — a model that has not run for a while
 * does not keep a stale, optimistic estimate.
 */
export class Contention {
  private readonly ratio: SpreadEstimate

  constructor(clock?: () => number) {
    this.ratio = new SpreadEstimate(1, clock)
  }

  observe(ratio: number): void {
    this.ratio.observe(ratio)
  }

  /** Current run time ÷ warm-up profile. */
  get factor(): number {
    return this.ratio.value
  }

  /** Mean plus DEVIATIONS mean deviations, relative to the mean. */
  get caution(): number {
    const factor = this.ratio.value
    return factor > 0 ? this.ratio.cautious / factor : 1
  }
}

export interface BatchTiming {
  batchSize: number
  /** Predicted session.run time of a batch of this size, ms. */
  ms: number
}

export class ModelLatency {
  /** Warm-up run time per batch size, ascending by size. */
  private readonly base: { rows: number; ms: number }[]
  private readonly preprocess: SpreadEstimate
  private readonly preprocessSeedMs: number
  private runs = 0

  /**
   * @param profile warm-up run time (ms) per batch size; must include batch size 1.
   * @param preprocessSeedMs per-image preprocessing estimate before any image was seen.
   */
  constructor(
    profile: ReadonlyMap<number, number>,
    preprocessSeedMs: number,
    private readonly contention: Contention = new Contention(),
  ) {
    this.base = [...profile.entries()]
      .filter(([rows, ms]) => rows >= 1 && Number.isFinite(ms) && ms >= 0)
      .map(([rows, ms]) => ({ rows, ms }))
      .sort((a, b) => a.rows - b.rows)
    if (this.base[0]?.rows !== 1) throw new Error('a latency profile needs the batch-1 time')
    // A bigger batch never takes less time than a smaller one: a noisy warm-up measurement that
    // says otherwise is raised to its predecessor rather than trusted.
    for (let i = 1; i < this.base.length; i++) {
      const previous = this.base[i - 1] as { rows: number; ms: number }
      const current = this.base[i] as { rows: number; ms: number }
      if (current.ms < previous.ms) current.ms = previous.ms
    }
    this.preprocessSeedMs = Math.max(0, preprocessSeedMs)
    this.preprocess = new SpreadEstimate(this.preprocessSeedMs)
  }

  /** Warm-up time at `rows`: interpolated between profiled sizes, extrapolated per row beyond. */
  private baseMs(rows: number): number {
    const base = this.base
    const first = base[0] as { rows: number; ms: number }
    if (rows <= first.rows) return first.ms
    for (let i = 1; i < base.length; i++) {
      const hi = base[i] as { rows: number; ms: number }
      if (rows <= hi.rows) {
        const lo = base[i - 1] as { rows: number; ms: number }
        return lo.ms + ((hi.ms - lo.ms) * (rows - lo.rows)) / (hi.rows - lo.rows)
      }
    }
    const last = base[base.length - 1] as { rows: number; ms: number }
    return (last.ms / last.rows) * rows
  }

  /** Predicted session.run time for a batch of `rows` rows under current conditions, ms. */
  runMs(rows: number): number {
    return this.baseMs(Math.max(1, rows)) * this.contention.factor
  }

  /** Predicted per-image preprocessing time, ms. */
  preprocessMs(): number {
    return this.preprocess.value
  }

  /**
   * Per-image preprocessing on an unloaded server: the start-up measurement, which load cannot
   * inflate. Observations under load carry the CPU contention of the moment (and their spread
   * the cautious figure's), so an "on an idle server" figure built from them would call a budget
   * infeasible that an idle server meets — admission would answer 422 where it must say retry.
   */
  idlePreprocessMs(): number {
    return this.preprocessSeedMs
  }

  observeRun(rows: number, ms: number): void {
    const base = this.baseMs(Math.max(1, rows))
    if (base > 0 && Number.isFinite(ms) && ms >= 0) {
      this.contention.observe(ms / base)
      this.runs++
    }
  }

  observePreprocess(perImageMs: number): void {
    this.preprocess.observe(perImageMs)
  }

  /**
   * Factor from a mean estimate to a cautious one (mean + DEVIATIONS mean deviations), from the
   * spread of observed run times relative to their mean; 1 before anything was observed.
   */
  get cautionFactor(): number {
    return this.contention.caution
  }

  /** Per-image preprocessing time allowing for its spread (mean + DEVIATIONS mean deviations), ms. */
  cautiousPreprocessMs(): number {
    return this.preprocess.cautious
  }

  /** Batches observed since start-up. */
  get observedBatches(): number {
    return this.runs
  }

  /** Ratio of the current run-time estimate to the warm-up profile (1 = as measured at start). */
  get contentionFactor(): number {
    return this.contention.factor
  }

  /** Predicted run time at each profiled batch size. */
  table(): BatchTiming[] {
    return this.base.map(({ rows }) => ({ batchSize: rows, ms: this.runMs(rows) }))
  }
}

/** Utilisation a batch size must bring the load under before the queue stops growing. */
const STEADY_UTILIZATION = 0.8

/** Requests per millisecond, as an exponentially decaying count over a time constant `tauMs`. */
export class RateMeter {
  private value = 0
  private last = 0

  constructor(private readonly tauMs = 1000) {}

  mark(now: number): void {
    this.value = this.rateAt(now) + 1 / this.tauMs
    this.last = now
  }

  rateAt(now: number): number {
    return this.value * Math.exp(-Math.max(0, now - this.last) / this.tauMs)
  }
}

export interface SteadyState {
  /** Batch size at which batches keep pace with the arrivals (capped at the model's maximum). */
  batchSize: number
  /** Fraction of the workers' time this model would need at that size (≥ 1: it cannot keep up). */
  utilization: number
  /** Mean latency of a request in that regime (M/D/1-like with batch service), ms. */
  latencyMs: number
}

/**
 * What serving every arrival at `ratePerMs` with `latency`'s model would settle to: dynamic
 * batching grows the batch until batches keep pace with arrivals with some headroom (the
 * smallest b with λ · run(b) / (workers · b) ≤ 0.8, at most the model's maximum batch), then the
 * queueing delay at that utilisation u is
 * that of a deterministic server, run(b) · (2 − u) / (2 (1 − u)), with u capped at 0.99 so an
 * overloaded model gets a large but finite figure. Load-aware selection uses it next to the
 * current queue: a model whose capacity the arrival rate is about to exceed is ruled out before
 * its queue has grown, not after.
 */
export function steadyState(
  latency: ModelLatency,
  ratePerMs: number,
  workers: number,
  maxBatch: number,
): SteadyState {
  const lanes = Math.max(1, workers)
  const load = (rows: number) => (ratePerMs * latency.runMs(rows)) / (lanes * rows)
  let batch = 1
  // The smallest batch that leaves headroom (utilisation ≤ TARGET): what a queue settles to.
  while (batch < maxBatch && load(batch) > STEADY_UTILIZATION) {
    const needed = Math.ceil((ratePerMs * latency.runMs(batch)) / (lanes * STEADY_UTILIZATION))
    batch = Math.min(maxBatch, Math.max(batch + 1, needed))
  }
  const run = latency.runMs(batch)
  const utilization = load(batch)
  const u = Math.min(0.99, utilization)
  return { batchSize: batch, utilization, latencyMs: (run * (2 - u)) / (2 * (1 - u)) }
}
