/**
 * The resampler against Pillow's Image.resize directly: seeded random images (the hardest content
 * for rounding) at scale factors from 1/20 to 15, 1-pixel sides included, grey and RGB, for each
 * interpolation (golden/resample.{json,bin} from make_reference.py). Bit-exact equality is
 * required: the implementation follows Pillow's fixed-point arithmetic.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { resizeWindow, type Interpolation } from '../../server/preprocess/resample.js'
import { ROOT } from '../helper.js'

interface ResampleCase {
  width: number
  height: number
  channels: number
  outWidth: number
  outHeight: number
  interpolation: Interpolation
  inputOffset: number
  outputOffset: number
}

const GOLDEN = join(ROOT, 'test', 'preprocess', 'golden')
const { cases } = JSON.parse(await readFile(join(GOLDEN, 'resample.json'), 'utf8')) as {
  cases: ResampleCase[]
}
const blob = new Uint8Array(await readFile(join(GOLDEN, 'resample.bin')))

function input(c: ResampleCase) {
  const length = c.width * c.height * c.channels
  return {
    data: blob.subarray(c.inputOffset, c.inputOffset + length),
    width: c.width,
    height: c.height,
    channels: c.channels,
  }
}

function expected(c: ResampleCase): Uint8Array {
  return blob.subarray(c.outputOffset, c.outputOffset + c.outWidth * c.outHeight * c.channels)
}

describe('resizeWindow', () => {
  for (const c of cases) {
    const label = `${c.interpolation} ${c.channels}ch ${c.width}×${c.height} → ${c.outWidth}×${c.outHeight}`
    it(`equals Pillow: ${label}`, () => {
      const full = { left: 0, top: 0, width: c.outWidth, height: c.outHeight }
      const out = resizeWindow(input(c), c.outWidth, c.outHeight, full, c.interpolation)
      assert.deepEqual(out.data, expected(c))
    })
  }

  it('a window equals the same region of the full resize', () => {
    for (const c of cases.filter((x) => x.outWidth > 4 && x.outHeight > 4)) {
      const window = { left: 2, top: 1, width: c.outWidth - 3, height: c.outHeight - 4 }
      const out = resizeWindow(input(c), c.outWidth, c.outHeight, window, c.interpolation)
      const full = expected(c)
      for (let y = 0; y < window.height; y++) {
        const start = ((y + window.top) * c.outWidth + window.left) * c.channels
        assert.deepEqual(
          out.data.subarray(y * window.width * c.channels, (y + 1) * window.width * c.channels),
          full.subarray(start, start + window.width * c.channels),
        )
      }
    }
  })

  it('without a size change it only crops', () => {
    const src = { data: Uint8Array.from({ length: 4 * 3 }, (_, i) => i), width: 4, height: 3, channels: 1 }
    const out = resizeWindow(src, 4, 3, { left: 1, top: 1, width: 2, height: 2 }, 'bicubic')
    assert.deepEqual([...out.data], [5, 6, 9, 10])
  })

  it('rejects windows outside the target and inconsistent buffers', () => {
    const src = { data: new Uint8Array(12), width: 4, height: 3, channels: 1 }
    assert.throws(
      () => resizeWindow(src, 8, 6, { left: 5, top: 0, width: 4, height: 2 }, 'bilinear'),
      RangeError,
    )
    assert.throws(
      () => resizeWindow(src, 0, 6, { left: 0, top: 0, width: 1, height: 1 }, 'bilinear'),
      RangeError,
    )
    assert.throws(
      () => resizeWindow({ ...src, width: 5 }, 8, 6, { left: 0, top: 0, width: 1, height: 1 }, 'bilinear'),
      RangeError,
    )
  })
})
