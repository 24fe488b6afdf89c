/**
 * Open Inference Protocol (KServe v2) REST shapes, as TypeBox schemas: they validate the inference
 * request header and describe every /v2 route in the OpenAPI document. Objects accept extra
 * fields, as the protocol's clients send some (`model_name` in the request, for instance).
 */
import { Type, type Static } from 'typebox'

const Parameters = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
  description: 'Name/value pairs; values are strings, numbers or booleans.',
})

const Shape = Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 16 })

export const V2ErrorSchema = Type.Object(
  { error: Type.String({ description: 'What went wrong.' }) },
  { description: 'Every /v2 error ($inference_error_response of the protocol).' },
)

export const LiveSchema = Type.Object(
  { live: Type.Boolean() },
  { description: 'Server live ($live_server_response).' },
)

export const ReadySchema = Type.Object(
  { ready: Type.Boolean({ description: 'Every model of the zoo is ready to serve.' }) },
  { description: 'Server ready ($ready_server_response).' },
)

export const ModelReadySchema = Type.Object(
  { name: Type.String(), ready: Type.Boolean() },
  { description: 'Model ready ($ready_model_response).' },
)

export const ServerMetadataSchema = Type.Object({
  name: Type.String(),
  version: Type.String(),
  extensions: Type.Array(Type.String()),
})

export const MetadataTensorSchema = Type.Object({
  name: Type.String(),
  datatype: Type.String(),
  shape: Type.Array(Type.Integer({ minimum: -1 }), { description: 'Variable dimensions are -1.' }),
})

export const ModelMetadataSchema = Type.Object({
  name: Type.String(),
  versions: Type.Array(Type.String()),
  platform: Type.String(),
  inputs: Type.Array(MetadataTensorSchema),
  outputs: Type.Array(MetadataTensorSchema),
})

export const RequestInputSchema = Type.Object({
  name: Type.String(),
  shape: Shape,
  datatype: Type.String(),
  parameters: Type.Optional(Parameters),
  data: Type.Optional(
    Type.Array(Type.Unknown(), {
      description: 'Row-major tensor contents, flat or nested. Omitted when binary_data_size is given.',
    }),
  ),
})

export const RequestOutputSchema = Type.Object({
  name: Type.String(),
  parameters: Type.Optional(Parameters),
})

export const InferRequestSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ description: 'Echoed in the response.' })),
    parameters: Type.Optional(Parameters),
    inputs: Type.Array(RequestInputSchema, { minItems: 1 }),
    outputs: Type.Optional(Type.Array(RequestOutputSchema)),
  },
  {
    description:
      "The inference request ($inference_request). With the binary tensor data extension the body is this JSON followed by the tensors' bytes, and the Inference-Header-Content-Length header gives the JSON length.",
  },
)

export const ResponseOutputSchema = Type.Object({
  name: Type.String(),
  shape: Type.Array(Type.Integer({ minimum: 0 })),
  datatype: Type.String(),
  parameters: Type.Optional(Parameters),
  data: Type.Optional(Type.Array(Type.Union([Type.Number(), Type.String()]))),
})

export const InferResponseSchema = Type.Object({
  model_name: Type.String({ description: 'The model that ran (for alphanet-auto: the one selected).' }),
  model_version: Type.String(),
  id: Type.String({ description: "The request's id, else this server's request id." }),
  parameters: Type.Optional(Parameters),
  outputs: Type.Array(ResponseOutputSchema),
})

export const ModelParamsSchema = Type.Object({ name: Type.String({ description: 'Model name.' }) })
export const VersionedModelParamsSchema = Type.Object({
  name: Type.String({ description: 'Model name.' }),
  version: Type.String({ description: 'Model version; this server serves version "1" of each model.' }),
})

export type InferRequest = Static<typeof InferRequestSchema>
export type RequestInput = Static<typeof RequestInputSchema>
export type RequestOutput = Static<typeof RequestOutputSchema>
export type InferResponse = Static<typeof InferResponseSchema>
export type ResponseOutput = Static<typeof ResponseOutputSchema>
export type ModelMetadata = Static<typeof ModelMetadataSchema>
export type MetadataTensor = Static<typeof MetadataTensorSchema>
export type Parameters = Static<typeof Parameters>
