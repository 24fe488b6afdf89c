/**
 * Encoded image bytes → one model's input tensor: decode (decode.ts), then resample and normalise
 * per the model's input contract (pixels-to-tensor.ts). Run in a worker thread — the
 * preprocessing worker under load, the inference worker itself when it is idle — never on the
 * HTTP event loop.
 */
import { ApiError, isApiError } from '../errors.js'
import { epochMs, type ItemError } from '../runtime/worker-protocol.js'
import { clientClosed, decodeImage } from './decode.js'
import { pixelsToTensor, type InputContract } from './pixels-to-tensor.js'

export interface ImageRequest {
  bytes: Uint8Array
  /** MAX_IMAGE_PIXELS. */
  maxPixels: number
  /** The request's deadline, epoch ms: past it the image is dropped (DEADLINE_EXCEEDED) unread. */
  deadline: number
}

/**
 * The tensor of `image` for `contract`, or a coded error: the decoder's (IMAGE_DECODE_FAILED,
 * IMAGE_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE), DEADLINE_EXCEEDED, or CLIENT_CLOSED when `signal`
 * aborts first.
 */
export async function imageToTensor(
  image: ImageRequest,
  contract: InputContract,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const { bytes, maxPixels, deadline } = image
  const pixels = await decodeImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
    maxPixels,
    deadline,
    ...(signal && { signal }),
  })
  if (signal?.aborted === true) throw clientClosed('preprocessed')
  // Work for a request that is already out of time is dropped, not done for nobody.
  const now = epochMs()
  if (now > deadline) {
    throw new ApiError(
      'DEADLINE_EXCEEDED',
      `the request's deadline passed ${Math.round(now - deadline)} ms before its image could be preprocessed`,
      { remainingMs: Math.round(deadline - now) },
    )
  }
  return pixelsToTensor(pixels, contract)
}

/** A failure of one image as the coded error its reply carries back to the main thread. */
export function itemError(error: unknown): ItemError {
  if (isApiError(error)) return { code: error.code, message: error.message, details: error.details }
  return {
    code: 'INFERENCE_FAILED',
    message: `preprocessing failed: ${error instanceof Error ? error.message : String(error)}`,
  }
}
