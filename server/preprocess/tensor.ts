/**
 * 8-bit pixels → the model's float32 NCHW input, the way torchvision's eval transforms build it:
 * grey conversion with Pillow's convert('L') (ITU-R 601-2 luma on the gamma-encoded values,
 * 16-bit fixed point, rounded), ToTensor (v / 255 in float32) and Normalize ((x − mean) / std in
 * float32). Every intermediate is rounded to float32 like the PyTorch ops, so the tensor matches
 * the evaluation's bit for bit for the same 8-bit pixels.
 */
/* eslint-disable @typescript-eslint/no-non-null-assertion -- typed-array indices in these loops are in
   range by construction; `?? 0` would only hide a bug and slow the hot loops. */
import type { PixelBuffer } from './resample.js'

/** Pillow's RGB → L: (19595 R + 38470 G + 7471 B + 2^15) >> 16. */
export function toLuminance(rgb: PixelBuffer): PixelBuffer {
  if (rgb.channels !== 3) throw new RangeError(`luminance needs 3 channels, got ${rgb.channels}`)
  const n = rgb.width * rgb.height
  const out = new Uint8Array(n)
  const src = rgb.data
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    out[i] = (src[j]! * 19595 + src[j + 1]! * 38470 + src[j + 2]! * 7471 + 0x8000) >> 16
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 1 }
}

/** Float32 value of every byte for one channel: ((v / 255) − mean) / std, rounded as float32 ops. */
function channelTable(mean: number, std: number): Float32Array {
  const table = new Float32Array(256)
  const m = Math.fround(mean)
  const s = Math.fround(std)
  for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s)
  return table
}

/** Interleaved HWC bytes → planar [1, C, H, W] float32, normalised per channel. */
export function toNormalizedNCHW(
  pixels: PixelBuffer,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const c = pixels.channels
  if (mean.length !== c || std.length !== c) {
    throw new RangeError(`mean/std have ${mean.length}/${std.length} entries for ${c} channels`)
  }
  const plane = pixels.width * pixels.height
  const out = new Float32Array(c * plane)
  for (let ch = 0; ch < c; ch++) {
    const table = channelTable(mean[ch]!, std[ch]!)
    const base = ch * plane
    for (let i = 0; i < plane; i++) out[base + i] = table[pixels.data[i * c + ch]!]!
  }
  return out
}
