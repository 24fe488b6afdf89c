/**
 * Image resampling with Pillow's 8-bit semantics, so the server resizes exactly as evaluation did
 * (torchvision's Resize on a PIL image calls Image.resize). libvips' resize (sharp) differs from
 * Pillow by several grey levels on downscales and by a sub-pixel shift on upscales, which would
 * make served inputs differ from the ones the published accuracy was measured on.
 *
 * Semantics reproduced (Pillow ≥ 7, 8-bit images):
 * - bilinear / bicubic: separable convolution; horizontal pass first, rounded to uint8, then the
 *   vertical pass. When downscaling, the kernel is stretched by the scale factor (antialiasing);
 *   taps falling outside the image are dropped and the rest renormalised. Weights are converted
 *   to 22-bit fixed point and accumulated from a rounding offset of one half, then clamped.
 *   A pass whose axis keeps its size is skipped, like Pillow does.
 * - nearest: source index = floor((i + 0.5) · in/out), accumulated step by step in double precision
 *   as Pillow's affine scaler does.
 *
 * Only a window of the output is computed (the centre crop that follows), reading only the source
 * rows and columns that window needs; every computed pixel equals the full resize's pixel.
 */
/* eslint-disable @typescript-eslint/no-non-null-assertion -- typed-array indices in these loops are in
   range by construction; `?? 0` would only hide a bug and slow the hot loops. */

export type Interpolation = 'bilinear' | 'bicubic' | 'nearest'

/** Interleaved 8-bit pixels, row-major, `channels` bytes per pixel. */
export interface PixelBuffer {
  data: Uint8Array
  width: number
  height: number
  channels: number
}

/** A rectangle of the resized image, in its coordinates. */
export interface Window {
  left: number
  top: number
  width: number
  height: number
}

const PRECISION_BITS = 22
const ONE = 1 << PRECISION_BITS
const HALF = 1 << (PRECISION_BITS - 1)

interface Filter {
  support: number
  weight(x: number): number
}

const FILTERS: Record<Exclude<Interpolation, 'nearest'>, Filter> = {
  bilinear: {
    support: 1,
    weight(x) {
      const a = Math.abs(x)
      return a < 1 ? 1 - a : 0
    },
  },
  // Keys' cubic convolution with a = -0.5 (Catmull-Rom), Pillow's BICUBIC.
  bicubic: {
    support: 2,
    weight(x) {
      const a = -0.5
      const t = Math.abs(x)
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a
      return 0
    },
  },
}

/** Per output index of one axis: first source index, tap count and fixed-point weights. */
interface AxisTaps {
  start: Int32Array
  count: Int32Array
  /** `maxTaps` weights per output index (unused trailing slots are 0). */
  weights: Int32Array
  maxTaps: number
}

/** Taps for output indices [first, first + n) of an axis resized from inSize to outSize. */
function axisTaps(inSize: number, outSize: number, filter: Filter, first: number, n: number): AxisTaps {
  const scale = inSize / outSize
  const stretch = Math.max(scale, 1)
  const support = filter.support * stretch
  const maxTaps = Math.ceil(support) * 2 + 1
  const start = new Int32Array(n)
  const count = new Int32Array(n)
  const weights = new Int32Array(n * maxTaps)
  const raw = new Float64Array(maxTaps)
  for (let i = 0; i < n; i++) {
    const center = (first + i + 0.5) * scale
    // Truncation toward zero after adding one half, as a C (int) cast does; both are ≥ -0.5 here.
    const lo = Math.max(Math.trunc(center - support + 0.5), 0)
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize)
    const taps = hi - lo
    let total = 0
    for (let k = 0; k < taps; k++) {
      const w = filter.weight((k + lo - center + 0.5) / stretch)
      raw[k] = w
      total += w
    }
    for (let k = 0; k < taps; k++) {
      const w = total === 0 ? raw[k]! : raw[k]! / total
      // Round half away from zero into fixed point.
      weights[i * maxTaps + k] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE)
    }
    start[i] = lo
    count[i] = taps
  }
  return { start, count, weights, maxTaps }
}

function clampByte(accumulator: number): number {
  const v = accumulator >> PRECISION_BITS
  return v < 0 ? 0 : v > 255 ? 255 : v
}

/** Horizontal pass over source rows [rowFirst, rowFirst + rows): output columns of `taps`. */
function horizontalPass(src: PixelBuffer, rowFirst: number, rows: number, taps: AxisTaps): PixelBuffer {
  const { channels: c, width: inWidth, data } = src
  const { start, count, weights, maxTaps } = taps
  const outWidth = start.length
  const out = new Uint8Array(rows * outWidth * c)
  for (let y = 0; y < rows; y++) {
    const rowBase = (rowFirst + y) * inWidth * c
    let o = y * outWidth * c
    for (let x = 0; x < outWidth; x++) {
      let p = rowBase + start[x]! * c
      const n = count[x]!
      const wBase = x * maxTaps
      // One pass over the taps for all channels; RGB and grey are the hot cases.
      if (c === 3) {
        let a0 = HALF
        let a1 = HALF
        let a2 = HALF
        for (let k = 0; k < n; k++, p += 3) {
          const w = weights[wBase + k]!
          a0 += data[p]! * w
          a1 += data[p + 1]! * w
          a2 += data[p + 2]! * w
        }
        out[o++] = clampByte(a0)
        out[o++] = clampByte(a1)
        out[o++] = clampByte(a2)
      } else if (c === 1) {
        let a = HALF
        for (let k = 0; k < n; k++) a += data[p + k]! * weights[wBase + k]!
        out[o++] = clampByte(a)
      } else {
        for (let ch = 0; ch < c; ch++) {
          let a = HALF
          for (let k = 0; k < n; k++) a += data[p + k * c + ch]! * weights[wBase + k]!
          out[o++] = clampByte(a)
        }
      }
    }
  }
  return { data: out, width: outWidth, height: rows, channels: c }
}

/** Vertical pass; `taps.start` is relative to the first row of `src`. */
function verticalPass(src: PixelBuffer, taps: AxisTaps): PixelBuffer {
  const { channels: c, width, data } = src
  const { start, count, weights, maxTaps } = taps
  const rowLength = width * c
  const outHeight = start.length
  const out = new Uint8Array(outHeight * rowLength)
  const acc = new Float64Array(rowLength)
  for (let y = 0; y < outHeight; y++) {
    acc.fill(HALF)
    const n = count[y]!
    const wBase = y * maxTaps
    for (let k = 0; k < n; k++) {
      const w = weights[wBase + k]!
      const rowBase = (start[y]! + k) * rowLength
      for (let i = 0; i < rowLength; i++) acc[i]! += data[rowBase + i]! * w
    }
    const outBase = y * rowLength
    for (let i = 0; i < rowLength; i++) out[outBase + i] = clampByte(acc[i]!)
  }
  return { data: out, width, height: outHeight, channels: c }
}

/** Copies a window out of an image that is not resized along either axis. */
function cropOnly(src: PixelBuffer, window: Window): PixelBuffer {
  const c = src.channels
  const out = new Uint8Array(window.width * window.height * c)
  for (let y = 0; y < window.height; y++) {
    const from = ((window.top + y) * src.width + window.left) * c
    out.set(src.data.subarray(from, from + window.width * c), y * window.width * c)
  }
  return { data: out, width: window.width, height: window.height, channels: c }
}

/** Source index per output index of one axis for nearest-neighbour scaling. */
function nearestIndices(inSize: number, outSize: number, first: number, n: number): Int32Array {
  const step = inSize / outSize
  const indices = new Int32Array(n)
  // Pillow accumulates the position by repeated addition; summing the same way keeps the rare
  // floating-point ties identical.
  let position = step * 0.5
  for (let i = 0; i < first; i++) position += step
  for (let i = 0; i < n; i++) {
    indices[i] = Math.min(Math.max(Math.trunc(position), 0), inSize - 1)
    position += step
  }
  return indices
}

function nearestWindow(src: PixelBuffer, outWidth: number, outHeight: number, window: Window): PixelBuffer {
  const c = src.channels
  const xs = nearestIndices(src.width, outWidth, window.left, window.width)
  const ys = nearestIndices(src.height, outHeight, window.top, window.height)
  const out = new Uint8Array(window.width * window.height * c)
  for (let y = 0; y < window.height; y++) {
    const rowBase = ys[y]! * src.width * c
    for (let x = 0; x < window.width; x++) {
      const from = rowBase + xs[x]! * c
      const to = (y * window.width + x) * c
      for (let ch = 0; ch < c; ch++) out[to + ch] = src.data[from + ch]!
    }
  }
  return { data: out, width: window.width, height: window.height, channels: c }
}

function assertWindow(outWidth: number, outHeight: number, window: Window): void {
  const ok =
    Number.isInteger(outWidth) &&
    Number.isInteger(outHeight) &&
    outWidth > 0 &&
    outHeight > 0 &&
    window.left >= 0 &&
    window.top >= 0 &&
    window.width > 0 &&
    window.height > 0 &&
    window.left + window.width <= outWidth &&
    window.top + window.height <= outHeight
  if (!ok) {
    throw new RangeError(
      `window ${JSON.stringify(window)} does not fit a ${outWidth}×${outHeight} resize target`,
    )
  }
}

/**
 * Resizes `src` to outWidth×outHeight with Pillow's semantics and returns only `window` of the
 * result.
 */
export function resizeWindow(
  src: PixelBuffer,
  outWidth: number,
  outHeight: number,
  window: Window,
  interpolation: Interpolation,
): PixelBuffer {
  assertWindow(outWidth, outHeight, window)
  if (src.data.length !== src.width * src.height * src.channels) {
    throw new RangeError('pixel buffer length does not match width × height × channels')
  }
  const resizeX = outWidth !== src.width
  const resizeY = outHeight !== src.height
  if (!resizeX && !resizeY) return cropOnly(src, window)
  if (interpolation === 'nearest') return nearestWindow(src, outWidth, outHeight, window)

  const filter = FILTERS[interpolation]
  const columnTaps = () => axisTaps(src.width, outWidth, filter, window.left, window.width)
  if (!resizeY) return horizontalPass(src, window.top, window.height, columnTaps())

  // Vertical pass over only the source rows the window needs; those rows get the horizontal pass
  // first (or are just cut to the window's columns when the width is kept).
  const rowTaps = axisTaps(src.height, outHeight, filter, window.top, window.height)
  const last = window.height - 1
  const rowFirst = rowTaps.start[0]!
  const rowCount = rowTaps.start[last]! + rowTaps.count[last]! - rowFirst
  for (let i = 0; i < window.height; i++) rowTaps.start[i]! -= rowFirst
  const rows = resizeX
    ? horizontalPass(src, rowFirst, rowCount, columnTaps())
    : cropOnly(src, { left: window.left, top: rowFirst, width: window.width, height: rowCount })
  return verticalPass(rows, rowTaps)
}
