import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  DATASET_MAGIC,
  DatasetError,
  parseDataset,
  readDataset,
  type DatasetHeader,
} from '../../server/cli/dataset-file.js'
import { fixturePath } from '../helper.js'

function encode(
  header: DatasetHeader,
  images: Float32Array,
  labels: number[],
  labelDtype = header.labelDtype,
) {
  let json = JSON.stringify(header)
  json += ' '.repeat((4 - ((12 + Buffer.byteLength(json)) % 4)) % 4)
  const head = Buffer.alloc(12)
  head.write(DATASET_MAGIC, 0, 'latin1')
  head.writeUInt32LE(Buffer.byteLength(json), 8)
  const imageBytes = Buffer.alloc(images.length * 4)
  images.forEach((v, i) => imageBytes.writeFloatLE(v, i * 4))
  const labelBytes =
    labelDtype === 'int32' ? Buffer.from(new Int32Array(labels).buffer) : Buffer.from(Uint8Array.from(labels))
  return Buffer.concat([head, Buffer.from(json), imageBytes, labelBytes])
}

const HEADER: DatasetHeader = {
  version: 1,
  count: 2,
  shape: [2, 1, 2, 2],
  dtype: 'float32',
  labelDtype: 'uint8',
  classes: 3,
  input: { channels: 1, size: 2, mean: [0.5], std: [0.25], resizeShortSide: 2, interpolation: 'bilinear' },
}

describe('dataset file', () => {
  it('round-trips images and labels', () => {
    const images = Float32Array.from([0, 1, 2, 3, -1, -2, 0.5, 1e-3])
    const dataset = parseDataset(encode(HEADER, images, [2, 0]))
    assert.deepEqual(dataset.images, images)
    assert.deepEqual(dataset.labels, Int32Array.from([2, 0]))
    assert.deepEqual(dataset.header.input.mean, [0.5])
  })

  it('reads the fixture dataset written by the Python generator', async () => {
    const dataset = await readDataset(fixturePath('zoo', 'fixture-gray28.dataset.bin'))
    assert.equal(dataset.header.count, 64)
    assert.deepEqual(dataset.header.shape, [64, 1, 28, 28])
    assert.equal(dataset.images.length, 64 * 784)
    assert.ok(dataset.labels.every((l) => l >= 0 && l < 10))
  })

  it('rejects malformed files with the reason', async () => {
    const good = encode(HEADER, new Float32Array(8), [0, 1])
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('PK\u0003\u0004 not a dataset'), /not a dataset file/],
      [good.subarray(0, good.length - 1), /size \d+ bytes, expected \d+/],
      [encode(HEADER, new Float32Array(8), [0, 3]), /label 3 of sample 1 is outside \[0, 3\)/],
      [encode({ ...HEADER, count: 3 }, new Float32Array(8), [0, 1]), /shape\[0\] 2 differs from count 3/],
      [encode({ ...HEADER, version: 2 as 1 }, new Float32Array(8), [0, 1]), /invalid header at \/version/],
      [
        encode({ ...HEADER, shape: [2, 3, 2, 2] }, new Float32Array(24), [0, 1]),
        /does not match the input contract/,
      ],
    ]
    for (const [bytes, pattern] of cases) {
      assert.throws(
        () => parseDataset(bytes, 'd.bin'),
        (error: unknown) => error instanceof DatasetError && pattern.test(error.message),
        String(pattern),
      )
    }
    await assert.rejects(
      readDataset('/no/such/file.bin'),
      /dataset \/no\/such\/file.bin: cannot read: ENOENT/,
    )
  })
})
