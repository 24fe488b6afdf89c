/**
 * The body of POST /v2/…/infer, per the binary tensor data extension: without the
 * Inference-Header-Content-Length header the body is the JSON request; with it, the first N bytes
 * are the JSON request and the rest holds the binary tensors in input order; N = 0 is a "raw
 * binary request" (only the one input tensor's bytes, batch 1, every output returned binary).
 * Responses carrying binary outputs are framed the same way.
 */
import { apiError } from '../../errors.js'

export const HEADER_LENGTH_HEADER = 'inference-header-content-length'

export interface SplitBody {
  /** The JSON request text; null for a raw binary request. */
  json: string | null
  /** The bytes after the JSON: binary tensor data in input order. */
  binary: Buffer
}

function headerValue(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) {
    throw apiError('INVALID_PARAMETER', `the ${HEADER_LENGTH_HEADER} header is given more than once`, {
      parameter: HEADER_LENGTH_HEADER,
      location: 'headers',
    })
  }
  return value
}

export function splitBody(body: unknown, headerLength: string | string[] | undefined): SplitBody {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0)
  const declared = headerValue(headerLength)
  if (declared === undefined) {
    if (bytes.length === 0) {
      throw apiError('MALFORMED_BODY', 'the inference request body is empty; send the JSON inference request')
    }
    return { json: bytes.toString('utf8'), binary: Buffer.alloc(0) }
  }
  const trimmed = declared.trim()
  const length = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN
  if (!Number.isSafeInteger(length) || length > bytes.length) {
    throw apiError(
      'INVALID_PARAMETER',
      `Unable to parse ${HEADER_LENGTH_HEADER}, value is out of range [ 0, ${bytes.length} ], got: ${JSON.stringify(declared)}`,
      { parameter: HEADER_LENGTH_HEADER, location: 'headers' },
    )
  }
  if (length === 0) return { json: null, binary: bytes }
  return { json: bytes.subarray(0, length).toString('utf8'), binary: bytes.subarray(length) }
}

export function parseJsonHeader(json: string): unknown {
  try {
    return JSON.parse(json) as unknown
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw apiError('MALFORMED_BODY', `failed to parse the request JSON buffer: ${reason}`)
  }
}

/** A response with binary outputs: the JSON header followed by the tensors' bytes. */
export function frameBinaryResponse(
  header: unknown,
  tensors: readonly Buffer[],
): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length }
}
