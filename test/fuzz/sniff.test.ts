/**
 * Format sniffing before libvips (server/preprocess/sniff.ts): accepted signatures pass, known
 * other formats are named and refused without being parsed, unknown bytes are "not an image", and
 * the answer never depends on anything but the first bytes. Regression for: SVG, PPM, FITS and
 * other formats libvips can read were parsed (SVG through librsvg/libxml2) just to be refused.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { isApiError } from '../../server/errors.js'
import { decodeImage } from '../../server/preprocess/decode.js'
import { sniffFormat } from '../../server/preprocess/sniff.js'
import { buildCorpus } from './corpus.js'
import { fuzz } from './support.js'

const LIMIT = { maxPixels: 1_000_000 }

async function refusal(bytes: Buffer): Promise<{ code: string; format?: unknown }> {
  try {
    await decodeImage(bytes, LIMIT)
  } catch (error) {
    assert.ok(isApiError(error), String(error))
    return { code: error.code, format: error.details.format }
  }
  throw new Error('decoded, expected a refusal')
}

describe('format sniffing', () => {
  it('every seed image is sniffed as the format it was encoded in', async () => {
    for (const seed of await buildCorpus()) {
      const expected = seed.type.replace('image/', '')
      assert.deepEqual(sniffFormat(seed.bytes), { kind: 'accepted', format: expected }, seed.name)
    }
  })

  it('formats libvips could read but this server does not are named and refused unparsed', async () => {
    const cases: [string, Buffer][] = [
      ['svg', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>')],
      ['svg', Buffer.from('\uFEFF  <?xml version="1.0"?>\n<!DOCTYPE svg><svg width="1" height="1"/>')],
      ['xml', Buffer.from('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')],
      ['pnm', Buffer.from('P6\n2 2\n255\n' + '\u0000'.repeat(12), 'latin1')],
      ['pnm', Buffer.from('PF\n1 1\n-1.0\n\u0000\u0000\u0000\u0000', 'latin1')],
      ['fits', Buffer.from('SIMPLE  =                    T'.padEnd(2880, ' '))],
      ['hdr', Buffer.from('#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 1 +X 1\n')],
      ['pdf', Buffer.from('%PDF-1.4\n%âãÏÓ\n')],
      ['bmp', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)])],
      ['psd', Buffer.concat([Buffer.from('8BPS'), Buffer.alloc(40)])],
      ['jxl', Buffer.from([0xff, 0x0a, 0x00, 0x00])],
      ['heif', Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypheic\0\0\0\0mif1heic')])],
      ['jp2', Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a])],
    ]
    for (const [format, bytes] of cases) {
      assert.deepEqual(sniffFormat(bytes), { kind: 'refused', format }, format)
      assert.deepEqual(await refusal(bytes), { code: 'UNSUPPORTED_MEDIA_TYPE', format }, format)
    }
  })

  it('a polyglot (TIFF signature, PNG body) is refused, not decoded as either', async () => {
    const png = (await buildCorpus()).find((s) => s.name === 'png-rgb')?.bytes ?? Buffer.alloc(0)
    const mixed = Buffer.concat([Buffer.from([0x49, 0x49, 0x2a, 0x00]), png])
    assert.deepEqual(sniffFormat(mixed), { kind: 'accepted', format: 'tiff' })
    assert.equal((await refusal(mixed)).code, 'IMAGE_DECODE_FAILED')
  })

  it('random bytes: the sniffed kind decides the refusal; never an exception of another kind', async (t) => {
    await fuzz(
      t,
      'sniff random',
      300,
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 64 }), async (raw) => {
        const bytes = Buffer.from(raw)
        const sniffed = sniffFormat(bytes)
        if (bytes.length === 0) assert.equal(sniffed.kind, 'unknown')
        if (sniffed.kind === 'accepted') return // tiny truncated headers: covered by images.test.ts
        const { code } = await refusal(bytes)
        assert.equal(code, sniffed.kind === 'refused' ? 'UNSUPPORTED_MEDIA_TYPE' : 'IMAGE_DECODE_FAILED')
      }),
    )
  })
})
