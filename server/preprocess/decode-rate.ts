/**
 * How long this thread takes to decode a pixel, learned from the large images it has decoded, so a
 * large image that cannot be decoded before its request's deadline is refused from its header
 * (DEADLINE_EXCEEDED) instead of decoded for no one: small uploads declaring tens of megapixels
 * (within MAX_IMAGE_PIXELS) would keep the preprocessing stage busy with decodes whose requests
 * are out of time before they finish, and ordinary requests queued behind them would miss their
 * deadlines too (RELIABILITY.md, bug 11).
 *
 * Only images of at least RATE_MIN_PIXELS teach and use the rate: below that, fixed costs
 * dominate and a per-pixel rate would say nothing. Until the first such image has been decoded
 * there is no estimate and nothing is refused on it.
 */
import { SpreadEstimate } from '../runtime/latency-model.js'

export const RATE_MIN_PIXELS = 1_000_000

export class DecodeRate {
  private msPerPixel: SpreadEstimate | undefined

  observe(pixels: number, ms: number): void {
    if (pixels < RATE_MIN_PIXELS || !Number.isFinite(ms) || ms < 0) return
    const rate = ms / pixels
    if (this.msPerPixel) this.msPerPixel.observe(rate)
    else this.msPerPixel = new SpreadEstimate(rate)
  }

  /** Expected decode time of an image of `pixels` pixels, ms; undefined when it cannot say. */
  predictMs(pixels: number): number | undefined {
    if (pixels < RATE_MIN_PIXELS || !this.msPerPixel) return undefined
    return this.msPerPixel.value * pixels
  }
}
