/**
 * Image bytes → the input tensor of one model, following its manifest `input` contract
 * (docs/zoo-contract.md): decode (first frame, EXIF-upright, alpha onto black, sRGB) → grey if the
 * model takes one channel → resize the shorter side to `resizeShortSide` with `interpolation` →
 * centre crop `size`×`size` → (v/255 − mean) / std → float32 [1, C, size, size].
 *
 * The steps after decoding (pixels-to-tensor.ts) reproduce the evaluation transforms on a PIL
 * image exactly; test/preprocess/ checks this against Pillow itself.
 */
import { decodeImage, type ImageFormat } from './decode.js'
import { pixelsToTensor, type InputContract } from './pixels-to-tensor.js'

export { pixelsToTensor, type InputContract }

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
