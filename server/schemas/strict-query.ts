/**
 * Query strings are checked before schema validation because Ajv's coercion is lenient in ways a
 * budget must not be: it turns "0x10" into 16, " 5 " into 5 and "Infinity" into a number, and a
 * repeated parameter would reach the handler as an array. Here every parameter must be known,
 * given once, and numeric ones must be plain decimals; Ajv then checks types and ranges.
 * JSON bodies get the unknown-field check too (Fastify's default Ajv setup removes unknown
 * properties silently instead of rejecting them), and a type check without coercion: in JSON a
 * number is a number, and "5" is a client bug worth reporting.
 */
import type { FastifyRequest } from 'fastify'
import { apiError } from '../errors.js'

const DECIMAL = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/
const INTEGER = /^\d+$/

interface ObjectSchemaLike {
  properties: Record<string, object>
}

/** A preValidation hook enforcing the rules above for the query schema `schema`. */
export function strictQuery(schema: ObjectSchemaLike): (request: FastifyRequest) => Promise<void> {
  const accepted = Object.keys(schema.properties)
  return async (request) => {
    const query = request.query as Record<string, unknown> | undefined
    for (const [key, value] of Object.entries(query ?? {})) {
      const detail = { parameter: key, location: 'querystring' }
      if (!Object.hasOwn(schema.properties, key)) {
        const list = accepted.length > 0 ? `accepted: ${accepted.join(', ')}` : 'this route takes none'
        throw apiError('INVALID_PARAMETER', `unknown query parameter "${key}" (${list})`, detail)
      }
      if (Array.isArray(value)) {
        throw apiError(
          'INVALID_PARAMETER',
          `query parameter "${key}" is given ${value.length} times; give it once`,
          detail,
        )
      }
      if (typeof value !== 'string') continue
      const type = (schema.properties[key] as { type?: unknown } | undefined)?.type
      if (type === 'number' && DECIMAL.test(value) && !Number.isFinite(Number(value))) {
        throw apiError('INVALID_PARAMETER', `query parameter "${key}" is out of range: ${value}`, detail)
      }
      if (type === 'number' && !DECIMAL.test(value)) {
        throw apiError(
          'INVALID_PARAMETER',
          `query parameter "${key}" must be a plain decimal number, got ${JSON.stringify(value)}`,
          detail,
        )
      }
      if (type === 'integer' && !INTEGER.test(value)) {
        throw apiError(
          'INVALID_PARAMETER',
          `query parameter "${key}" must be a non-negative integer, got ${JSON.stringify(value)}`,
          detail,
        )
      }
    }
  }
}

const JSON_TYPES: Readonly<Record<string, (value: unknown) => boolean>> = {
  number: (value) => typeof value === 'number',
  integer: (value) => Number.isInteger(value),
  string: (value) => typeof value === 'string',
  boolean: (value) => typeof value === 'boolean',
}

/** A preValidation hook refusing JSON body fields that `schema` does not declare or mistypes. */
export function strictBody(schema: ObjectSchemaLike): (request: FastifyRequest) => Promise<void> {
  const accepted = Object.keys(schema.properties)
  return async (request) => {
    const body: unknown = request.body
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return
    for (const [key, value] of Object.entries(body)) {
      const detail = { parameter: key, location: 'body' }
      if (!Object.hasOwn(schema.properties, key)) {
        throw apiError(
          'INVALID_PARAMETER',
          `unknown body field "${key}" (accepted: ${accepted.join(', ')})`,
          detail,
        )
      }
      const type = (schema.properties[key] as { type?: unknown }).type
      const check = typeof type === 'string' ? JSON_TYPES[type] : undefined
      if (check && !check(value)) {
        throw apiError(
          'INVALID_PARAMETER',
          `body field "${key}" must be a JSON ${String(type)}, got ${JSON.stringify(value)}`,
          detail,
        )
      }
    }
  }
}
