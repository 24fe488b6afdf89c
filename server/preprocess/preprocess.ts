/**
 * Image bytes → the input tensor of one model, following its manifest `input` contract
 * (docs/zoo-contract.md): decode (first frame, EXIF-upright, alpha onto black, sRGB) → grey if the
 * model takes one channel → resize the shorter side to `resizeShortSide` with `interpolation` →
 * centre crop `size`×`size` → (v/255 − mean) / std → float32 [1, C, size, size].
 *
 * The steps after decoding reproduce torchvision's `Grayscale → Resize → CenterCrop → ToTensor →
 * Normalize` on a PIL image exactly (see resample.ts, geometry.ts, tensor.ts); test/preprocess/
 * checks this against Pillow itself.
 */
import type { ModelInput } from '../zoo/manifest-schema.js'
import { decodeImage, type ImageFormat } from './decode.js'
import { centerCropWindow, resizeShortSide } from './geometry.js'
import { resizeWindow, type PixelBuffer } from './resample.js'
import { toLuminance, toNormalizedNCHW } from './tensor.js'

export interface PreprocessOptions {
  /** Largest accepted width × height of the decoded image. */
  maxPixels: number
}

export interface PreprocessedImage {
  tensor: Float32Array
  dims: [1, number, number, number]
  /** What was decoded: format and upright size before resizing. */
  source: { format: ImageFormat; width: number; height: number }
}

/** The contract part of a model input that preprocessing reads. */
export type InputContract = Pick<
  ModelInput,
  'size' | 'channels' | 'mean' | 'std' | 'resizeShortSide' | 'interpolation'
>

/** Decoded 8-bit RGB pixels → the tensor for `contract` (pure, synchronous). */
export function pixelsToTensor(rgb: PixelBuffer, contract: InputContract): Float32Array {
  const pixels = contract.channels === 1 ? toLuminance(rgb) : rgb
  const target = resizeShortSide(pixels.width, pixels.height, contract.resizeShortSide)
  const window = centerCropWindow(target, contract.size)
  const cropped = resizeWindow(pixels, target.width, target.height, window, contract.interpolation)
  return toNormalizedNCHW(cropped, contract.mean, contract.std)
}

export async function preprocessImage(
  bytes: Buffer,
  contract: InputContract,
  options: PreprocessOptions,
): Promise<PreprocessedImage> {
  const decoded = await decodeImage(bytes, { maxPixels: options.maxPixels })
  return {
    tensor: pixelsToTensor(decoded, contract),
    dims: [1, contract.channels, contract.size, contract.size],
    source: { format: decoded.format, width: decoded.width, height: decoded.height },
  }
}
