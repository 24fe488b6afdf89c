/**
 * OpenAPI 3.1 from the route schemas (@fastify/swagger) and Swagger UI at /docs. Registered before
 * any route so every route — API and health — is collected. `openapi/openapi.json` is this
 * document, written by `npm run generate` and checked for staleness by the tests.
 *
 * POST /v1/classify reads its body itself (raw image or multipart), so no body schema exists to
 * derive the request body from; it is described here instead.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { projectRoot } from '../config.js'
import { IMAGE_CONTENT_TYPES } from '../routes/classify.js'

export const DOCS_PREFIX = '/docs'

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version?: string }
  return pkg.version ?? '0.0.0'
}

const binaryImage = { schema: { type: 'string', format: 'binary' } }

const classifyRequestBody = {
  required: true,
  description:
    'The image, at most MAX_BODY_BYTES: raw bytes, or multipart/form-data with one file part `image`.',
  content: {
    ...Object.fromEntries(IMAGE_CONTENT_TYPES.map((type) => [type, binaryImage])),
    'multipart/form-data': {
      schema: {
        type: 'object',
        required: ['image'],
        properties: { image: { type: 'string', format: 'binary', description: 'The image file.' } },
        additionalProperties: false,
      },
    },
  },
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, Record<string, unknown>>>
}

const openapi: FastifyPluginAsync = async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'AlphaNet Zoo inference API',
        version: packageVersion(),
        description:
          'Image classification with a zoo of AlphaNet sub-networks. Each request states a budget (MFLOPs, latency measured on this server, minimum top-1) and is served by the most accurate ready model within it. Errors are `{statusCode, code, error, message}` with a stable `code` (see ErrorResponse).',
      },
      tags: [
        { name: 'inference', description: 'Classification and model selection' },
        { name: 'models', description: 'The zoo' },
        { name: 'health', description: 'Probes' },
      ],
    },
    refResolver: {
      // Shared schemas keep their $id as component name (ErrorResponse) instead of def-N.
      buildLocalReference: (json, _baseUri, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    transformObject: (documentObject) => {
      if (!('openapiObject' in documentObject)) return documentObject.swaggerObject
      const document = documentObject.openapiObject as OpenApiDocument
      const classify = document.paths?.['/v1/classify']?.post
      if (classify) classify.requestBody = classifyRequestBody
      // The dry run takes its fields as query parameters, a JSON body, or both.
      const selectBody = document.paths?.['/v1/select']?.post?.requestBody as
        { required?: boolean } | undefined
      if (selectBody) selectBody.required = false
      return documentObject.openapiObject
    },
  })
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX })
}

export default fp(openapi, { name: 'openapi' })
