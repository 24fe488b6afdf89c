/**
 * POST /admin/reload — load the zoo from ZOO_DIR again (what `npm run pipeline` just published) and
 * swap it in without a restart: the new zoo is built and warmed beside the one serving, in-flight
 * requests finish on the old one. If the new zoo cannot serve (invalid manifest, no model loads, a
 * reload already running), the old zoo keeps serving and the answer is RELOAD_REJECTED with why.
 *
 * Disabled unless the ADMIN_TOKEN environment variable is set: the route then answers exactly as
 * an unknown route does (404 ROUTE_NOT_FOUND). When enabled it needs `Authorization: Bearer
 * <ADMIN_TOKEN>`, compared in constant time (SHA-256 digests, so the length does not leak either).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { apiError } from '../errors.js'
import { ReloadError } from '../runtime/serving-zoo.js'
import { errorResponses } from '../schemas/common.js'

export interface AdminOptions {
  /** The bearer token; default: process.env.ADMIN_TOKEN. Empty or unset disables the route. */
  token?: string | undefined
}

const ReloadResultSchema = Type.Object(
  {
    generation: Type.Integer({ description: 'Id of the zoo generation now serving.' }),
    zooDir: Type.String({ description: 'Directory the new zoo was loaded from.' }),
    previousZooDir: Type.String({ description: 'Directory of the zoo it replaced.' }),
    models: Type.Array(
      Type.Object({
        name: Type.String(),
        ready: Type.Boolean(),
        reason: Type.Optional(Type.String({ description: 'Why the model is not ready.' })),
      }),
    ),
  },
  { additionalProperties: false },
)

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

/** True when `header` is `Bearer <token>` for exactly `expected`, without a timing side channel. */
export function bearerMatches(header: string | undefined, expected: string): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')
  const given = match?.[1] ?? ''
  // Compare even when the header is malformed, so every refusal costs the same.
  const same = timingSafeEqual(digest(given), digest(expected))
  return match !== null && same
}

function unauthorized(reply: FastifyReply, message: string): never {
  void reply.header('www-authenticate', 'Bearer realm="admin"')
  throw apiError('UNAUTHORIZED', message)
}

const admin: FastifyPluginAsync<AdminOptions> = async (app, options) => {
  const token = options.token ?? process.env.ADMIN_TOKEN ?? ''
  const api = app.withTypeProvider<TypeBoxTypeProvider>()

  api.post(
    '/admin/reload',
    {
      schema: {
        tags: ['admin'],
        summary: 'Reload the zoo from ZOO_DIR (disabled unless ADMIN_TOKEN is set)',
        description:
          'Builds and warms the zoo in ZOO_DIR beside the one serving, then swaps; in-flight requests finish on the old zoo. Requires `Authorization: Bearer <ADMIN_TOKEN>`. Without ADMIN_TOKEN the route does not exist (404). A zoo that cannot serve is refused (409 RELOAD_REJECTED) and the previous zoo keeps serving.',
        response: { 200: ReloadResultSchema, ...errorResponses(401, 404, 409) },
      },
    },
    async (request, reply) => {
      if (token === '') {
        reply.callNotFound()
        return reply
      }
      if (!bearerMatches(request.headers.authorization, token)) {
        unauthorized(
          reply,
          request.headers.authorization === undefined
            ? 'this route needs an Authorization: Bearer <ADMIN_TOKEN> header'
            : 'the bearer token is not the admin token',
        )
      }
      try {
        const result = await app.zooManager.reload()
        request.log.info({ generation: result.generation }, 'zoo reloaded through POST /admin/reload')
        return result
      } catch (error) {
        if (error instanceof ReloadError)
          throw apiError('RELOAD_REJECTED', error.message, {}, { cause: error })
        throw error
      }
    },
  )
}

export default admin
