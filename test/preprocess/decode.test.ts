import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import sharp from 'sharp'
import { ApiError } from '../../server/errors.js'
import { decodeImage } from '../../server/preprocess/decode.js'
import { fixturePath } from '../helper.js'

const image = (name: string) => readFile(fixturePath('images', name))
const LIMIT = { maxPixels: 1_000_000 }

async function rejectsWith(bytes: Buffer, code: string, options = LIMIT): Promise<ApiError> {
  let caught: unknown
  try {
    await decodeImage(bytes, options)
  } catch (error) {
    caught = error
  }
  assert.ok(caught instanceof ApiError, `expected an ApiError, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  return caught
}

describe('decodeImage', () => {
  it('reports the format detected from the bytes', async () => {
    const formats = await Promise.all(
      ['photo.jpg', 'alpha.png', 'photo.webp', 'animated.gif', 'photo.tiff', 'photo.avif'].map(
        async (name) => (await decodeImage(await image(name), LIMIT)).format,
      ),
    )
    assert.deepEqual(formats, ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'])
  })

  it('applies the EXIF orientation (stored 40×26, orientation 6 → upright 26×40)', async () => {
    const decoded = await decodeImage(await image('exif-rotated.jpg'), LIMIT)
    assert.deepEqual([decoded.width, decoded.height], [26, 40])
  })

  it('composites alpha onto black', async () => {
    const decoded = await decodeImage(await image('alpha.png'), LIMIT)
    assert.equal(decoded.channels, 3)
    // The right third of alpha.png is fully transparent over non-black colours.
    const i = (10 * decoded.width + decoded.width - 2) * 3
    assert.deepEqual([...decoded.data.subarray(i, i + 3)], [0, 0, 0])
    const { data: rgba } = await sharp(await image('alpha.png'))
      .raw()
      .toBuffer({ resolveWithObject: true })
    const j = (10 * decoded.width + decoded.width - 2) * 4
    assert.notDeepEqual(
      [...rgba.subarray(j, j + 3)],
      [0, 0, 0],
      'the hidden colour must not already be black',
    )
  })

  it('expands grey images to three equal channels', async () => {
    const decoded = await decodeImage(await image('gray.png'), LIMIT)
    assert.equal(decoded.channels, 3)
    for (let i = 0; i < decoded.data.length; i += 3) {
      assert.equal(decoded.data[i], decoded.data[i + 1])
      assert.equal(decoded.data[i], decoded.data[i + 2])
    }
  })

  it('uses the first frame of an animation', async () => {
    const bytes = await image('animated.gif')
    const decoded = await decodeImage(bytes, LIMIT)
    const second = await sharp(bytes, { page: 1 })
      .flatten({ background: '#000' })
      .toColourspace('srgb')
      .raw()
      .toBuffer()
    assert.equal(decoded.height, 32)
    assert.notDeepEqual(Buffer.from(decoded.data), second)
  })

  it('refuses bytes that are not an image', async () => {
    await rejectsWith(Buffer.from('definitely not an image'), 'IMAGE_DECODE_FAILED')
  })

  it('refuses a truncated JPEG', async () => {
    const bytes = await image('photo.jpg')
    await rejectsWith(bytes.subarray(0, Math.floor(bytes.length * 0.6)), 'IMAGE_DECODE_FAILED')
  })

  it('refuses formats outside the accepted list (SVG) before rasterising them', async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>',
    )
    const error = await rejectsWith(svg, 'UNSUPPORTED_MEDIA_TYPE')
    assert.equal(error.details.format, 'svg')
  })

  it('refuses images with more pixels than allowed, from the header', async () => {
    const error = await rejectsWith(await image('photo.jpg'), 'IMAGE_TOO_LARGE', { maxPixels: 48 * 40 - 1 })
    assert.deepEqual([error.details.width, error.details.height], [48, 40])
    await decodeImage(await image('photo.jpg'), { maxPixels: 48 * 40 })
  })
})
