/**
 * Catalogue errors as gRPC statuses. The status code is the protocol's meaning of the catalogue
 * code (NOT_FOUND for an unknown model, INVALID_ARGUMENT for a bad tensor, UNAVAILABLE when the
 * server sheds load or drains, …); trailing metadata carries the stable catalogue code
 * (`error-code`), and a refusal that says when to come back carries it three ways: `retry-after`
 * (seconds, as the HTTP header), `grpc-retry-pushback-ms` (which gRPC's own retry policy honours)
 * and a google.rpc.RetryInfo in `grpc-status-details-bin` (the rich error model).
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js'
import type { ApiError, ErrorCode } from '../errors.js'

export const ERROR_CODE_KEY = 'error-code'
export const RETRY_AFTER_KEY = 'retry-after'
export const RETRY_PUSHBACK_KEY = 'grpc-retry-pushback-ms'
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin'
export const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo'

const STATUS_OF: Readonly<Record<ErrorCode, status>> = {
  MALFORMED_REQUEST: status.INVALID_ARGUMENT,
  INVALID_PARAMETER: status.INVALID_ARGUMENT,
  MALFORMED_BODY: status.INVALID_ARGUMENT,
  MISSING_IMAGE: status.INVALID_ARGUMENT,
  IMAGE_DECODE_FAILED: status.INVALID_ARGUMENT,
  UNSUPPORTED_MEDIA_TYPE: status.INVALID_ARGUMENT,
  // A budget no model meets is a request that cannot be served as asked (REST /v2 answers 400).
  BUDGET_INFEASIBLE: status.INVALID_ARGUMENT,
  UNAUTHORIZED: status.UNAUTHENTICATED,
  ROUTE_NOT_FOUND: status.UNIMPLEMENTED,
  MODEL_NOT_FOUND: status.NOT_FOUND,
  REQUEST_TIMEOUT: status.DEADLINE_EXCEEDED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  RELOAD_REJECTED: status.FAILED_PRECONDITION,
  BODY_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  IMAGE_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  HEADERS_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  MODEL_NOT_READY: status.UNAVAILABLE,
  NOT_READY: status.UNAVAILABLE,
  OVERLOADED: status.UNAVAILABLE,
  SHUTTING_DOWN: status.UNAVAILABLE,
  CLIENT_CLOSED: status.CANCELLED,
  INFERENCE_FAILED: status.INTERNAL,
  INTERNAL_ERROR: status.INTERNAL,
}

export function grpcStatusOf(code: ErrorCode): status {
  return STATUS_OF[code]
}

// Protocol Buffers wire format, for the two small google.rpc messages sent with a retry hint.
function varint(value: number): Buffer {
  const bytes: number[] = []
  let rest = value
  while (rest > 0x7f) {
    bytes.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  bytes.push(rest)
  return Buffer.from(bytes)
}
const field = (number: number, wireType: number) => varint(number * 8 + wireType)
const varintField = (number: number, value: number) => Buffer.concat([field(number, 0), varint(value)])
const bytesField = (number: number, value: Buffer) =>
  Buffer.concat([field(number, 2), varint(value.length), value])

/**
 * google.rpc.Status { code, message, details: [Any { RetryInfo { retry_delay: Duration } }] }.
 * Code and message repeat the call's status, as the rich error model requires.
 */
export function retryStatusDetails(code: status, message: string, retryAfterMs: number): Buffer {
  const seconds = Math.floor(retryAfterMs / 1000)
  const nanos = Math.round((retryAfterMs - seconds * 1000) * 1e6)
  const duration = Buffer.concat([
    seconds > 0 ? varintField(1, seconds) : Buffer.alloc(0),
    nanos > 0 ? varintField(2, nanos) : Buffer.alloc(0),
  ])
  const retryInfo = bytesField(1, duration)
  const any = Buffer.concat([bytesField(1, Buffer.from(RETRY_INFO_TYPE)), bytesField(2, retryInfo)])
  return Buffer.concat([
    code === status.OK ? Buffer.alloc(0) : varintField(1, code),
    bytesField(2, Buffer.from(message, 'utf8')),
    bytesField(3, any),
  ])
}

/** The error a handler passes to its callback (or emits) for a catalogue error. */
export function toServiceError(error: ApiError): Partial<ServiceError> {
  const code = grpcStatusOf(error.code)
  const metadata = new Metadata()
  metadata.set(ERROR_CODE_KEY, error.code)
  const seconds = error.details.retryAfterS
  if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0) {
    const wholeSeconds = Math.max(1, Math.ceil(seconds))
    metadata.set(RETRY_AFTER_KEY, String(wholeSeconds))
    metadata.set(RETRY_PUSHBACK_KEY, String(wholeSeconds * 1000))
    metadata.set(STATUS_DETAILS_KEY, retryStatusDetails(code, error.message, wholeSeconds * 1000))
  }
  return { code, details: error.message, metadata }
}
