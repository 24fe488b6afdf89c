/**
 * The one catalogue of API errors. Every non-2xx response body is
 * `{ statusCode, code, error, message, ...details }` where `code` is one of the stable machine codes
 * below; clients branch on `code`, never on `message`. The OpenAPI document enumerates the same
 * list (test/errors.test.ts keeps the two in step), so adding a code here documents it.
 */
import { STATUS_CODES } from 'node:http'

export interface ErrorDefinition {
  readonly code: string
  readonly statusCode: number
  /** When a client gets this code; copied into the OpenAPI description of the error schema. */
  readonly description: string
}

/** In one list (not object keys) so a test can prove the codes unique rather than assume it. */
export const ERROR_DEFINITIONS = [
  {
    code: 'MALFORMED_REQUEST',
    statusCode: 400,
    description:
      'The HTTP request itself cannot be parsed (request line, header syntax or framing); the connection is closed after this answer.',
  },
  {
    code: 'INVALID_PARAMETER',
    statusCode: 400,
    description:
      'A query, path or body parameter is unknown, repeated, malformed or out of range (`parameter` names it).',
  },
  {
    code: 'MALFORMED_BODY',
    statusCode: 400,
    description: 'The body cannot be parsed: invalid JSON, broken multipart framing, bad Content-Length.',
  },
  {
    code: 'MISSING_IMAGE',
    statusCode: 400,
    description: 'No image in the request: empty body, or a multipart body without an `image` file part.',
  },
  {
    code: 'IMAGE_DECODE_FAILED',
    statusCode: 400,
    description: 'The image bytes are not a decodable image (corrupt, truncated or not an image at all).',
  },
  {
    code: 'UNAUTHORIZED',
    statusCode: 401,
    description:
      'An admin route was called without `Authorization: Bearer <ADMIN_TOKEN>` or with another token.',
  },
  {
    code: 'ROUTE_NOT_FOUND',
    statusCode: 404,
    description: 'No route matches the method and path.',
  },
  {
    code: 'MODEL_NOT_FOUND',
    statusCode: 404,
    description: 'The zoo has no model of that name.',
  },
  {
    code: 'REQUEST_TIMEOUT',
    statusCode: 408,
    description:
      'The request (headers and body) did not arrive within REQUEST_TIMEOUT_MS; the connection is closed after this answer.',
  },
  {
    code: 'RELOAD_REJECTED',
    statusCode: 409,
    description:
      'POST /admin/reload could not swap in the zoo from ZOO_DIR (invalid manifest, no model loads, a reload already running, or shutting down); the previous zoo keeps serving and `message` says why.',
  },
  {
    code: 'BODY_TOO_LARGE',
    statusCode: 413,
    description: 'The request body (or the multipart image part) exceeds MAX_BODY_BYTES.',
  },
  {
    code: 'IMAGE_TOO_LARGE',
    statusCode: 413,
    description: 'The decoded image has more pixels (width × height) than MAX_IMAGE_PIXELS.',
  },
  {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    statusCode: 415,
    description:
      'The Content-Type is not accepted by this route, or the image format is not one of JPEG, PNG, WebP, GIF, TIFF, AVIF.',
  },
  {
    code: 'BUDGET_INFEASIBLE',
    statusCode: 422,
    description:
      'No ready model satisfies every budget constraint and onInfeasible=reject; `cheapest` and `fastest` name the models closest to feasible.',
  },
  {
    code: 'RATE_LIMITED',
    statusCode: 429,
    description:
      'This client sent more than RATE_LIMIT_MAX requests within RATE_LIMIT_WINDOW_MS (rate limiting is off unless configured); retry after `Retry-After` seconds.',
  },
  {
    code: 'HEADERS_TOO_LARGE',
    statusCode: 431,
    description:
      'The request line and headers together exceed MAX_HEADER_BYTES (a very long URL counts too); the connection is closed after this answer.',
  },
  {
    code: 'MODEL_NOT_READY',
    statusCode: 503,
    description:
      'The named model exists but is not serving (still warming up, or failed to load: see `reason`).',
  },
  {
    code: 'NOT_READY',
    statusCode: 503,
    description: 'The server has no ready model yet (zoo loading or warming up).',
  },
  {
    code: 'OVERLOADED',
    statusCode: 503,
    description:
      'The server is shedding load (a full model queue; no model meeting `maxLatencyMs` under the current load although one would on an idle server; or event-loop delay / memory over its configured limit); retry after `Retry-After` seconds, ideally on another instance.',
  },
  {
    code: 'SHUTTING_DOWN',
    statusCode: 503,
    description: 'The server is draining before exit; retry on another instance.',
  },
  {
    code: 'DEADLINE_EXCEEDED',
    statusCode: 504,
    description:
      'The request could not be answered within its deadline (its `maxLatencyMs` budget when the chosen model was predicted to meet it, else INFERENCE_TIMEOUT_MS): it was refused before any compute, as soon as even an immediate run could no longer finish in time. `remainingMs` and `neededMs` give the figures.',
  },
  {
    code: 'CLIENT_CLOSED',
    statusCode: 499,
    description:
      'The client closed the connection before its answer was ready; the work still queued for it was dropped. Never delivered (there is no one to deliver it to) — it names the outcome in logs and metrics.',
  },
  {
    code: 'INFERENCE_FAILED',
    statusCode: 500,
    description: 'The model failed while running on valid input (a server-side fault).',
  },
  {
    code: 'INTERNAL_ERROR',
    statusCode: 500,
    description: 'An unexpected server-side fault; details are in the server log, not the response.',
  },
] as const satisfies readonly ErrorDefinition[]

export type ErrorCode = (typeof ERROR_DEFINITIONS)[number]['code']

export const ERROR_CODES: readonly ErrorCode[] = ERROR_DEFINITIONS.map((d) => d.code)

const BY_CODE = new Map<string, ErrorDefinition>(ERROR_DEFINITIONS.map((d) => [d.code, d]))

export function errorDefinition(code: ErrorCode): ErrorDefinition {
  const definition = BY_CODE.get(code)
  if (!definition) throw new Error(`unknown error code ${code}`)
  return definition
}

/** Extra top-level fields of an error body; they may not shadow the four standard ones. */
export type ErrorDetails = Record<string, unknown>

const RESERVED_FIELDS = new Set(['statusCode', 'code', 'error', 'message'])

export interface ErrorBody {
  statusCode: number
  code: ErrorCode
  error: string
  message: string
  [detail: string]: unknown
}

/** An error a handler throws on purpose; the error handler renders it verbatim. */
export class ApiError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ApiError'
    this.code = code
    this.statusCode = errorDefinition(code).statusCode
    for (const key of Object.keys(details)) {
      if (RESERVED_FIELDS.has(key)) throw new Error(`error detail "${key}" would shadow a standard field`)
    }
    this.details = details
  }

  toBody(): ErrorBody {
    return {
      statusCode: this.statusCode,
      code: this.code,
      error: STATUS_CODES[this.statusCode] ?? (this.statusCode === 499 ? 'Client Closed Request' : 'Error'),
      message: this.message,
      ...this.details,
    }
  }
}

export function apiError(
  code: ErrorCode,
  message: string,
  details?: ErrorDetails,
  options?: { cause?: unknown },
): ApiError {
  return new ApiError(code, message, details, options)
}

export function isApiError(value: unknown): value is ApiError {
  return value instanceof ApiError
}
