/**
 * The tensors the server builds for the fixture images equal the Pillow + numpy reference
 * (make_reference.py → golden/) within 1e-3 max abs difference, for every case.
 *
 * Why every case, not only resize-free ones: the server does not use libvips' resize (which
 * differs from Pillow by several grey levels on downscales and by a sub-pixel shift on upscales);
 * it reimplements Pillow's 8-bit resampling (server/preprocess/resample.ts), and sharp/libvips only
 * decodes. The decoders themselves agree bit for bit with Pillow's for these JPEG (libjpeg-turbo
 * IDCT and chroma upsampling), WebP, PNG, GIF and TIFF files, so bilinear, bicubic and nearest,
 * up- and downscaling, grey conversion, EXIF rotation, the alpha matte and first-frame decoding
 * are all held to the same bound. In practice the tensors come out bit-identical (max diff 0).
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import sharp from 'sharp'
import { imageToTensor } from '../../server/preprocess/image-to-tensor.js'
import type { InputContract } from '../../server/preprocess/pixels-to-tensor.js'
import { epochMs } from '../../server/runtime/worker-protocol.js'
import { fixturePath, ROOT } from '../helper.js'

const HERE = join(ROOT, 'test', 'preprocess')
const TOLERANCE = 1e-3

interface Spec {
  contracts: Record<string, InputContract>
  cases: { image: string; reference?: string; contract: string }[]
}
interface GoldenEntry {
  file: string
  shape: number[]
}

const spec = JSON.parse(await readFile(join(HERE, 'cases.json'), 'utf8')) as Spec
const index = JSON.parse(await readFile(join(HERE, 'golden', 'index.json'), 'utf8')) as Record<
  string,
  GoldenEntry
>

const caseName = (image: string, contract: string) => `${image.replaceAll('.', '-')}--${contract}`

async function golden(entry: GoldenEntry): Promise<Float32Array> {
  const bytes = await readFile(join(HERE, 'golden', entry.file))
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true))
}

describe('preprocessing parity with the Pillow reference', () => {
  it('has a golden for every case and no orphan goldens', () => {
    const names = spec.cases.map((c) => caseName(c.image, c.contract)).sort()
    assert.deepEqual(Object.keys(index).sort(), names)
  })

  for (const testCase of spec.cases) {
    const name = caseName(testCase.image, testCase.contract)
    it(name, async () => {
      const contract = spec.contracts[testCase.contract]!
      const entry = index[name]!
      const bytes = await readFile(fixturePath('images', testCase.image))
      // The server's own path: decode, then resample and normalise per the contract.
      const tensor = await imageToTensor(
        { bytes, maxPixels: 1_000_000, deadline: epochMs() + 60_000 },
        contract,
      )
      assert.deepEqual([1, contract.channels, contract.size, contract.size], entry.shape)
      const expected = await golden(entry)
      assert.equal(tensor.length, expected.length)
      let max = 0
      for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(tensor[i]! - expected[i]!))
      assert.ok(max <= TOLERANCE, `${name}: max abs diff ${max} > ${TOLERANCE}`)
    })
  }

  it('the AVIF fixture is a lossless copy of the PNG its reference reads', async () => {
    const pixels = async (file: string) =>
      sharp(await readFile(fixturePath('images', file)))
        .raw()
        .toBuffer()
    assert.deepEqual(await pixels('photo.avif'), await pixels('avif-source.png'))
  })
})
