/**
 * The Open Inference Protocol (KServe v2 / Triton) REST API, mounted at /v2 by app.ts, so Triton
 * and KServe clients can use the zoo unchanged. Errors in this scope are protocol errors
 * (`{"error": …}`, see errors.ts); the routes are in metadata.ts (health, server and model
 * metadata) and infer.ts (inference, including the virtual `alphanet-auto` model).
 */
import type { FastifyPluginAsync } from 'fastify'
import { registerV2Errors } from './errors.js'
import inferRoutes from './infer.js'
import metadataRoutes from './metadata.js'

const openInference: FastifyPluginAsync = async (app) => {
  registerV2Errors(app)
  await app.register(metadataRoutes)
  await app.register(inferRoutes)
}

export default openInference
