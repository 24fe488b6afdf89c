import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { toLuminance, toNormalizedNCHW } from '../../server/preprocess/tensor.js'

describe('tensor conversion', () => {
  it('luminance is Pillow’s convert("L"): rounded ITU-R 601-2 on 16-bit fixed point', () => {
    const rgb = {
      data: Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 200, 200, 200]),
      width: 5,
      height: 1,
      channels: 3,
    }
    // 255·19595/65536 = 76.24 → 76; 149.69 → 150; 29.07 → 29; (10·19595+20·38470+30·7471+2^15)>>16 = 18; grey stays grey.
    assert.deepEqual([...toLuminance(rgb).data], [76, 150, 29, 18, 200])
  })

  it('normalises per channel into planar NCHW with float32 arithmetic', () => {
    const pixels = { data: Uint8Array.from([0, 128, 255, 255, 0, 64]), width: 2, height: 1, channels: 3 }
    const out = toNormalizedNCHW(pixels, [0.5, 0.5, 0.25], [0.5, 0.25, 0.5])
    const f = Math.fround
    const v = (p: number, m: number, s: number) => f(f(f(p / 255) - f(m)) / f(s))
    assert.deepEqual(
      [...out],
      [
        v(0, 0.5, 0.5),
        v(255, 0.5, 0.5),
        v(128, 0.5, 0.25),
        v(0, 0.5, 0.25),
        v(255, 0.25, 0.5),
        v(64, 0.25, 0.5),
      ],
    )
  })

  it('refuses mean/std that do not match the channels', () => {
    const pixels = { data: new Uint8Array(3), width: 1, height: 1, channels: 3 }
    assert.throws(() => toNormalizedNCHW(pixels, [0.5], [0.5]), RangeError)
    assert.throws(() => toLuminance({ ...pixels, channels: 1 }), RangeError)
  })
})
