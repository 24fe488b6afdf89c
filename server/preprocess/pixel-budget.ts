/**
 * How many pixels may be decoding at once in one thread. A decode holds the whole image in memory
 * (3–6 bytes a pixel while libvips converts it), and the upload that declares 36 megapixels can be
 * a few hundred bytes: without a bound, 48 such requests at once took the server to 4.9 GB RSS.
 * With it, one thread decodes at most `limit` pixels at a time (MAX_IMAGE_PIXELS: one maximal
 * image, or many small ones together), and later requests wait their turn in arrival order.
 *
 * Waiting requests hold only their compressed bytes (at most MAX_BODY_BYTES each); how many may
 * wait is bounded by the request queues in front of the decoder.
 */
export class PixelBudget {
  private inUse = 0
  private readonly waiting: { pixels: number; limit: number; start: () => void }[] = []

  /** Pixels being decoded now (for tests and diagnostics). */
  get pixelsInUse(): number {
    return this.inUse
  }

  /** Requests waiting for their turn. */
  get queued(): number {
    return this.waiting.length
  }

  /**
   * Resolves once `pixels` fit within `limit` next to what is decoding (an image alone always
   * fits: the caller has already refused images over the limit), with the function that gives
   * them back — call it once the decode has finished or failed.
   */
  acquire(pixels: number, limit: number): Promise<() => void> {
    if (this.waiting.length === 0 && this.fits(pixels, limit)) return Promise.resolve(this.reserve(pixels))
    return new Promise((resolve) => {
      this.waiting.push({
        pixels,
        limit,
        start: () => {
          resolve(this.reserve(pixels))
        },
      })
    })
  }

  private fits(pixels: number, limit: number): boolean {
    return this.inUse === 0 || this.inUse + pixels <= limit
  }

  private reserve(pixels: number): () => void {
    this.inUse += pixels
    let released = false
    return () => {
      if (released) return
      released = true
      this.inUse -= pixels
      this.admit()
    }
  }

  /** Starts waiting requests in arrival order while the head fits (no overtaking: no starvation). */
  private admit(): void {
    for (let head = this.waiting[0]; head && this.fits(head.pixels, head.limit); head = this.waiting[0]) {
      this.waiting.shift()
      head.start()
    }
  }
}
