/**
 * The benchmark's test image: a deterministic photo-like JPEG (smooth colour gradients, edges and
 * grain, so the codec and the resampler do real work) of a chosen size.
 */
import sharp from 'sharp'

export async function syntheticPhoto(width: number, height: number, seed = 7): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3)
  let state = seed >>> 0
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      const grain = (state >>> 24) / 16 - 8
      const disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (Math.min(width, height) / 3) ** 2
      const i = (y * width + x) * 3
      data[i] = Math.max(0, Math.min(255, (255 * x) / width + grain + (disc ? 60 : 0)))
      data[i + 1] = Math.max(0, Math.min(255, (255 * y) / height + grain))
      data[i + 2] = Math.max(0, Math.min(255, 128 + 100 * Math.sin(x / 17 + y / 23) + grain))
    }
  }
  return sharp(data, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer()
}
