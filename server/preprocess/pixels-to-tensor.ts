/**
 * Decoded 8-bit RGB pixels → the model input tensor for an input contract: grey if the model takes
 * one channel → resize the shorter side to `resizeShortSide` with `interpolation` → centre crop
 * `size`×`size` → (v/255 − mean) / std → float32 [1, C, size, size]. Pure and synchronous, with no
 * dependency on sharp, so it can run on any thread (see resample.ts, geometry.ts, tensor.ts).
 */
import type { ModelInput } from '../zoo/manifest-schema.js'
import { centerCropWindow, resizeShortSide } from './geometry.js'
import { resizeWindow, type PixelBuffer } from './resample.js'
import { toLuminance, toNormalizedNCHW } from './tensor.js'

/** The contract part of a model input that preprocessing reads. */
export type InputContract = Pick<
  ModelInput,
  'size' | 'channels' | 'mean' | 'std' | 'resizeShortSide' | 'interpolation'
>

export function pixelsToTensor(rgb: PixelBuffer, contract: InputContract): Float32Array {
  const pixels = contract.channels === 1 ? toLuminance(rgb) : rgb
  const target = resizeShortSide(pixels.width, pixels.height, contract.resizeShortSide)
  const window = centerCropWindow(target, contract.size)
  const cropped = resizeWindow(pixels, target.width, target.height, window, contract.interpolation)
  return toNormalizedNCHW(cropped, contract.mean, contract.std)
}
