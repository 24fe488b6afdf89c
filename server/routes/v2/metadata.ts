/**
 * Health and metadata of the Open Inference Protocol:
 *   GET /v2/health/live — 200 `{"live": true}`;
 *   GET /v2/health/ready — `{"ready": bool}`, 200 when every model of the zoo serves, else 400 (the
 *     protocol's meaning; GET /readyz is the weaker "at least one model serves", see routes/health.ts);
 *   GET /v2 and /v2/ — server metadata with the extensions supported;
 *   GET /v2/models/{name}[/versions/{v}] — model metadata;
 *   GET /v2/models/{name}[/versions/{v}]/ready — `{"name", "ready"}`: 200 ready, 400 not, 404 unknown.
 * Not ready answers 400 as Triton does: a probe needs a non-2xx status, the body says the same.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { projectRoot } from '../../config.js'
import { v2ErrorResponses } from './errors.js'
import { autoMetadata, isModelReady, isServerReady, modelMetadata, resolveTarget } from './models.js'
import {
  LiveSchema,
  ModelMetadataSchema,
  ModelParamsSchema,
  ModelReadySchema,
  ReadySchema,
  ServerMetadataSchema,
  VersionedModelParamsSchema,
  type ModelMetadata,
} from './schemas.js'

export const SERVER_NAME = 'alphanet-zoo'
export const EXTENSIONS = ['classification', 'binary_tensor_data', 'alphanet_budget_selection'] as const

export function serverVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version?: string }
  return pkg.version ?? '0.0.0'
}

const TAGS = ['open-inference']

const metadataRoutes: FastifyPluginAsync = async (app) => {
  const version = serverVersion()

  app.get(
    '/health/live',
    {
      schema: {
        tags: TAGS,
        summary: 'Server live (Open Inference Protocol)',
        response: { 200: LiveSchema },
      },
    },
    async () => ({ live: true }),
  )

  app.get(
    '/health/ready',
    {
      schema: {
        tags: TAGS,
        summary: 'Server ready (Open Inference Protocol): 200 when every model of the zoo serves, else 400',
        response: { 200: ReadySchema, 400: ReadySchema },
      },
    },
    async (_request, reply) => {
      const ready = isServerReady(app.zoo)
      return reply.code(ready ? 200 : 400).send({ ready })
    },
  )

  app.get(
    '/',
    {
      // The protocol writes both: `v2` in its REST table, `/v2/` in its OpenAPI document.
      prefixTrailingSlash: 'both',
      schema: {
        tags: TAGS,
        summary: 'Server metadata (Open Inference Protocol)',
        response: { 200: ServerMetadataSchema },
      },
    },
    async () => ({ name: SERVER_NAME, version, extensions: [...EXTENSIONS] }),
  )

  const metadata = (name: string, version?: string): ModelMetadata => {
    const target = resolveTarget(app.zoo, name, version)
    return target.kind === 'model' ? modelMetadata(target.model) : autoMetadata(app.zoo)
  }
  const ready = (reply: FastifyReply, name: string, version?: string) => {
    const isReady = isModelReady(app.zoo, resolveTarget(app.zoo, name, version))
    return reply.code(isReady ? 200 : 400).send({ name, ready: isReady })
  }
  const metadataSchema = { tags: TAGS, response: { 200: ModelMetadataSchema, ...v2ErrorResponses(404) } }
  const readySchema = {
    tags: TAGS,
    response: { 200: ModelReadySchema, 400: ModelReadySchema, ...v2ErrorResponses(404) },
  }

  app.get<{ Params: { name: string } }>(
    '/models/:name',
    {
      schema: {
        ...metadataSchema,
        params: ModelParamsSchema,
        summary: 'Model metadata (Open Inference Protocol)',
      },
    },
    async (request) => metadata(request.params.name),
  )
  app.get<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version',
    {
      schema: {
        ...metadataSchema,
        params: VersionedModelParamsSchema,
        summary: 'Model version metadata (Open Inference Protocol)',
      },
    },
    async (request) => metadata(request.params.name, request.params.version),
  )
  app.get<{ Params: { name: string } }>(
    '/models/:name/ready',
    {
      schema: { ...readySchema, params: ModelParamsSchema, summary: 'Model ready (Open Inference Protocol)' },
    },
    async (request, reply) => ready(reply, request.params.name),
  )
  app.get<{ Params: { name: string; version: string } }>(
    '/models/:name/versions/:version/ready',
    {
      schema: {
        ...readySchema,
        params: VersionedModelParamsSchema,
        summary: 'Model version ready (Open Inference Protocol)',
      },
    },
    async (request, reply) => ready(reply, request.params.name, request.params.version),
  )
}

export default metadataRoutes
