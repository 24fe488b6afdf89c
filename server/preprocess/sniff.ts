/**
 * What the first bytes of an upload say it is, decided before libvips sees a single byte.
 *
 * libvips picks its loader from the bytes too, but it can read much more than this server accepts
 * (SVG through librsvg and libxml2, PPM/PFM, FITS, Radiance HDR, JPEG XL, …), and even reading the
 * header of those runs their parsers on untrusted input. Only files whose signature is one of the
 * accepted formats are handed over; a few well-known others are named so the refusal can say what
 * was sent, anything else is "not an image".
 */

export const ACCEPTED_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const
export type ImageFormat = (typeof ACCEPTED_FORMATS)[number]

export type Sniffed =
  | { kind: 'accepted'; format: ImageFormat }
  /** A recognised image or document format this server does not accept. */
  | { kind: 'refused'; format: string }
  | { kind: 'unknown' }

const startsWith = (bytes: Buffer, signature: readonly number[], offset = 0): boolean =>
  bytes.length >= offset + signature.length && signature.every((b, i) => bytes[offset + i] === b)

const ascii = (text: string): number[] => [...Buffer.from(text, 'latin1')]

/** The major and compatible brands of an ISO-BMFF `ftyp` box at the start of the file. */
function isoBrands(bytes: Buffer): string[] | undefined {
  if (!startsWith(bytes, ascii('ftyp'), 4) || bytes.length < 16) return undefined
  const boxSize = Math.min(bytes.readUInt32BE(0), bytes.length, 4096)
  const brands = [bytes.toString('latin1', 8, 12)]
  // After the major brand: 4 bytes minor version, then 4-byte compatible brands to the box end.
  for (let at = 16; at + 4 <= boxSize; at += 4) brands.push(bytes.toString('latin1', at, at + 4))
  return brands
}

const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1'])

/** Text-based formats (SVG, XML) may start with a byte-order mark and whitespace. */
function textStart(bytes: Buffer): string {
  return bytes
    .toString('utf8', 0, Math.min(bytes.length, 256))
    .replace(/^\uFEFF/, '')
    .trimStart()
    .slice(0, 16)
    .toLowerCase()
}

export function sniffFormat(bytes: Buffer): Sniffed {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { kind: 'accepted', format: 'jpeg' }
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    return { kind: 'accepted', format: 'png' }
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) {
    return { kind: 'accepted', format: 'gif' }
  }
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8))
    return { kind: 'accepted', format: 'webp' }
  // Classic TIFF (42) and BigTIFF (43), little- and big-endian.
  if (
    startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) ||
    startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]) ||
    startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) ||
    startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])
  ) {
    return { kind: 'accepted', format: 'tiff' }
  }
  const brands = isoBrands(bytes)
  if (brands) {
    // AVIF is HEIF with AV1 images; decode.ts still checks the compression libheif reports.
    if (brands.includes('avif') || brands.includes('avis')) return { kind: 'accepted', format: 'avif' }
    if (brands.some((b) => HEIF_BRANDS.has(b))) return { kind: 'refused', format: 'heif' }
    if (brands[0] === 'jp2 ' || brands[0] === 'jpx ') return { kind: 'refused', format: 'jp2' }
    return { kind: 'refused', format: `isobmff/${(brands[0] ?? '').trim()}` }
  }
  if (startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20]))
    return { kind: 'refused', format: 'jp2' }
  if (
    startsWith(bytes, [0xff, 0x0a]) ||
    startsWith(bytes, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20])
  ) {
    return { kind: 'refused', format: 'jxl' }
  }
  if (startsWith(bytes, ascii('%PDF'))) return { kind: 'refused', format: 'pdf' }
  if (startsWith(bytes, ascii('BM'))) return { kind: 'refused', format: 'bmp' }
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00])) return { kind: 'refused', format: 'ico' }
  if (startsWith(bytes, ascii('8BPS'))) return { kind: 'refused', format: 'psd' }
  if (startsWith(bytes, ascii('#?RADIANCE')) || startsWith(bytes, ascii('#?RGBE'))) {
    return { kind: 'refused', format: 'hdr' }
  }
  if (startsWith(bytes, ascii('SIMPLE  ='))) return { kind: 'refused', format: 'fits' }
  if (/^P[1-7Ff]\s/.test(bytes.toString('latin1', 0, 3))) return { kind: 'refused', format: 'pnm' }
  const text = textStart(bytes)
  if (text.startsWith('<svg')) return { kind: 'refused', format: 'svg' }
  if (text.startsWith('<?xml') || text.startsWith('<!doctype')) {
    const head = bytes.toString('utf8', 0, Math.min(bytes.length, 1024)).toLowerCase()
    return { kind: 'refused', format: head.includes('<svg') ? 'svg' : 'xml' }
  }
  return { kind: 'unknown' }
}
