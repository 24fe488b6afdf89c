/**
 * Valid seed images for the fuzzers, encoded with sharp at test time (small, so mutating and
 * decoding them is cheap): every accepted format, and within each the variants that take different
 * decoder paths — grey, alpha, palette, 16-bit, CMYK, progressive/interlaced, animated/multi-page,
 * EXIF-oriented. Mutating valid files reaches far deeper into the decoders than random bytes do.
 */
import { crc32, deflateSync } from 'node:zlib'
import sharp, { type Sharp } from 'sharp'

export interface SeedImage {
  name: string
  /** The Content-Type its format is served under. */
  type: string
  bytes: Buffer
}

/** A deterministic test picture: gradients plus LCG noise, `channels` = 3 or 4. */
export function picture(width: number, height: number, channels: 3 | 4, seed = 1): Buffer {
  let state = seed >>> 0
  const data = Buffer.alloc(width * height * channels)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0
      const i = (y * width + x) * channels
      data[i] = (x * 255) / Math.max(1, width - 1)
      data[i + 1] = (y * 255) / Math.max(1, height - 1)
      data[i + 2] = state >>> 24
      if (channels === 4) data[i + 3] = x < width / 2 ? 255 : (y * 255) / Math.max(1, height - 1)
    }
  }
  return data
}

const W = 24
const H = 20

function raw(channels: 3 | 4 = 3, pages = 1): Sharp {
  const frames = Buffer.concat(Array.from({ length: pages }, (_, p) => picture(W, H, channels, p + 1)))
  return sharp(frames, { raw: { width: W, height: H * pages, channels, pageHeight: H } })
}

/** Builds the seed corpus (about 25 images, each well under 10 kB). */
export async function buildCorpus(): Promise<SeedImage[]> {
  const make = async (name: string, type: string, image: Promise<Buffer>): Promise<SeedImage> => ({
    name,
    type,
    bytes: await image,
  })
  return Promise.all([
    make('jpeg-rgb', 'image/jpeg', raw().jpeg({ quality: 80 }).toBuffer()),
    make('jpeg-progressive', 'image/jpeg', raw().jpeg({ progressive: true }).toBuffer()),
    make('jpeg-grey', 'image/jpeg', raw().greyscale().jpeg().toBuffer()),
    make('jpeg-cmyk', 'image/jpeg', raw().toColourspace('cmyk').jpeg().toBuffer()),
    make('jpeg-exif-6', 'image/jpeg', raw().jpeg().withMetadata({ orientation: 6 }).toBuffer()),
    make('png-rgb', 'image/png', raw().png().toBuffer()),
    make('png-rgba', 'image/png', raw(4).png().toBuffer()),
    make('png-grey', 'image/png', raw().greyscale().png().toBuffer()),
    make('png-grey-alpha', 'image/png', raw(4).toColourspace('b-w').png().toBuffer()),
    make('png-16bit', 'image/png', raw().toColourspace('rgb16').png().toBuffer()),
    make('png-palette', 'image/png', raw().png({ palette: true, colours: 16 }).toBuffer()),
    make('png-interlaced', 'image/png', raw(4).png({ progressive: true }).toBuffer()),
    make('webp-lossy', 'image/webp', raw().webp({ quality: 70 }).toBuffer()),
    make('webp-lossless-alpha', 'image/webp', raw(4).webp({ lossless: true }).toBuffer()),
    make(
      'webp-animated',
      'image/webp',
      raw(3, 3)
        .webp({ loop: 0, delay: [50, 50, 50] })
        .toBuffer(),
    ),
    make('gif', 'image/gif', raw().gif().toBuffer()),
    make(
      'gif-animated',
      'image/gif',
      raw(3, 3)
        .gif({ loop: 0, delay: [50, 50, 50] })
        .toBuffer(),
    ),
    make('tiff-lzw', 'image/tiff', raw().tiff({ compression: 'lzw' }).toBuffer()),
    make('tiff-deflate-alpha', 'image/tiff', raw(4).tiff({ compression: 'deflate' }).toBuffer()),
    make('tiff-cmyk', 'image/tiff', raw().toColourspace('cmyk').tiff().toBuffer()),
    make('tiff-16bit', 'image/tiff', raw().toColourspace('rgb16').tiff().toBuffer()),
    make('tiff-jpeg', 'image/tiff', raw().tiff({ compression: 'jpeg' }).toBuffer()),
    make('tiff-multipage', 'image/tiff', raw(3, 3).tiff().toBuffer()),
    make('avif', 'image/avif', raw().avif({ quality: 50, effort: 0 }).toBuffer()),
    make('avif-alpha', 'image/avif', raw(4).avif({ lossless: true, effort: 0 }).toBuffer()),
  ])
}

export const IMAGE_TYPES = [
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/gif',
  'image/tiff',
  'image/avif',
] as const

/* ---------- decompression bombs: tiny files whose headers declare huge images ---------- */

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

/** A greyscale PNG declaring width × height with `rows` rows of (zero) data actually present. */
export function pngDeclaring(width: number, height: number, rows = 1): Buffer {
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = 0 // greyscale
  const scanlines = Buffer.alloc(Math.min(rows, height) * (width + 1))
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(scanlines, { level: 9 })),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

/** A small valid baseline JPEG whose SOF0 is patched to declare width × height (≤ 65535). */
export async function jpegDeclaring(width: number, height: number): Promise<Buffer> {
  const jpeg = Buffer.from(await raw().jpeg().toBuffer())
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]))
  if (sof < 0) throw new Error('no SOF0 marker in the seed JPEG')
  jpeg.writeUInt16BE(height, sof + 5)
  jpeg.writeUInt16BE(width, sof + 7)
  return jpeg
}

/** A small valid GIF whose logical screen and first frame declare width × height (≤ 65535). */
export async function gifDeclaring(width: number, height: number): Promise<Buffer> {
  const gif = Buffer.from(await raw().gif().toBuffer())
  gif.writeUInt16LE(width, 6)
  gif.writeUInt16LE(height, 8)
  const descriptor = gif.indexOf(0x2c, 13) // image descriptor: 0x2C, left, top, width, height
  if (descriptor < 0) throw new Error('no image descriptor in the seed GIF')
  gif.writeUInt16LE(width, descriptor + 5)
  gif.writeUInt16LE(height, descriptor + 7)
  return gif
}

/** A lossless WebP (VP8L) whose header declares width × height (each ≤ 16384). */
export async function webpDeclaring(width: number, height: number): Promise<Buffer> {
  const webp = Buffer.from(await raw().webp({ lossless: true }).toBuffer())
  const chunk = webp.indexOf(Buffer.from('VP8L', 'latin1'))
  if (chunk < 0) throw new Error('no VP8L chunk in the seed WebP')
  // VP8L: signature 0x2F, then 14 bits width-1, 14 bits height-1, 1 bit alpha, 3 bits version.
  const bits = (width - 1) | ((height - 1) << 14) | (webp.readUInt32LE(chunk + 9) & 0xf0000000)
  webp.writeUInt32LE(bits >>> 0, chunk + 9)
  return webp
}

/** A minimal uncompressed greyscale TIFF declaring width × height with one strip of 16 bytes. */
export function tiffDeclaring(width: number, height: number): Buffer {
  const entries: [tag: number, type: number, value: number][] = [
    [256, 4, width], // ImageWidth (LONG)
    [257, 4, height], // ImageLength
    [258, 3, 8], // BitsPerSample
    [259, 3, 1], // Compression: none
    [262, 3, 1], // Photometric: black is zero
    [273, 4, 0], // StripOffsets (patched below)
    [277, 3, 1], // SamplesPerPixel
    [278, 4, height], // RowsPerStrip
    [279, 4, 16], // StripByteCounts
  ]
  const ifdOffset = 8
  const ifdSize = 2 + entries.length * 12 + 4
  const dataOffset = ifdOffset + ifdSize
  const out = Buffer.alloc(dataOffset + 16)
  out.write('II', 0, 'latin1')
  out.writeUInt16LE(42, 2)
  out.writeUInt32LE(ifdOffset, 4)
  out.writeUInt16LE(entries.length, ifdOffset)
  entries.forEach(([tag, type, value], i) => {
    const at = ifdOffset + 2 + i * 12
    out.writeUInt16LE(tag, at)
    out.writeUInt16LE(type, at + 2)
    out.writeUInt32LE(1, at + 4)
    if (type === 3) out.writeUInt16LE(value, at + 8)
    else out.writeUInt32LE(tag === 273 ? dataOffset : value, at + 8)
  })
  return out
}
