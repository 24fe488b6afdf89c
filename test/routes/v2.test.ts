/**
 * The Open Inference Protocol (KServe v2) REST API over the fixture zoo, checked against the
 * protocol's documented request/response shapes (kserve docs/predict-api/v2/required_api.md) and
 * Triton's classification and binary tensor data extensions: health, server and model metadata,
 * inference with JSON (flat and nested) and binary tensors, classification strings, errors as
 * `{"error": …}` with the protocol's status codes, and the virtual `alphanet-auto` model.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Ajv } from 'ajv'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { formatFixed6 } from '../../server/routes/v2/classification.js'
import { EXTENSIONS } from '../../server/routes/v2/metadata.js'
import {
  createBrokenZoo,
  BROKEN_MODELS,
  buildTestApp,
  readFixtureManifest,
  readReference,
} from '../helper.js'
import { startApp } from './support.js'

const SMALL = 'fixture-gray28-small'
const RES20 = 'fixture-gray28-res20'
const LARGE = 'fixture-gray28-large'
const RGB = 'fixture-rgb32'
const LABELS = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]

/**
 * The protocol's health response objects (inference_rest.md: $live_server_response,
 * $ready_server_response — written there with a `live` key by a slip, `ready` in the gRPC
 * ServerReadyResponse and every implementation — and $ready_model_response), exactly.
 */
const ajv = new Ajv({ strict: true })
const strictObject = (properties: Record<string, { type: string }>) => ({
  type: 'object',
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
})
const SPEC = {
  live: ajv.compile(strictObject({ live: { type: 'boolean' } })),
  ready: ajv.compile(strictObject({ ready: { type: 'boolean' } })),
  modelReady: ajv.compile(strictObject({ name: { type: 'string' }, ready: { type: 'boolean' } })),
  serverMetadata: ajv.compile({
    ...strictObject({ name: { type: 'string' }, version: { type: 'string' }, extensions: { type: 'array' } }),
  }),
}

function assertSpecBody(
  res: LightMyRequestResponse,
  check: (typeof SPEC)[keyof typeof SPEC],
  status: number,
): Record<string, unknown> {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/json/)
  const body = res.json<Record<string, unknown>>()
  assert.ok(check(body), `${res.body}: ${ajv.errorsText(check.errors)}`)
  return body
}

interface OutputBody {
  name: string
  shape: number[]
  datatype: string
  parameters?: Record<string, unknown>
  data?: (number | string)[]
}
interface InferBody {
  model_name: string
  model_version: string
  id: string
  parameters?: Record<string, unknown>
  outputs: OutputBody[]
}

/** Asserts a protocol error: the status and a body that is exactly `{error: <non-empty string>}`. */
function assertV2Error(res: LightMyRequestResponse, status: number, pattern?: RegExp): string {
  assert.equal(res.statusCode, status, res.body)
  assert.match(String(res.headers['content-type']), /^application\/json/)
  const body = res.json<Record<string, unknown>>()
  assert.deepEqual(Object.keys(body), ['error'])
  assert.equal(typeof body.error, 'string')
  const message = body.error as string
  assert.ok(message.length > 0)
  if (pattern) assert.match(message, pattern)
  return message
}

/** Splits a binary-extension response into its JSON header and the bytes after it. */
function splitBinary(res: LightMyRequestResponse): { header: InferBody; binary: Buffer } {
  const length = Number(res.headers['inference-header-content-length'])
  assert.ok(Number.isInteger(length) && length > 0, 'Inference-Header-Content-Length')
  assert.match(String(res.headers['content-type']), /^application\/octet-stream/)
  const raw = res.rawPayload
  return {
    header: JSON.parse(raw.subarray(0, length).toString('utf8')) as InferBody,
    binary: raw.subarray(length),
  }
}

function float32LE(values: readonly number[]): Buffer {
  const out = Buffer.alloc(values.length * 4)
  values.forEach((v, i) => out.writeFloatLE(v, i * 4))
  return out
}

function readFloat32LE(bytes: Buffer): number[] {
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
}

function softmaxRow(row: readonly number[]): number[] {
  const max = Math.max(...row)
  const exps = row.map((v) => Math.exp(v - max))
  const sum = exps.reduce((a, b) => a + b, 0)
  return exps.map((e) => e / sum)
}

describe('Open Inference Protocol (/v2)', () => {
  let app: FastifyInstance
  let reference: Awaited<ReturnType<typeof readReference>>
  let rgbReference: Awaited<ReturnType<typeof readReference>>
  before(async () => {
    app = await startApp()
    reference = await readReference(SMALL)
    rgbReference = await readReference(RGB)
  })
  after(() => app.close())

  const get = (url: string) => app.inject({ method: 'GET', url })
  const infer = (model: string, payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: `/v2/models/${model}/infer`,
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
    })
  const smallInput = (batch = 2) => ({
    name: 'input',
    shape: [batch, 1, 28, 28],
    datatype: 'FP32',
    data: reference.input.data.slice(0, batch * 784),
  })
  async function served(model: string, payload: unknown): Promise<InferBody> {
    const res = await infer(model, payload)
    assert.equal(res.statusCode, 200, res.body)
    assert.match(String(res.headers['content-type']), /^application\/json/)
    return res.json<InferBody>()
  }

  describe('health and metadata', () => {
    it('live and ready answer 200 with the protocol bodies {"live": true} and {"ready": true}', async () => {
      assert.deepEqual(assertSpecBody(await get('/v2/health/live'), SPEC.live, 200), { live: true })
      assert.deepEqual(assertSpecBody(await get('/v2/health/ready'), SPEC.ready, 200), { ready: true })
    })

    it('server metadata (at /v2 and the protocol path /v2/) names the server, its version and the extensions', async () => {
      const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as {
        version: string
      }
      for (const url of ['/v2', '/v2/']) {
        assert.deepEqual(assertSpecBody(await get(url), SPEC.serverMetadata, 200), {
          name: 'alphanet-zoo',
          version: pkg.version,
          extensions: [...EXTENSIONS],
        })
      }
      assert.ok(EXTENSIONS.includes('classification') && EXTENSIONS.includes('binary_tensor_data'))
    })

    it('model metadata: onnxruntime_onnx, FP32 input [-1, C, H, W], outputs [-1, classes]', async () => {
      const manifest = await readFixtureManifest()
      for (const model of manifest.models) {
        const expected = {
          name: model.name,
          versions: ['1'],
          platform: 'onnxruntime_onnx',
          inputs: [
            {
              name: 'input',
              datatype: 'FP32',
              shape: [-1, model.input.channels, model.input.size, model.input.size],
            },
          ],
          outputs: [
            { name: 'logits', datatype: 'FP32', shape: [-1, model.labels.length] },
            { name: 'probabilities', datatype: 'FP32', shape: [-1, model.labels.length] },
          ],
        }
        assert.deepEqual((await get(`/v2/models/${model.name}`)).json(), expected)
        assert.deepEqual((await get(`/v2/models/${model.name}/versions/1`)).json(), expected)
      }
    })

    it('alphanet-auto metadata: dimensions the zoo models share, -1 where they differ', async () => {
      const res = await get('/v2/models/alphanet-auto')
      assert.equal(res.statusCode, 200)
      assert.deepEqual(res.json(), {
        name: 'alphanet-auto',
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        // gray 1×28×28 and RGB 3×32×32 models: every input dimension varies.
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, -1, -1, -1] }],
        outputs: [
          { name: 'logits', datatype: 'FP32', shape: [-1, 10] },
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 10] },
        ],
      })
    })

    it('model ready: 200 {name, ready: true} for ready models (any version spelling), 404 for unknown ones', async () => {
      for (const [url, name] of [
        [`/v2/models/${SMALL}/ready`, SMALL],
        [`/v2/models/${SMALL}/versions/1/ready`, SMALL],
        ['/v2/models/alphanet-auto/ready', 'alphanet-auto'],
      ] as const) {
        assert.deepEqual(assertSpecBody(await get(url), SPEC.modelReady, 200), { name, ready: true }, url)
      }
      assertV2Error(await get('/v2/models/no-such-model/ready'), 404, /unknown model: 'no-such-model'/)
      assertV2Error(await get(`/v2/models/${SMALL}/versions/2/ready`), 404, /version 2 is not found/)
      assertV2Error(await get('/v2/models/no-such-model'), 404, /unknown model/)
      assertV2Error(await get(`/v2/models/${SMALL}/versions/7`), 404, /version 7/)
    })

    it('unknown /v2 routes are protocol errors too', async () => {
      assertV2Error(await get('/v2/models'), 404)
      assertV2Error(await get('/v2/health/whatever'), 404)
      assertV2Error(await app.inject({ method: 'GET', url: `/v2/models/${SMALL}/infer` }), 404)
    })
  })

  describe('inference', () => {
    it("the protocol's request shape: id echoed, outputs by name, logits equal the PyTorch reference", async () => {
      const body = await served(SMALL, { id: '42', inputs: [smallInput()], outputs: [{ name: 'logits' }] })
      assert.equal(body.model_name, SMALL)
      assert.equal(body.model_version, '1')
      assert.equal(body.id, '42')
      assert.equal(body.parameters, undefined)
      assert.equal(body.outputs.length, 1)
      const [output] = body.outputs
      assert.equal(output!.name, 'logits')
      assert.equal(output!.datatype, 'FP32')
      assert.deepEqual(output!.shape, reference.output.shape)
      const worst = Math.max(
        ...reference.output.data.map((v, i) => Math.abs(v - (output!.data![i] as number))),
      )
      assert.ok(worst <= 1e-4, `max |Δlogit| ${worst}`)
    })

    it('without requested outputs, every output is returned; probabilities are the softmax of the logits', async () => {
      const body = await served(SMALL, { inputs: [smallInput()] })
      assert.deepEqual(
        body.outputs.map((o) => o.name),
        ['logits', 'probabilities'],
      )
      const logits = body.outputs[0]!.data as number[]
      const probabilities = body.outputs[1]!.data as number[]
      assert.deepEqual(body.outputs[1]!.shape, [2, 10])
      for (let row = 0; row < 2; row++) {
        const expected = softmaxRow(logits.slice(row * 10, row * 10 + 10))
        expected.forEach((p, i) => {
          assert.ok(Math.abs(p - probabilities[row * 10 + i]!) < 1e-6)
        })
      }
      // Without an id the response carries this server's request id.
      assert.match(body.id, /^[0-9a-f-]{36}$/)
    })

    it('nested data (the natural [N, C, H, W] layout) equals flat data; a batch equals its rows run alone', async () => {
      const flat = await served(SMALL, { inputs: [smallInput()], outputs: [{ name: 'logits' }] })
      const data = reference.input.data
      const nested = Array.from({ length: 2 }, (_, n) => [
        Array.from({ length: 28 }, (_, h) => data.slice(n * 784 + h * 28, n * 784 + h * 28 + 28)),
      ])
      const nestedBody = await served(SMALL, {
        inputs: [{ ...smallInput(), data: nested }],
        outputs: [{ name: 'logits' }],
      })
      assert.deepEqual(nestedBody.outputs, flat.outputs)
      const second = await served(SMALL, {
        inputs: [{ ...smallInput(1), data: data.slice(784, 1568) }],
        outputs: [{ name: 'logits' }],
      })
      const rows = flat.outputs[0]!.data as number[]
      ;(second.outputs[0]!.data as number[]).forEach((v, i) => {
        assert.ok(Math.abs(v - rows[10 + i]!) < 1e-5)
      })
    })

    it('the versioned path serves the same model', async () => {
      const res = await app.inject({
        method: 'POST',
        url: `/v2/models/${SMALL}/versions/1/infer`,
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ inputs: [smallInput()], outputs: [{ name: 'logits' }] }),
      })
      assert.equal(res.statusCode, 200, res.body)
      assert.equal(res.json<InferBody>().model_name, SMALL)
    })

    it('an RGB model takes [N, 3, 32, 32] and reproduces its reference', async () => {
      const body = await served(RGB, {
        inputs: [
          { name: 'input', shape: rgbReference.input.shape, datatype: 'FP32', data: rgbReference.input.data },
        ],
        outputs: [{ name: 'logits' }],
      })
      const out = body.outputs[0]!.data as number[]
      const worst = Math.max(...rgbReference.output.data.map((v, i) => Math.abs(v - out[i]!)))
      assert.ok(worst <= 1e-4, `max |Δlogit| ${worst}`)
    })
  })

  describe('classification extension (Triton)', () => {
    it('"value:index:label" strings, best first, shape [batch, k], value printed as printf("%f")', async () => {
      const body = await served(SMALL, {
        inputs: [smallInput()],
        outputs: [{ name: 'logits', parameters: { classification: 3 } }, { name: 'probabilities' }],
      })
      const [classes, probabilities] = body.outputs
      assert.equal(classes!.datatype, 'BYTES')
      assert.deepEqual(classes!.shape, [2, 3])
      const logits = (await served(SMALL, { inputs: [smallInput()], outputs: [{ name: 'logits' }] }))
        .outputs[0]!.data as number[]
      for (let row = 0; row < 2; row++) {
        const rowLogits = logits.slice(row * 10, row * 10 + 10)
        const order = rowLogits.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1])
        const expected = order.slice(0, 3).map(([v, i]) => `${formatFixed6(v)}:${i}:${LABELS[i]}`)
        assert.deepEqual(classes!.data!.slice(row * 3, row * 3 + 3), expected)
        for (const text of classes!.data!.slice(row * 3, row * 3 + 3)) {
          assert.match(String(text), /^-?\d+\.\d{6}:\d+:.+$/)
        }
      }
      // The other output is unaffected.
      assert.equal(probabilities!.datatype, 'FP32')
      assert.deepEqual(probabilities!.shape, [2, 10])
    })

    it('classification of probabilities gives probabilities; k beyond the class count is clamped', async () => {
      const body = await served(SMALL, {
        inputs: [smallInput(1)],
        outputs: [{ name: 'probabilities', parameters: { classification: 50 } }],
      })
      const [output] = body.outputs
      assert.deepEqual(output!.shape, [1, 10])
      const values = output!.data!.map((s) => Number(String(s).split(':')[0]))
      assert.ok(Math.abs(values.reduce((a, b) => a + b, 0) - 1) < 1e-4)
      assert.deepEqual(
        [...values].sort((a, b) => b - a),
        values,
      )
      assert.deepEqual(
        output!.data!.map((s) => Number(String(s).split(':')[1])).sort((a, b) => a - b),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      )
    })

    it('classification 0 means the plain tensor, as in Triton', async () => {
      const body = await served(SMALL, {
        inputs: [smallInput(1)],
        outputs: [{ name: 'logits', parameters: { classification: 0 } }],
      })
      assert.equal(body.outputs[0]!.datatype, 'FP32')
    })
  })

  describe('binary tensor data extension', () => {
    const header = (json: object) => Buffer.from(JSON.stringify(json), 'utf8')

    it('binary input and binary outputs give the same numbers as JSON', async () => {
      const json = await served(SMALL, { inputs: [smallInput()] })
      const input = float32LE(reference.input.data)
      const head = header({
        id: 'bin-1',
        inputs: [
          {
            name: 'input',
            shape: [2, 1, 28, 28],
            datatype: 'FP32',
            parameters: { binary_data_size: input.length },
          },
        ],
        outputs: [
          { name: 'logits', parameters: { binary_data: true } },
          { name: 'probabilities', parameters: { classification: 2, binary_data: true } },
        ],
      })
      const res = await infer(SMALL, Buffer.concat([head, input]), {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(head.length),
      })
      assert.equal(res.statusCode, 200, res.body)
      const { header: body, binary } = splitBinary(res)
      assert.equal(body.id, 'bin-1')
      const [logits, classes] = body.outputs
      assert.deepEqual(logits, {
        name: 'logits',
        datatype: 'FP32',
        shape: [2, 10],
        parameters: { binary_data_size: 80 },
      })
      assert.equal(classes!.datatype, 'BYTES')
      assert.deepEqual(classes!.shape, [2, 2])
      const logitBytes = binary.subarray(0, 80)
      assert.deepEqual(readFloat32LE(logitBytes), json.outputs[0]!.data)
      // BYTES elements: 4-byte little-endian length, then the UTF-8 bytes.
      const strings: string[] = []
      let offset = 80
      while (offset < binary.length) {
        const length = binary.readUInt32LE(offset)
        strings.push(binary.subarray(offset + 4, offset + 4 + length).toString('utf8'))
        offset += 4 + length
      }
      assert.equal(offset, binary.length)
      assert.equal(classes!.parameters!.binary_data_size, binary.length - 80)
      const probabilities = json.outputs[1]!.data as number[]
      assert.equal(strings.length, 4)
      assert.match(strings[0]!, new RegExp(`^${formatFixed6(Math.max(...probabilities.slice(0, 10)))}:`))
    })

    it('binary_data_output returns every output binary unless an output says otherwise', async () => {
      const res = await infer(SMALL, {
        inputs: [smallInput(1)],
        parameters: { binary_data_output: true },
        outputs: [{ name: 'logits' }, { name: 'probabilities', parameters: { binary_data: false } }],
      })
      const { header: body, binary } = splitBinary(res)
      assert.deepEqual(body.outputs[0]!.parameters, { binary_data_size: 40 })
      assert.equal(body.outputs[0]!.data, undefined)
      assert.equal(binary.length, 40)
      assert.equal(body.outputs[1]!.data!.length, 10)
    })

    it('a raw binary request (Inference-Header-Content-Length: 0) runs batch 1 and answers binary', async () => {
      const input = float32LE(reference.input.data.slice(0, 784))
      const res = await infer(SMALL, input, {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': '0',
      })
      assert.equal(res.statusCode, 200, res.body)
      const { header: body, binary } = splitBinary(res)
      assert.deepEqual(
        body.outputs.map((o) => [o.name, o.shape, o.parameters?.binary_data_size]),
        [
          ['logits', [1, 10], 40],
          ['probabilities', [1, 10], 40],
        ],
      )
      const logits = readFloat32LE(binary.subarray(0, 40))
      logits.forEach((v, i) => {
        assert.ok(Math.abs(v - reference.output.data[i]!) <= 1e-4)
      })
      assertV2Error(
        await infer(SMALL, input.subarray(4), {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': '0',
        }),
        400,
        /3132 bytes of binary data but its shape and FP32 datatype need 3136/,
      )
    })

    it('binary framing errors are 400s', async () => {
      const input = float32LE(reference.input.data.slice(0, 784))
      const head = header({
        inputs: [
          { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', parameters: { binary_data_size: 3136 } },
        ],
      })
      const send = (body: Buffer, length: string) =>
        infer(SMALL, body, {
          'content-type': 'application/octet-stream',
          'inference-header-content-length': length,
        })
      assertV2Error(await send(Buffer.concat([head, input]), String(head.length + 1)), 400, /failed to parse/)
      assertV2Error(await send(Buffer.concat([head, input]), '99999999'), 400, /out of range/)
      assertV2Error(await send(Buffer.concat([head, input]), '-3'), 400, /out of range/)
      assertV2Error(
        await send(Buffer.concat([head, input, Buffer.alloc(4)]), String(head.length)),
        400,
        /binary_data_size 3136 but the request carries 3140/,
      )
      const both = header({
        inputs: [
          {
            name: 'input',
            shape: [1, 1, 28, 28],
            datatype: 'FP32',
            data: [1],
            parameters: { binary_data_size: 3136 },
          },
        ],
      })
      assertV2Error(
        await send(Buffer.concat([both, input]), String(both.length)),
        400,
        /exactly one of 'data' and 'binary_data_size'/,
      )
      const nan = Buffer.from(input)
      nan.writeFloatLE(Number.NaN, 8)
      assertV2Error(
        await send(Buffer.concat([head, nan]), String(head.length)),
        400,
        /NaN or infinity at element 2/,
      )
    })
  })

  describe('invalid requests: 400 with the reason', () => {
    const cases: [string, unknown, RegExp][] = [
      ['not JSON', 'this is not json', /failed to parse the request JSON/],
      ['no inputs', { inputs: [] }, /inputs/],
      ['inputs missing', { id: 'x' }, /inputs/],
      [
        'id not a string',
        { id: 42, inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [] }] },
        /id/,
      ],
      [
        'two inputs',
        {
          inputs: [
            { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [] },
            { name: 'other', shape: [1], datatype: 'FP32', data: [1] },
          ],
        },
        /expected 1 inputs but got 2 inputs for model 'fixture-gray28-small'/,
      ],
      [
        'wrong datatype',
        { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP64', data: [] }] },
        /data-type is 'FP64', but model 'fixture-gray28-small' expects 'FP32'/,
      ],
      [
        'wrong input name',
        { inputs: [{ name: 'image', shape: [1, 1, 28, 28], datatype: 'FP32', data: [] }] },
        /unexpected inference input 'image'/,
      ],
      [
        'wrong shape',
        { inputs: [{ name: 'input', shape: [1, 1, 32, 32], datatype: 'FP32', data: [] }] },
        /Expected \[-1,1,28,28\], got \[1,1,32,32\]/,
      ],
      [
        'rank 3',
        { inputs: [{ name: 'input', shape: [1, 28, 28], datatype: 'FP32', data: [] }] },
        /expected \[N, C, H, W\]/,
      ],
      [
        'batch 0',
        { inputs: [{ name: 'input', shape: [0, 1, 28, 28], datatype: 'FP32', data: [] }] },
        /N ≥ 1/,
      ],
      [
        'negative dimension',
        { inputs: [{ name: 'input', shape: [1, -1, 28, 28], datatype: 'FP32', data: [] }] },
        /shape/,
      ],
      [
        'too few elements',
        { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: [1, 2, 3] }] },
        /3 data elements but its shape holds 784/,
      ],
      [
        'a string element',
        {
          inputs: [
            {
              name: 'input',
              shape: [1, 1, 28, 28],
              datatype: 'FP32',
              data: ['0.5', ...new Array<number>(783).fill(0)],
            },
          ],
        },
        /numbers only; element 0 is "0.5"/,
      ],
      [
        'no data',
        { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32' }] },
        /exactly one of 'data' and 'binary_data_size'/,
      ],
      [
        'unknown output',
        {
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
          outputs: [{ name: 'output0' }],
        },
        /unexpected inference output 'output0'.*logits, probabilities/,
      ],
      [
        'repeated output',
        {
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
          outputs: [{ name: 'logits' }, { name: 'logits' }],
        },
        /requested more than once/,
      ],
      [
        'bad classification',
        {
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
          outputs: [{ name: 'logits', parameters: { classification: 2.5 } }],
        },
        /"classification" of output 'logits' must be a non-negative integer/,
      ],
      [
        'bad binary_data',
        {
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
          outputs: [{ name: 'logits', parameters: { binary_data: 'yes' } }],
        },
        /"binary_data" of output 'logits' must be a boolean/,
      ],
      [
        'bad binary_data_output',
        {
          parameters: { binary_data_output: 1 },
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
        },
        /binary_data_output/,
      ],
      [
        'budget parameter out of range',
        {
          parameters: { minTop1: 2 },
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
        },
        /"minTop1"/,
      ],
      [
        'budget parameter of the wrong type',
        {
          parameters: { maxMflops: 'cheap' },
          inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
        },
        /"maxMflops"/,
      ],
    ]
    for (const [name, payload, pattern] of cases) {
      it(name, async () => {
        assertV2Error(await infer(SMALL, payload), 400, pattern)
      })
    }

    it('an empty body, an unknown model and a too-large body', async () => {
      assertV2Error(await app.inject({ method: 'POST', url: `/v2/models/${SMALL}/infer` }), 400, /empty/)
      assertV2Error(
        await infer('no-such-model', { inputs: [smallInput(1)] }),
        404,
        /unknown model: 'no-such-model' is not found/,
      )
      assertV2Error(
        await app.inject({ method: 'POST', url: `/v2/models/${SMALL}/versions/3/infer`, payload: '{}' }),
        404,
        /version 3/,
      )
      const huge = Buffer.alloc(app.config.maxBodyBytes + 1, 0x20)
      assertV2Error(await infer(SMALL, huge), 413)
    })
  })

  describe('budgets and alphanet-auto', () => {
    const grayData = () => reference.input.data.slice(0, 784)
    const auto = (
      parameters: Record<string, unknown>,
      input = { name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: grayData() },
    ) =>
      infer('alphanet-auto', {
        parameters,
        inputs: [input],
        outputs: [{ name: 'probabilities', parameters: { classification: 1 } }],
      })

    it('selects what POST /v1/select selects for the same budget, and says so', async () => {
      for (const budget of [{}, { maxMflops: 1 }, { maxMflops: 0.3 }, { minTop1: 0.85, maxMflops: 2.5 }]) {
        const dry = await app.inject({ method: 'POST', url: '/v1/select', payload: budget })
        const expected = dry.json<{ model: { name: string }; reason: string }>()
        const res = await auto(budget)
        assert.equal(res.statusCode, 200, res.body)
        const body = res.json<InferBody>()
        assert.equal(body.model_name, expected.model.name, JSON.stringify(budget))
        assert.deepEqual(body.parameters, {
          selectedModel: expected.model.name,
          selectionReason: expected.reason,
          budgetMet: true,
        })
      }
      assert.equal((await auto({ maxMflops: 1 })).json<InferBody>().model_name, RES20)
      assert.equal((await auto({})).json<InferBody>().model_name, LARGE)
    })

    it('only models accepting the tensor are candidates: an RGB tensor gets the RGB model', async () => {
      const res = await auto(
        {},
        {
          name: 'input',
          shape: [1, 3, 32, 32],
          datatype: 'FP32',
          data: rgbReference.input.data.slice(0, 3072),
        },
      )
      assert.equal(res.json<InferBody>().model_name, RGB)
      assertV2Error(
        await auto(
          { maxMflops: 1 },
          {
            name: 'input',
            shape: [1, 3, 32, 32],
            datatype: 'FP32',
            data: rgbReference.input.data.slice(0, 3072),
          },
        ),
        400,
        /no ready model satisfies the budget/,
      )
      assertV2Error(
        await auto(
          {},
          { name: 'input', shape: [1, 3, 28, 28], datatype: 'FP32', data: new Array<number>(2352).fill(0) },
        ),
        400,
        /no model of the zoo accepts input 'input' of shape \[1,3,28,28\]/,
      )
    })

    it('infeasible budgets: 400 with the reason, or the cheapest model with onInfeasible=smallest', async () => {
      assertV2Error(
        await auto({ maxMflops: 0.01 }),
        400,
        /no ready model satisfies the budget \(maxMflops ≤ 0.01\)/,
      )
      const res = await auto({ maxMflops: 0.01, onInfeasible: 'smallest' })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json<InferBody>().parameters, {
        selectedModel: SMALL,
        selectionReason: 'smallest-fallback',
        budgetMet: false,
      })
    })

    it('a budget on a named model is checked against it', async () => {
      const within = await served(LARGE, {
        parameters: { maxMflops: 5 },
        inputs: [smallInput(1)],
        outputs: [{ name: 'logits' }],
      })
      assert.deepEqual(within.parameters, {
        selectedModel: LARGE,
        selectionReason: 'explicit',
        budgetMet: true,
      })
      assertV2Error(
        await infer(LARGE, { parameters: { maxMflops: 1 }, inputs: [smallInput(1)] }),
        400,
        /outside the budget/,
      )
    })

    it('a raw binary request cannot address alphanet-auto', async () => {
      const res = await infer('alphanet-auto', float32LE(grayData()), {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': '0',
      })
      assertV2Error(res, 400, /needs a concrete model/)
    })
  })
})

describe('Open Inference Protocol with models that are not ready', () => {
  it('model ready is 400, inference 503, metadata answers; the server is not ready (/readyz is)', async (t) => {
    const app = await buildTestApp(t, { zooDir: await createBrokenZoo(t), maxBatchSize: 1 })
    const get = (url: string) => app.inject({ method: 'GET', url })
    const broken = BROKEN_MODELS.corrupt
    const ready = assertSpecBody(await get(`/v2/models/${broken}/ready`), SPEC.modelReady, 400)
    assert.deepEqual(ready, { name: broken, ready: false })
    assert.equal((await get(`/v2/models/${broken}`)).statusCode, 200)
    // The protocol's server ready: all models ready. /readyz: the server can serve (some model is).
    assert.deepEqual(assertSpecBody(await get('/v2/health/ready'), SPEC.ready, 400), { ready: false })
    assert.equal((await get('/readyz')).statusCode, 200)
    assert.deepEqual(assertSpecBody(await get('/v2/health/live'), SPEC.live, 200), { live: true })
    const res = await app.inject({
      method: 'POST',
      url: `/v2/models/${broken}/infer`,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: Array(784).fill(0) }],
      }),
    })
    assertV2Error(res, 503, new RegExp(`${broken} is not ready`))
  })
})
