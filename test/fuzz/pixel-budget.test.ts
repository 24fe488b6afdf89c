/**
 * Bounded decoding memory (server/preprocess/pixel-budget.ts), regression for: 48 concurrent
 * 495-byte JPEGs declaring 6000×6000 took the server to 4.9 GB RSS (0.7 GB with the budget).
 * Unit behaviour of the budget, then decodeImage under a burst of tiny "bombs" within the limit.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isApiError } from '../../server/errors.js'
import { decodeImage, decodeRate, decodingPixels } from '../../server/preprocess/decode.js'
import { DecodeRate, RATE_MIN_PIXELS } from '../../server/preprocess/decode-rate.js'
import { PixelBudget } from '../../server/preprocess/pixel-budget.js'
import { jpegDeclaring } from './corpus.js'

const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('PixelBudget', () => {
  it('admits within the limit, queues beyond it, in arrival order without overtaking', async () => {
    const budget = new PixelBudget()
    const order: string[] = []
    const a = await budget.acquire(60, 100)
    const b = budget.acquire(50, 100).then((release) => (order.push('b'), release))
    const c = budget.acquire(10, 100).then((release) => (order.push('c'), release))
    await tick()
    // c would fit next to a, but b came first: no overtaking (no starvation of big images).
    assert.deepEqual(order, [])
    assert.equal(budget.queued, 2)
    a()
    const releaseB = await b
    const releaseC = await c
    assert.deepEqual(order, ['b', 'c'])
    assert.equal(budget.pixelsInUse, 60)
    releaseB()
    releaseB() // idempotent
    assert.equal(budget.pixelsInUse, 10)
    releaseC()
    assert.equal(budget.pixelsInUse, 0)
  })

  it('an image as large as the limit runs alone; one over it (never passed by decode.ts) too', async () => {
    const budget = new PixelBudget()
    const big = await budget.acquire(150, 100)
    assert.equal(budget.pixelsInUse, 150)
    let small = false
    const pending = budget.acquire(1, 100).then((release) => ((small = true), release))
    await tick()
    assert.equal(small, false)
    big()
    ;(await pending)()
    assert.equal(small, true)
  })
})

describe('decodeImage under a burst of small files declaring large images', () => {
  it('never has more than MAX_IMAGE_PIXELS decoding at once; memory stays bounded', async () => {
    const maxPixels = 10_000_000
    const bomb = await jpegDeclaring(3000, 3000) // ~500 bytes declaring 9 MP
    let peakPixels = 0
    let peakQueued = 0
    const rssBefore = process.memoryUsage().rss
    let peakRss = rssBefore
    const sampler = setInterval(() => {
      peakPixels = Math.max(peakPixels, decodingPixels.pixelsInUse)
      peakQueued = Math.max(peakQueued, decodingPixels.queued)
      peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }, 5)
    try {
      const decoded = await Promise.all(Array.from({ length: 8 }, () => decodeImage(bomb, { maxPixels })))
      for (const image of decoded) assert.deepEqual([image.width, image.height], [3000, 3000])
    } finally {
      clearInterval(sampler)
    }
    assert.ok(peakPixels <= maxPixels, `${peakPixels} pixels decoding at once`)
    assert.ok(peakQueued >= 1, 'later decodes waited their turn')
    assert.equal(decodingPixels.pixelsInUse, 0)
    // Unbounded, the 8 decodes alone need > 400 MB at once.
    const grewMb = (peakRss - rssBefore) / 2 ** 20
    assert.ok(grewMb < 350, `RSS grew by ${Math.round(grewMb)} MB`)
  })
})

describe('decodeImage with a deadline', () => {
  it('drops an image whose deadline passed while it waited to be decoded: DEADLINE_EXCEEDED, no decode', async () => {
    const maxPixels = 10_000_000
    const bomb = await jpegDeclaring(3000, 3000)
    const now = () => performance.timeOrigin + performance.now()
    // Occupy the whole budget, as a maximal image being decoded would; the image then waits for
    // its turn, and its deadline passes meanwhile.
    const occupied = await decodingPixels.acquire(maxPixels, maxPixels)
    // Enough time to pass the header check (once this thread knows its decode rate, an image that
    // cannot be decoded in time is refused before it queues — the next test), not to wait its turn.
    const allowMs = (decodeRate.predictMs(3000 * 3000) ?? 0) + 50
    const late = decodeImage(bomb, { maxPixels, deadline: now() + allowMs })
    await new Promise((resolve) => setTimeout(resolve, allowMs + 100))
    assert.equal(decodingPixels.queued, 1)
    occupied()
    await assert.rejects(late, (error: unknown) => {
      assert.ok(isApiError(error))
      assert.equal(error.code, 'DEADLINE_EXCEEDED')
      assert.ok((error.details.remainingMs as number) < 0)
      return true
    })
    assert.equal(decodingPixels.pixelsInUse, 0)
    // A deadline still ahead decodes normally.
    const decoded = await decodeImage(bomb, { maxPixels, deadline: now() + 60_000 })
    assert.equal(decoded.width, 3000)
  })

  it('refuses from the header a large image it cannot decode before the deadline', async () => {
    const maxPixels = 40_000_000
    const now = () => performance.timeOrigin + performance.now()
    // Teach this thread's rate with one decode, then measure what a 6000×6000 image would take.
    await decodeImage(await jpegDeclaring(2000, 2000), { maxPixels })
    const bomb = await jpegDeclaring(6000, 6000)
    const neededMs = decodeRate.predictMs(36_000_000)
    assert.ok(neededMs !== undefined && neededMs > 5, `predicted ${neededMs} ms`)
    const begin = performance.now()
    await assert.rejects(
      decodeImage(bomb, { maxPixels, deadline: now() + neededMs / 4 }),
      (error: unknown) => {
        assert.ok(isApiError(error))
        assert.equal(error.code, 'DEADLINE_EXCEEDED')
        assert.match(error.message, /decoding this 6000×6000 image takes ≈\d+ ms here/)
        assert.ok((error.details.remainingMs as number) >= 0)
        return true
      },
    )
    assert.ok(performance.now() - begin < neededMs / 2, 'refused without decoding')
    // With time enough it decodes.
    const decoded = await decodeImage(bomb, { maxPixels, deadline: now() + 60_000 })
    assert.equal(decoded.width, 6000)
  })
})

describe('DecodeRate', () => {
  it('predicts large images only, and only once it has seen one', () => {
    const rate = new DecodeRate()
    assert.equal(rate.predictMs(10 * RATE_MIN_PIXELS), undefined)
    rate.observe(RATE_MIN_PIXELS / 2, 1000)
    assert.equal(rate.predictMs(10 * RATE_MIN_PIXELS), undefined, 'small images teach nothing')
    rate.observe(2 * RATE_MIN_PIXELS, 20)
    assert.ok(Math.abs((rate.predictMs(10 * RATE_MIN_PIXELS) ?? 0) - 100) < 1e-9)
    assert.equal(rate.predictMs(RATE_MIN_PIXELS - 1), undefined)
  })
})
