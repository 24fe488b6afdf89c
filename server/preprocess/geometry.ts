/**
 * Where the resize and the centre crop land, exactly as the evaluation transforms compute them
 * (training/alphanet/data/transforms.py: ResizeShortSide then CenterCrop, on a PIL image):
 * - an image whose shorter side already equals `shortSide` is left alone; otherwise the shorter
 *   side becomes `shortSide` and the longer one `round(long · shortSide / short)`;
 * - the crop offset is `round((extent − size) / 2)`.
 * Both use Python's round(), which sends ties to the even neighbour (a 5-pixel margin puts 2
 * pixels before the crop, a 3-pixel margin also 2). torchvision's Resize truncates the longer side
 * instead; the two differ by one pixel for some aspect ratios, and the evaluation is what counts.
 */
import type { Window } from './resample.js'

export interface Size {
  width: number
  height: number
}

/** Output size of resizing the shorter side of width×height to `shortSide`, aspect kept. */
export function resizeShortSide(width: number, height: number, shortSide: number): Size {
  if (Math.min(width, height) === shortSide) return { width, height }
  if (width <= height) return { width: shortSide, height: roundHalfEven((height * shortSide) / width) }
  return { width: roundHalfEven((width * shortSide) / height), height: shortSide }
}

/** Rounds half-way values to the even neighbour, like Python 3's round(). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value)
  const fraction = value - floor
  if (fraction < 0.5) return floor
  if (fraction > 0.5) return floor + 1
  return floor % 2 === 0 ? floor : floor + 1
}

/** The centred size×size window of an image of the given size (which must be at least size×size). */
export function centerCropWindow(image: Size, size: number): Window {
  if (image.width < size || image.height < size) {
    throw new RangeError(`cannot crop ${size}×${size} out of ${image.width}×${image.height}`)
  }
  return {
    left: roundHalfEven((image.width - size) / 2),
    top: roundHalfEven((image.height - size) / 2),
    width: size,
    height: size,
  }
}
