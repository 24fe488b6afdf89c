/**
 * Fuzzing the image path of POST /v1/classify: valid images of every accepted format mutated
 * (truncated, bit-flipped, overwritten, spliced, headers set to extremes), random bytes with and
 * without a real format's magic number, decompression bombs, and every decoder variant (16-bit,
 * CMYK, grey + alpha, palette, animated, multi-page, EXIF orientations 1–8) valid. Every request
 * must end in a 200 or a JSON 4xx with a catalogue code; the app must stay healthy after each batch.
 * Seeds and reruns: see support.ts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import sharp from 'sharp'
import { decodeImage } from '../../server/preprocess/decode.js'
import { startApp } from '../routes/support.js'
import {
  buildCorpus,
  gifDeclaring,
  IMAGE_TYPES,
  jpegDeclaring,
  picture,
  pngDeclaring,
  tiffDeclaring,
  webpDeclaring,
  type SeedImage,
} from './corpus.js'
import { assertAnsweredOrRefused, assertClientError, assertHealthy, fuzz } from './support.js'

/** Mutated headers may declare anything up to this; decoding a lie that large stays cheap. */
const FUZZ_MAX_PIXELS = 4_000_000

/** What a mutated image may legitimately be refused with. */
const IMAGE_ERRORS = ['IMAGE_DECODE_FAILED', 'IMAGE_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'] as const

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'extreme'; at: number; value: number; width: 2 | 4 }

const bytesArb = fc.uint8Array({ minLength: 1, maxLength: 32 })
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }), weight: 3 },
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), bytes: bytesArb }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: bytesArb }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 256 }) }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 512 }),
  }),
  // Header fields (dimensions, lengths, offsets, counts) live in the first bytes of every format.
  {
    arbitrary: fc.record({
      kind: fc.constant('extreme' as const),
      at: fc.nat(255),
      value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0xffffffff),
      width: fc.constantFrom(2 as const, 4 as const),
    }),
    weight: 2,
  },
)

function applyMutation(input: Buffer, m: Mutation): Buffer {
  if (input.length === 0) return input
  const at = m.at % input.length
  switch (m.kind) {
    case 'truncate':
      return input.subarray(0, at)
    case 'flip': {
      const out = Buffer.from(input)
      out[at] = (out[at] ?? 0) ^ (1 << m.bit)
      return out
    }
    case 'overwrite': {
      const out = Buffer.from(input)
      out.set(m.bytes.subarray(0, out.length - at), at)
      return out
    }
    case 'insert':
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)])
    case 'delete':
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.length)])
    case 'duplicate':
      return Buffer.concat([input.subarray(0, at + m.length), input.subarray(at)])
    case 'extreme': {
      const out = Buffer.from(input)
      if (at + m.width > out.length) return out
      if (m.width === 2) out.writeUInt16BE(m.value & 0xffff, at)
      else out.writeUInt32BE(m.value >>> 0, at)
      return out
    }
  }
}

const MAGIC: Readonly<Record<string, number[]>> = {
  jpeg: [0xff, 0xd8, 0xff],
  png: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  gif: [...Buffer.from('GIF89a')],
  webp: [...Buffer.from('RIFF'), 0x40, 0, 0, 0, ...Buffer.from('WEBPVP8 ')],
  tiffLE: [0x49, 0x49, 0x2a, 0x00],
  tiffBE: [0x4d, 0x4d, 0x00, 0x2a],
  bigtiff: [0x49, 0x49, 0x2b, 0x00, 0x08, 0x00, 0x00, 0x00],
  avif: [0, 0, 0, 0x1c, ...Buffer.from('ftypavif'), 0, 0, 0, 0, ...Buffer.from('avifmif1miaf')],
  none: [],
}

describe('fuzz: images through POST /v1/classify', () => {
  let app: FastifyInstance
  let corpus: SeedImage[]
  let healthyImage: Buffer

  before(async () => {
    app = await startApp({ maxImagePixels: FUZZ_MAX_PIXELS })
    corpus = await buildCorpus()
    healthyImage = corpus.find((s) => s.name === 'png-rgb')?.bytes ?? Buffer.alloc(0)
  })
  after(() => app.close())

  const classify = (payload: Buffer, type: string, url = '/v1/classify') =>
    app.inject({ method: 'POST', url, headers: { 'content-type': type }, payload })

  it('every seed variant is valid: 16-bit, CMYK, grey + alpha, palette, animated, multi-page, EXIF', async () => {
    assert.ok(corpus.length >= 20)
    for (const seed of corpus) {
      const res = await classify(seed.bytes, seed.type)
      assert.equal(res.statusCode, 200, `${seed.name}: ${res.body.slice(0, 300)}`)
    }
  })

  it('mutated images of every format → 200 or a coded 4xx', async (t) => {
    await fuzz(
      t,
      'mutated images',
      500,
      fc.asyncProperty(
        fc.nat(),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        fc.option(fc.constantFrom(...IMAGE_TYPES), { freq: 4 }),
        async (pick, mutations, declared) => {
          const seed = corpus[pick % corpus.length]
          if (!seed) throw new Error('empty corpus')
          const bytes = mutations.reduce(applyMutation, seed.bytes)
          const res = await classify(bytes, declared ?? seed.type)
          const context = `${seed.name} ${JSON.stringify(mutations.map((m) => m.kind))}`
          if (bytes.length === 0) assertClientError(res, ['MISSING_IMAGE'], context)
          else assertAnsweredOrRefused(res, IMAGE_ERRORS, context)
        },
      ),
    )
    await assertHealthy(app, healthyImage)
  })

  it('random bytes, with or without a real magic number → a coded 4xx', async (t) => {
    await fuzz(
      t,
      'random bytes',
      200,
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(MAGIC)),
        fc.uint8Array({ minLength: 0, maxLength: 2048 }),
        fc.constantFrom(...IMAGE_TYPES),
        async (magic, tail, type) => {
          const bytes = Buffer.concat([Buffer.from(MAGIC[magic] ?? []), tail])
          const res = await classify(bytes, type)
          if (bytes.length === 0) assertClientError(res, ['MISSING_IMAGE'], magic)
          else assertAnsweredOrRefused(res, IMAGE_ERRORS, `${magic} + ${tail.length} random bytes`)
        },
      ),
    )
    await assertHealthy(app, healthyImage)
  })

  it('zero-byte bodies under every image type → 400 MISSING_IMAGE', async () => {
    for (const type of IMAGE_TYPES)
      assertClientError(await classify(Buffer.alloc(0), type), ['MISSING_IMAGE'])
  })

  it('decompression bombs: tiny files declaring 30000×30000 → 413 IMAGE_TOO_LARGE, fast', async () => {
    const bombs: [string, Buffer, string][] = [
      ['png', pngDeclaring(30_000, 30_000), 'image/png'],
      ['png 1×(limit+1)', pngDeclaring(1, FUZZ_MAX_PIXELS + 1), 'image/png'],
      ['jpeg', await jpegDeclaring(30_000, 30_000), 'image/jpeg'],
      ['webp', await webpDeclaring(16_000, 16_000), 'image/webp'],
      ['tiff', tiffDeclaring(30_000, 30_000), 'image/tiff'],
    ]
    for (const [name, bytes, type] of bombs) {
      assert.ok(bytes.length < 2048, `${name} bomb is ${bytes.length} bytes`)
      const started = performance.now()
      const body = assertClientError(await classify(bytes, type), ['IMAGE_TOO_LARGE'], name)
      assert.equal(body.maxPixels, FUZZ_MAX_PIXELS)
      // Refused from the header: no 900-megapixel buffer was ever allocated.
      assert.ok(performance.now() - started < 2000, `${name} took ${performance.now() - started} ms`)
    }
    // GIF's decoder ignores a frame larger than what it can hold; refused or decoded small, never big.
    const gif = await classify(await gifDeclaring(30_000, 30_000), 'image/gif')
    assertAnsweredOrRefused(gif, IMAGE_ERRORS, 'gif bomb')
    assert.ok(process.memoryUsage().rss < 2 * 1024 ** 3, 'RSS stayed below 2 GiB')
  })

  it('declared dimensions anywhere up to 65535² never exceed the pixel limit', async (t) => {
    await fuzz(
      t,
      'declared dimensions',
      120,
      fc.asyncProperty(
        fc.integer({ min: 1, max: 65_535 }),
        fc.integer({ min: 1, max: 65_535 }),
        fc.constantFrom('png', 'jpeg', 'tiff'),
        async (declaredWidth, declaredHeight, format) => {
          // libjpeg refuses dimensions over 65500 outright (a decode failure, tested elsewhere).
          const [width, height] =
            format === 'jpeg'
              ? [Math.min(declaredWidth, 65_500), Math.min(declaredHeight, 65_500)]
              : [declaredWidth, declaredHeight]
          const bytes =
            format === 'png'
              ? pngDeclaring(width, height)
              : format === 'jpeg'
                ? await jpegDeclaring(width, height)
                : tiffDeclaring(width, height)
          const res = await classify(bytes, `image/${format}`)
          const context = `${format} ${width}×${height}`
          if (width * height > FUZZ_MAX_PIXELS) assertClientError(res, ['IMAGE_TOO_LARGE'], context)
          else assertAnsweredOrRefused(res, IMAGE_ERRORS, context)
        },
      ),
    )
    await assertHealthy(app, healthyImage)
  })

  it('the default pixel limit is 40 MP and still refuses a 30000×30000 header', async (t) => {
    const defaults = await startApp()
    t.after(() => defaults.close())
    assert.equal(defaults.config.maxImagePixels, 40_000_000)
    const res = await defaults.inject({
      method: 'POST',
      url: '/v1/classify',
      headers: { 'content-type': 'image/png' },
      payload: pngDeclaring(30_000, 30_000),
    })
    assert.equal(assertClientError(res, ['IMAGE_TOO_LARGE']).maxPixels, 40_000_000)
  })
})

describe('fuzz: EXIF orientation', () => {
  /** Stored pixel (row, col) → displayed (row, col) for EXIF orientation 1–8 (TIFF/EXIF spec). */
  function displayed(o: number, r: number, c: number, storedH: number, storedW: number): [number, number] {
    switch (o) {
      case 2:
        return [r, storedW - 1 - c]
      case 3:
        return [storedH - 1 - r, storedW - 1 - c]
      case 4:
        return [storedH - 1 - r, c]
      case 5:
        return [c, r]
      case 6:
        return [c, storedH - 1 - r]
      case 7:
        return [storedW - 1 - c, storedH - 1 - r]
      case 8:
        return [storedW - 1 - c, r]
      default:
        return [r, c]
    }
  }

  /** The stored pixels that orientation `o` displays as `upright` (width × height, RGB). */
  function storedFor(o: number, upright: Buffer, width: number, height: number) {
    const [storedW, storedH] = o >= 5 ? [height, width] : [width, height]
    const stored = Buffer.alloc(upright.length)
    for (let r = 0; r < storedH; r++) {
      for (let c = 0; c < storedW; c++) {
        const [R, C] = displayed(o, r, c, storedH, storedW)
        upright.copy(stored, (r * storedW + c) * 3, (R * width + C) * 3, (R * width + C) * 3 + 3)
      }
    }
    return { stored, storedW, storedH }
  }

  for (const format of ['png', 'webp', 'tiff'] as const) {
    it(`${format}: orientations 1–8 all decode to the same upright pixels`, async () => {
      const [width, height] = [7, 5] // non-square, so a missed transpose changes the shape
      const upright = picture(width, height, 3, 9)
      for (let o = 1; o <= 8; o++) {
        const { stored, storedW, storedH } = storedFor(o, upright, width, height)
        const image = sharp(stored, { raw: { width: storedW, height: storedH, channels: 3 } })
        const encoded =
          format === 'png'
            ? image.png()
            : format === 'webp'
              ? image.webp({ lossless: true })
              : image.tiff({ compression: 'lzw' })
        const bytes = await encoded.withMetadata({ orientation: o }).toBuffer()
        const decoded = await decodeImage(bytes, { maxPixels: 1_000_000 })
        assert.deepEqual([decoded.width, decoded.height], [width, height], `orientation ${o}`)
        assert.ok(Buffer.from(decoded.data).equals(upright), `orientation ${o}: pixels differ`)
      }
    })
  }
})
