/**
 * The pure parts of the /v2 API: Triton's classification string format (C++ std::to_string of
 * the value = printf("%f"), checked against values printed by C's printf via Python), top-k order,
 * tensor data decoding (flat, nested, binary little-endian) and the binary body framing.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ApiError } from '../../server/errors.js'
import { frameBinaryResponse, splitBody } from '../../server/routes/v2/body.js'
import { classify, formatFixed6 } from '../../server/routes/v2/classification.js'
import {
  bytesToBinary,
  elementCount,
  float32FromBinary,
  float32FromJson,
  float32ToBinary,
} from '../../server/routes/v2/tensor.js'

function throwsInvalid(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ApiError)
    assert.equal(error.statusCode, 400)
    assert.match(error.message, pattern)
    return true
  })
}

describe('formatFixed6 (printf "%f")', () => {
  // float32 values and what `'%f' % value` (correctly rounded, ties to even, like glibc) prints.
  const golden: [number, string][] = [
    [Math.fround(3.3), '3.300000'],
    [1 / 128, '0.007812'], // exact tie: printf rounds to even, toFixed would give 0.007813
    [3 / 128, '0.023438'], // exact tie rounding up to even
    [-1 / 128, '-0.007812'],
    [5 / 128, '0.039062'],
    [Math.fround(0.5e-6), '0.000000'],
    [Math.fround(2.5e-6), '0.000002'],
    [1e10, '10000000000.000000'],
    [Math.fround(-1.5e-7), '-0.000000'],
    [Math.fround(123.456789), '123.456787'],
    [Math.fround(0.1), '0.100000'],
    [Math.fround(-2.718281828), '-2.718282'],
    [Math.fround(1 / 3), '0.333333'],
    [Math.fround(1.25e-5), '0.000012'],
    [Math.fround(7.0000005), '7.000000'],
    [0, '0.000000'],
    [-0, '-0.000000'],
    [Number.NaN, 'nan'],
    [Number.POSITIVE_INFINITY, 'inf'],
    [Number.NEGATIVE_INFINITY, '-inf'],
  ]
  for (const [value, text] of golden) {
    it(`${value} → ${text}`, () => {
      assert.equal(formatFixed6(value), text)
    })
  }
})

describe('classify (classification extension)', () => {
  it('per row: best first, ties by lower index, k clamped, labels appended', () => {
    const values = Float32Array.from([1.1, 3.3, 0.5, 2.4, /* row 2 */ 1, 1, 2, 0])
    assert.deepEqual(classify(values, 2, 4, 2, ['a', 'b', 'c', 'd']), {
      data: ['3.300000:1:b', '2.400000:3:d', '2.000000:2:c', '1.000000:0:a'],
      shape: [2, 2],
    })
    assert.deepEqual(classify(values.subarray(0, 4), 1, 4, 9, []).data, [
      '3.300000:1',
      '2.400000:3',
      '1.100000:0',
      '0.500000:2',
    ])
    assert.deepEqual(classify(values.subarray(0, 4), 1, 4, 9, []).shape, [1, 4])
  })

  it("the protocol doc's example without labels: [1.1, 3.3, 0.5, 2.4], k=2 → 3.3:1, 2.4:3", () => {
    const { data } = classify(Float32Array.from([1.1, 3.3, 0.5, 2.4]), 1, 4, 2, [])
    assert.deepEqual(
      data.map((s) => s.split(':').map(Number)),
      [
        [3.3, 1],
        [2.4, 3],
      ],
    )
  })
})

describe('tensor data', () => {
  it('flat, nested and mixed nesting decode to the same row-major values', () => {
    const flat = [1, 2, 3, 4, 5, 6]
    assert.deepEqual(Array.from(float32FromJson(flat, 6, 't')), flat)
    assert.deepEqual(
      Array.from(
        float32FromJson(
          [
            [1, 2, 3],
            [4, 5, 6],
          ],
          6,
          't',
        ),
      ),
      flat,
    )
    assert.deepEqual(
      Array.from(
        float32FromJson(
          [
            [[1], [2, 3]],
            [4, [5, 6]],
          ],
          6,
          't',
        ),
      ),
      flat,
    )
  })

  it('refuses wrong counts and non-numbers, naming the tensor', () => {
    throwsInvalid(
      () => float32FromJson([1, 2], 3, 'x'),
      /tensor 'x' has 2 data elements but its shape holds 3/,
    )
    throwsInvalid(() => float32FromJson([1, 2, 3, 4], 3, 'x'), /has 4 data elements/)
    throwsInvalid(() => float32FromJson([1, true, 3], 3, 'x'), /element 1 is true/)
    throwsInvalid(() => float32FromJson([1, null, 3], 3, 'x'), /element 1 is null/)
    throwsInvalid(() => float32FromJson([1, { v: 2 }, 3], 3, 'x'), /element 1 is \{"v":2\}/)
    let deep: unknown = [1]
    for (let i = 0; i < 40; i++) deep = [deep]
    throwsInvalid(() => float32FromJson(deep, 1, 'x'), /nested too deeply/)
  })

  it('element counts: products of non-negative integer dimensions', () => {
    assert.equal(elementCount([2, 1, 28, 28], 't'), 1568)
    assert.equal(elementCount([], 't'), 1)
    throwsInvalid(() => elementCount([2, -1], 't'), /invalid dimension -1/)
    throwsInvalid(() => elementCount([2 ** 30, 2 ** 30, 2 ** 30], 't'), /too large/)
  })

  it('binary FP32 is little-endian, at any byte offset, and round-trips', () => {
    const values = Float32Array.from([1.5, -2.25, 3e-3])
    const bytes = Buffer.alloc(13)
    values.forEach((v, i) => bytes.writeFloatLE(v, 1 + i * 4))
    assert.deepEqual(Array.from(float32FromBinary(bytes.subarray(1), 3, 't')), Array.from(values))
    assert.deepEqual(float32ToBinary(values), bytes.subarray(1))
    throwsInvalid(
      () => float32FromBinary(bytes.subarray(1, 12), 3, 't'),
      /11 bytes of binary data but .* need 12/,
    )
  })

  it('BYTES elements: 4-byte little-endian length, then UTF-8', () => {
    assert.deepEqual(
      bytesToBinary(['ab', '', 'é']),
      Buffer.from([2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 2, 0, 0, 0, 0xc3, 0xa9]),
    )
  })
})

describe('binary body framing', () => {
  it('without the header the whole body is JSON; with it, JSON then binary; 0 = raw binary', () => {
    const body = Buffer.from('{"a":1}\u0001\u0002')
    assert.deepEqual(splitBody(Buffer.from('{"a":1}'), undefined), {
      json: '{"a":1}',
      binary: Buffer.alloc(0),
    })
    assert.deepEqual(splitBody(body, '7'), { json: '{"a":1}', binary: Buffer.from([1, 2]) })
    assert.deepEqual(splitBody(body, ' 7 '), { json: '{"a":1}', binary: Buffer.from([1, 2]) })
    assert.deepEqual(splitBody(body, '0'), { json: null, binary: body })
    throwsInvalid(() => splitBody(body, '10'), /out of range \[ 0, 9 \]/)
    throwsInvalid(() => splitBody(body, '1.5'), /out of range/)
    throwsInvalid(() => splitBody(body, ['1', '2']), /more than once/)
    assert.throws(() => splitBody(undefined, undefined), /empty/)
  })

  it('responses: JSON header then tensors, with the header length', () => {
    const { body, headerLength } = frameBinaryResponse({ x: 1 }, [Buffer.from([9, 8]), Buffer.from([7])])
    assert.equal(headerLength, 7)
    assert.deepEqual(body, Buffer.concat([Buffer.from('{"x":1}'), Buffer.from([9, 8, 7])]))
  })
})
