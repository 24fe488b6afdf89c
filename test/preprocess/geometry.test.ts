import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { centerCropWindow, resizeShortSide, roundHalfEven } from '../../server/preprocess/geometry.js'

describe('geometry (the evaluation transforms’ conventions)', () => {
  it('roundHalfEven is Python 3 round()', () => {
    assert.deepEqual([0.5, 1.5, 2.5, 3.5, 2.4, 2.6, 7, 0].map(roundHalfEven), [0, 2, 2, 4, 2, 3, 7, 0])
  })

  it('resizes the shorter side and rounds the longer one half to even', () => {
    assert.deepEqual(resizeShortSide(48, 40, 32), { width: 38, height: 32 }) // 38.4
    assert.deepEqual(resizeShortSide(37, 51, 32), { width: 32, height: 44 }) // 44.108…
    assert.deepEqual(resizeShortSide(29, 37, 28), { width: 28, height: 36 }) // 35.72 (torchvision would truncate to 35)
    assert.deepEqual(resizeShortSide(12, 20, 6), { width: 6, height: 10 })
    assert.deepEqual(resizeShortSide(4, 7, 2), { width: 2, height: 4 }) // 3.5 → 4
    assert.deepEqual(resizeShortSide(4, 5, 2), { width: 2, height: 2 }) // 2.5 → 2
    assert.deepEqual(resizeShortSide(30, 30, 28), { width: 28, height: 28 })
    assert.deepEqual(resizeShortSide(10, 20, 40), { width: 40, height: 80 })
  })

  it('leaves an image whose shorter side already fits untouched', () => {
    assert.deepEqual(resizeShortSide(40, 28, 28), { width: 40, height: 28 })
    assert.deepEqual(resizeShortSide(28, 1000, 28), { width: 28, height: 1000 })
  })

  it('centres the crop with ties to even', () => {
    assert.deepEqual(centerCropWindow({ width: 33, height: 30 }, 28), {
      left: 2,
      top: 1,
      width: 28,
      height: 28,
    }) // 2.5 → 2, 1
    assert.deepEqual(centerCropWindow({ width: 31, height: 28 }, 28), {
      left: 2,
      top: 0,
      width: 28,
      height: 28,
    }) // 1.5 → 2
    assert.deepEqual(centerCropWindow({ width: 28, height: 28 }, 28), {
      left: 0,
      top: 0,
      width: 28,
      height: 28,
    })
    assert.throws(() => centerCropWindow({ width: 27, height: 40 }, 28), RangeError)
  })
})
