/**
 * POST /v1/classify — classify one image with the model the budget selects.
 *
 * The image is the raw body (Content-Type image/jpeg, image/png, image/webp, image/gif,
 * image/tiff or image/avif) or the file part `image` of a multipart/form-data body; either way at
 * most MAX_BODY_BYTES. The budget and options are query parameters. Steps: read the image →
 * select the model under the current load (server/selection/choose.ts; errors before any
 * decoding) → decode (sharp), preprocess per the model's input contract and run it, in worker
 * threads (docs/request-path.md) → softmax + top-K.
 */
import multipart from '@fastify/multipart'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { clientGoneSignal } from '../client-gone.js'
import { apiError, isApiError } from '../errors.js'
import type { InferenceObservation } from '../metrics.js'
import { observations } from '../plugins/metrics.js'
import { rankPredictions } from '../postprocess.js'
import {
  ClassifyQuerySchema,
  ClassifyResponseSchema,
  DEFAULT_TOP_K,
  type ClassifyResponse,
} from '../schemas/classify.js'
import { errorResponses } from '../schemas/common.js'
import { strictQuery } from '../schemas/strict-query.js'
import { isCascade } from '../cascade/candidates.js'
import { runCascadeOnImage } from '../cascade/serve.js'
import type { CascadeRun } from '../schemas/cascade.js'
import { chooseOrThrow, contractModel } from '../selection/choose.js'
import { budgetView, choiceObservation, servedModel } from '../selection/views.js'

export const IMAGE_CONTENT_TYPES = [
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/gif',
  'image/tiff',
  'image/avif',
] as const

const IMAGE_FIELD = 'image'

/** Reads the one `image` file part; any other part is refused rather than ignored. */
async function readMultipartImage(request: FastifyRequest): Promise<Buffer> {
  let image: Buffer | undefined
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file' && part.fieldname === IMAGE_FIELD && image === undefined) {
        image = await part.toBuffer()
        continue
      }
      const what = part.type === 'file' ? 'file' : 'field'
      throw apiError(
        'INVALID_PARAMETER',
        `unexpected multipart ${what} "${part.fieldname}": send exactly one file part named "${IMAGE_FIELD}" (options go in the query string)`,
        { parameter: part.fieldname, location: 'body' },
      )
    }
  } catch (error) {
    // Limit and protocol errors carry a code the error handler maps; busboy's own framing errors
    // ("Unexpected end of form", "Malformed part header") do not, and are the client's fault.
    if (isApiError(error) || (error as { code?: unknown }).code !== undefined) throw error
    const reason = error instanceof Error ? error.message : String(error)
    throw apiError('MALFORMED_BODY', `the multipart body cannot be parsed: ${reason}`, {}, { cause: error })
  }
  if (!image || image.length === 0) {
    throw apiError('MISSING_IMAGE', `the multipart body has no non-empty file part named "${IMAGE_FIELD}"`)
  }
  return image
}

async function readImage(request: FastifyRequest): Promise<Buffer> {
  if (request.isMultipart()) return readMultipartImage(request)
  const body = request.body
  if (Buffer.isBuffer(body) && body.length > 0) return body
  throw apiError(
    'MISSING_IMAGE',
    `no image: send it as the raw body with Content-Type ${IMAGE_CONTENT_TYPES.join(' | ')}, or as the multipart/form-data file part "${IMAGE_FIELD}"`,
  )
}

const classify: FastifyPluginAsync = async (app) => {
  const maxBytes = app.config.maxBodyBytes
  // Only image bodies here: JSON or text would otherwise be parsed and then fail obscurely.
  app.removeAllContentTypeParsers()
  await app.register(multipart, {
    limits: { fileSize: maxBytes, files: 1, fields: 0, parts: 1, headerPairs: 100 },
  })
  app.addContentTypeParser(
    [...IMAGE_CONTENT_TYPES],
    { parseAs: 'buffer', bodyLimit: maxBytes },
    (_req, body, done) => {
      done(null, body)
    },
  )

  const api = app.withTypeProvider<TypeBoxTypeProvider>()
  api.post(
    '/v1/classify',
    {
      bodyLimit: maxBytes,
      schema: {
        tags: ['inference'],
        summary: 'Classify an image with the model a budget selects',
        description: `Send the image as the raw body (${IMAGE_CONTENT_TYPES.join(', ')}) or as the multipart/form-data file part "${IMAGE_FIELD}". Without a budget the default model serves; with one, the most accurate ready model satisfying every constraint (ties: lower latency, fewer MFLOPs, name). Images are EXIF-oriented, alpha is composited onto black, animations contribute their first frame.`,
        querystring: ClassifyQuerySchema,
        consumes: [...IMAGE_CONTENT_TYPES, 'multipart/form-data'],
        response: {
          200: ClassifyResponseSchema,
          ...errorResponses(400, 404, 413, 415, 422, 500, 503, 504),
        },
      },
      preValidation: strictQuery(ClassifyQuerySchema),
    },
    async (request, reply): Promise<ClassifyResponse> => {
      const image = await readImage(request)

      // A latency budget counts from arrival: what reading the body took is already spent.
      const { selection, outcome } = chooseOrThrow(app.zoo, {
        fields: request.query,
        elapsedMs: reply.elapsedTime,
      })
      const chosen = outcome.model
      const contract = contractModel(chosen)
      const observation: InferenceObservation = { api: 'v1', ...choiceObservation(selection, outcome) }
      observations.set(request, observation)

      const classes = contract.labels.length
      const topK = request.query.topK ?? Math.min(DEFAULT_TOP_K, classes)
      if (topK > classes) {
        throw apiError(
          'INVALID_PARAMETER',
          `query parameter "topK" is ${topK} but ${chosen.name} has ${classes} classes`,
          { parameter: 'topK', location: 'querystring' },
        )
      }

      // Decoding, resampling and normalising run in worker threads, so the event loop only moves
      // bytes. A latency budget the model was chosen to meet is also the request's deadline
      // (counted from arrival): a request that can no longer meet it is refused with
      // DEADLINE_EXCEEDED before compute.
      const budgetMs = selection.budget.maxLatencyMs
      const deadline =
        outcome.budgetMet && budgetMs !== undefined
          ? performance.now() - reply.elapsedTime + budgetMs
          : undefined
      const options = {
        maxPixels: app.config.maxImagePixels,
        signal: clientGoneSignal(reply),
        ...(deadline !== undefined && { deadline }),
      }
      let model = contract
      let result
      let cascade: CascadeRun | undefined
      if (isCascade(chosen)) {
        const ran = await runCascadeOnImage(app.inference, chosen, image, options)
        model = ran.model
        result = {
          ...ran.result,
          preprocessMs: ran.preprocessMs,
          queueMs: ran.stages.reduce((sum, s) => sum + s.queueMs, 0),
          inferenceMs: ran.stages.reduce((sum, s) => sum + s.inferenceMs, 0),
        }
        cascade = {
          name: chosen.name,
          stages: ran.stages,
          exitStage: ran.exitStage,
          mflops: ran.mflops,
          expectedMflops: chosen.cascade.expectedMflops,
          worstMflops: chosen.cascade.worstMflops,
        }
      } else {
        result = await app.inference.runImage(chosen.name, image, options)
      }
      if (result.logits.length !== classes) {
        throw apiError(
          'INFERENCE_FAILED',
          `${model.name} returned ${result.logits.length} values for ${classes} classes`,
        )
      }
      // The model that answered (a cascade's: the stage that did), as the response names it.
      const served = { ...observation, model: model.name }
      app.metrics.recordServed(served, reply.elapsedTime)
      app.metrics.recordExecution(model.name, {
        batchSize: 1,
        queueMs: result.queueMs,
        inferenceMs: result.inferenceMs,
      })
      return {
        model: servedModel(model),
        predictions: rankPredictions(result.logits, model.labels, topK),
        budget: budgetView(selection, outcome.budgetMet),
        selection: { reason: outcome.reason, explanation: outcome.explanation },
        timing: {
          decodeMs: result.preprocessMs,
          queueMs: result.queueMs,
          inferenceMs: result.inferenceMs,
          batchSize: result.batchSize,
          totalMs: reply.elapsedTime,
          predictedLatencyMs: outcome.predictedLatencyMs,
        },
        ...(cascade && { cascade }),
      }
    },
  )
}

export default classify
