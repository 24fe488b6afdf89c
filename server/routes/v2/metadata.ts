/**
 * Health and metadata of the Open Inference Protocol:
 *   GET /v2/health/live, /v2/health/ready — 200 or 400, empty body (as the protocol and Triton do);
 *     ready = at least one model serves (a model that failed to load shows in its own ready route);
 *   GET /v2 — server metadata with the extensions supported;
 *   GET /v2/models/{name}[/versions/{v}] — model metadata;
 *   GET /v2/models/{name}[/versions/{v}]/ready — 200 ready, 400 not ready, 404 unknown.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { projectRoot } from '../../config.js'
import { v2ErrorResponses } from './errors.js'
import { autoMetadata, modelMetadata, resolveTarget } from './models.js'
import {
  ModelMetadataSchema,
  ModelParamsSchema,
  ServerMetadataSchema,
  VersionedModelParamsSchema,
  type ModelMetadata,
} from './schemas.js'

export const SERVER_NAME = 'alphanet-zoo'
export const EXTENSIONS = ['classification', 'binary_tensor_data', 'alphanet_budget_selection'] as const

function serverVersion(): string {
  const pkg = JSON.parse(readFileSync(join(projectRoot(), 'package.json'), 'utf8')) as { version?: string }
  return pkg.version ?? '0.0.0'
}

const Empty = (description: string) => ({ type: 'null', description })
const TAGS = ['open-inference']

const metadataRoutes: FastifyPluginAsync = async (app) => {
  const version = serverVersion()

  app.get(
    '/health/live',
    {
      schema: {
        tags: TAGS,
        summary: 'Server live (Open Inference Protocol)',
        response: { 200: Empty('Live.') },
      },
    },
    async (_request, reply) => reply.code(200).send(),
  )

  app.get(
    '/health/ready',
    {
      schema: {
        tags: TAGS,
        summary: 'Server ready (Open Inference Protocol): 200 once a model serves, else 400',
        response: { 200: Empty('Ready.'), 400: Empty('Not ready.') },
      },
    },
    async (_request, reply) => reply.code(app.zoo.isReady() ? 200 : 400).send(),
  )

  app.get(
    '',
    {
      // Exactly /v2, the protocol's path (not also /v2/).
      prefixTrailingSlash: 'no-slash',
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
    const target = resolveTarget(app.zoo, name, version)
    const isReady = target.kind === 'model' ? target.model.ready && app.zoo.isReady() : app.zoo.isReady()
    return reply.code(isReady ? 200 : 400).send()
  }
  const metadataSchema = { tags: TAGS, response: { 200: ModelMetadataSchema, ...v2ErrorResponses(404) } }
  const readySchema = {
    tags: TAGS,
    response: { 200: Empty('Ready.'), 400: Empty('Not ready.'), ...v2ErrorResponses(404) },
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
