/**
 * Tensor data of the Open Inference Protocol: JSON `data` (flat or nested, row-major) and the
 * binary tensor data extension (little-endian, no padding; BYTES elements as a 4-byte
 * little-endian length followed by the bytes). Pure functions; every malformed tensor is an
 * INVALID_PARAMETER error naming the tensor.
 */
import { endianness } from 'node:os'
import { apiError } from '../../errors.js'

const LITTLE_ENDIAN = endianness() === 'LE'

function invalid(message: string, parameter: string): never {
  throw apiError('INVALID_PARAMETER', message, { parameter, location: 'body' })
}

/** Product of the dimensions; every dimension must be a non-negative safe integer. */
export function elementCount(shape: readonly number[], tensor: string): number {
  let count = 1
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      invalid(`shape of tensor '${tensor}' has an invalid dimension ${String(dim)}`, tensor)
    }
    count *= dim
  }
  if (!Number.isSafeInteger(count)) invalid(`shape of tensor '${tensor}' is too large`, tensor)
  return count
}

function describe(value: unknown): string {
  return value === undefined ? 'undefined' : JSON.stringify(value)
}

/**
 * JSON tensor data → float32, in row-major order. Nested arrays are flattened depth-first (the
 * protocol allows any mix of nested and flat); every leaf must be a finite JSON number.
 */
export function float32FromJson(data: unknown, expected: number, tensor: string): Float32Array {
  const out = new Float32Array(expected)
  let n = 0
  const visit = (value: unknown, depth: number): void => {
    if (Array.isArray(value)) {
      if (depth > 32) invalid(`data of tensor '${tensor}' is nested too deeply`, tensor)
      for (const item of value) visit(item, depth + 1)
      return
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      invalid(
        `data of FP32 tensor '${tensor}' must hold numbers only; element ${n} is ${describe(value)}`,
        tensor,
      )
    }
    if (n < expected) out[n] = value
    n++
  }
  visit(data, 0)
  if (n !== expected) {
    invalid(`tensor '${tensor}' has ${n} data elements but its shape holds ${expected}`, tensor)
  }
  return out
}

/** Binary FP32 tensor data → float32 (little-endian on the wire, whatever this host is). */
export function float32FromBinary(bytes: Buffer, expected: number, tensor: string): Float32Array {
  if (bytes.length !== expected * 4) {
    invalid(
      `tensor '${tensor}' has ${bytes.length} bytes of binary data but its shape and FP32 datatype need ${expected * 4}`,
      tensor,
    )
  }
  const out = new Float32Array(expected)
  if (LITTLE_ENDIAN) {
    // Copy through Uint8 views: the slice may start at an offset not aligned to 4 bytes.
    new Uint8Array(out.buffer).set(bytes)
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let i = 0; i < expected; i++) out[i] = view.getFloat32(i * 4, true)
  }
  for (let i = 0; i < expected; i++) {
    if (!Number.isFinite(out[i]))
      invalid(`binary data of tensor '${tensor}' holds a NaN or infinity at element ${i}`, tensor)
  }
  return out
}

/** float32 values → little-endian bytes for a binary response. */
export function float32ToBinary(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength)
  const out = Buffer.alloc(values.length * 4)
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i] ?? 0, i * 4)
  return out
}

/** BYTES elements (UTF-8 strings) → the binary layout: 4-byte LE length, then the bytes. */
export function bytesToBinary(elements: readonly string[]): Buffer {
  const parts: Buffer[] = []
  for (const element of elements) {
    const bytes = Buffer.from(element, 'utf8')
    const length = Buffer.alloc(4)
    length.writeUInt32LE(bytes.length)
    parts.push(length, bytes)
  }
  return Buffer.concat(parts)
}
