/**
 * Untrusted image bytes → 8-bit sRGB pixels, with sharp (libvips, off the event loop).
 *
 * - Formats: JPEG, PNG, WebP, GIF, TIFF and AVIF only, detected from the bytes (the declared
 *   Content-Type only chose the body parser). libvips reads more (SVG, PDF, HEIC, JPEG 2000, …);
 *   those are refused from their signature before libvips parses anything (sniff.ts), and a file
 *   whose signature and decoded format disagree is refused too.
 * - Safety: the pixel count is checked against MAX_IMAGE_PIXELS from the header before decoding
 *   (`limitInputPixels` guards the decoder too), and at most MAX_IMAGE_PIXELS decode at once per
 *   thread (pixel-budget.ts), so tiny uploads declaring huge images cannot exhaust memory;
 *   `failOn: 'error'` rejects truncated or corrupt data but tolerates benign encoder warnings (odd
 *   markers, trailing bytes) that real cameras emit.
 * - Animated GIF/WebP and multi-page TIFF: the first frame/page only.
 * - EXIF orientation is applied, so the pixels are upright as a viewer shows them (Pillow's
 *   ImageOps.exif_transpose).
 * - Alpha is composited onto black: `floor(colour · alpha / 255)`. Evaluation images have no alpha
 *   (Fashion-MNIST draws light garments on a black background); a black matte keeps a cut-out
 *   garment on the background the models were trained on, and equals Pillow's convert('RGB') for
 *   the common case of encoders that store fully transparent pixels as black.
 * - Grey inputs are expanded to three equal channels; 16-bit inputs are reduced to 8 bits; an
 *   embedded ICC profile is honoured when converting to sRGB.
 */
import sharp, { type Metadata } from 'sharp'
import { apiError, type ApiError } from '../errors.js'
import type { PixelBuffer } from './resample.js'
import { DecodeRate } from './decode-rate.js'
import { PixelBudget } from './pixel-budget.js'
import { ACCEPTED_FORMATS, sniffFormat, type ImageFormat } from './sniff.js'

export { ACCEPTED_FORMATS, type ImageFormat }

/** This thread's decodes in progress (each worker thread importing this module has its own). */
export const decodingPixels = new PixelBudget()

/** This thread's decode speed for large images (decode-rate.ts). */
export const decodeRate = new DecodeRate()

// libvips' operation cache would keep recent uploads' pixels in memory (up to 50 MB) for reuse
// that never comes — every upload is a different image — and hold client data past its request.
sharp.cache(false)

export interface DecodeOptions {
  /** Largest accepted width × height (MAX_IMAGE_PIXELS). */
  maxPixels: number
  /**
   * The request's deadline as epoch milliseconds (`performance.timeOrigin + performance.now()`,
   * comparable across threads). An image still waiting for its turn to decode when the deadline
   * has passed is dropped with DEADLINE_EXCEEDED instead of being decoded for nobody: under
   * overload, decodes of already-answered requests would otherwise pile up and starve live ones.
   */
  deadline?: number
  /** Aborted when the request's client has gone: a decode still waiting for its turn is dropped. */
  signal?: AbortSignal
}

export interface DecodedImage extends PixelBuffer {
  channels: 3
  format: ImageFormat
}

/** The accepted format of libvips' metadata, or undefined (AVIF is HEIF with AV1 compression). */
function acceptedFormat(metadata: Metadata): ImageFormat | undefined {
  switch (metadata.format) {
    case 'jpeg':
    case 'png':
    case 'webp':
    case 'gif':
    case 'tiff':
      return metadata.format
    case 'heif':
      return metadata.compression === 'av1' ? 'avif' : undefined
    default:
      return undefined
  }
}

function isPixelLimitError(error: unknown): boolean {
  return error instanceof Error && /exceeds pixel limit/i.test(error.message)
}

function decodeFailure(error: unknown) {
  if (isPixelLimitError(error)) {
    return apiError(
      'IMAGE_TOO_LARGE',
      'the image has more pixels than this server accepts',
      {},
      { cause: error },
    )
  }
  // libvips repeats a decoder's complaint once per pass ("…65500 pixels\n…65500 pixels"): once is enough.
  const text = error instanceof Error ? error.message : String(error)
  const reason = [...new Set(text.split('\n').map((line) => line.trim()))].filter(Boolean).join('; ')
  return apiError('IMAGE_DECODE_FAILED', `the image could not be decoded: ${reason}`, {}, { cause: error })
}

function refuseFormat(found: string) {
  return apiError(
    'UNSUPPORTED_MEDIA_TYPE',
    `image format ${found} is not accepted (accepted: ${ACCEPTED_FORMATS.join(', ')})`,
    { format: found },
  )
}

export async function decodeImage(bytes: Buffer, options: DecodeOptions): Promise<DecodedImage> {
  // Only bytes that carry an accepted format's signature reach libvips at all (see sniff.ts).
  const sniffed = sniffFormat(bytes)
  if (sniffed.kind === 'refused') throw refuseFormat(sniffed.format)
  if (sniffed.kind === 'unknown') {
    throw apiError(
      'IMAGE_DECODE_FAILED',
      `the bytes are not an image in an accepted format (accepted: ${ACCEPTED_FORMATS.join(', ')})`,
    )
  }

  const image = sharp(bytes, {
    failOn: 'error',
    limitInputPixels: options.maxPixels,
    autoOrient: true,
    pages: 1,
  })

  let metadata: Metadata
  try {
    // Header only; the limit is checked below so the error can name the dimensions (the decode
    // itself still enforces limitInputPixels).
    metadata = await sharp(bytes, { failOn: 'error', limitInputPixels: false, pages: 1 }).metadata()
  } catch (error) {
    throw decodeFailure(error)
  }
  const format = acceptedFormat(metadata)
  if (!format) {
    throw refuseFormat(
      metadata.format === 'heif' ? `heif/${metadata.compression ?? 'unknown'}` : metadata.format,
    )
  }
  if (format !== sniffed.format) {
    // A polyglot: the signature says one format, libvips read another. Trust neither.
    throw apiError(
      'IMAGE_DECODE_FAILED',
      `the file starts like ${sniffed.format} but decodes as ${format}; refusing an ambiguous image`,
    )
  }
  const pixels = metadata.width * metadata.height
  if (pixels > options.maxPixels) {
    throw apiError(
      'IMAGE_TOO_LARGE',
      `the image is ${metadata.width}×${metadata.height} = ${pixels} pixels; at most ${options.maxPixels} are accepted`,
      { width: metadata.width, height: metadata.height, maxPixels: options.maxPixels },
    )
  }

  // A large image that cannot be decoded before the deadline is refused now, from its header.
  const size = `${metadata.width}×${metadata.height}`
  refuseIfTooLate(options.deadline, decodeRate.predictMs(pixels), size)
  // Bounded memory: at most MAX_IMAGE_PIXELS decoding at once in this thread (pixel-budget.ts).
  const release = await decodingPixels.acquire(pixels, options.maxPixels)
  try {
    if (options.signal?.aborted === true) throw clientClosed('decoded')
    // Waiting for the budget took time: the deadline may have passed, or come too close.
    refuseIfTooLate(options.deadline, decodeRate.predictMs(pixels) ?? 0, size)
  } catch (error) {
    release()
    throw error
  }
  try {
    const begin = performance.now()
    const { data, info } = await image
      .flatten({ background: { r: 0, g: 0, b: 0 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true })
    decodeRate.observe(pixels, performance.now() - begin)
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`)
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      channels: 3,
      format,
    }
  } catch (error) {
    throw decodeFailure(error)
  } finally {
    release()
  }
}

/**
 * DEADLINE_EXCEEDED when `deadline` (epoch ms) has passed, or when decoding for `neededMs` more
 * would end after it; nothing when either is unknown.
 */
function refuseIfTooLate(deadline: number | undefined, neededMs: number | undefined, size: string): void {
  if (deadline === undefined || neededMs === undefined) return
  const now = performance.timeOrigin + performance.now()
  if (now + neededMs <= deadline) return
  const left = deadline - now
  throw apiError(
    'DEADLINE_EXCEEDED',
    left < 0
      ? `the request's deadline passed ${Math.round(-left)} ms before its image could be decoded`
      : `decoding this ${size} image takes ≈${Math.round(neededMs)} ms here, but the request's deadline is ${Math.round(left)} ms away`,
    { remainingMs: Math.round(left), neededMs: Math.round(neededMs) },
  )
}

/** The error of work dropped because its client has gone (nobody will read the answer). */
export function clientClosed(stage: string): ApiError {
  return apiError('CLIENT_CLOSED', `the client closed the connection before its image could be ${stage}`)
}
