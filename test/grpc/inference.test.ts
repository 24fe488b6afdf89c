/**
 * inference.GRPCInferenceService and grpc.health.v1.Health through a grpc-js client built from the
 * committed protos: every RPC against its REST twin on the same app (same bodies, same outputs
 * bit for bit), typed and raw tensors, Triton classification, budget selection with
 * `alphanet-auto`, /v1/classify parity on real images, error statuses, metrics and health.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import * as grpc from '@grpc/grpc-js'
import type { FastifyInstance } from 'fastify'
import { decodeImage } from '../../server/preprocess/decode.js'
import { pixelsToTensor } from '../../server/preprocess/pixels-to-tensor.js'
import type { ModelEntry } from '../../server/zoo/model-entry.js'
import { fixturePath, readReference } from '../helper.js'
import { assertStatus, startGrpcApp, type GrpcClients } from './support.js'

const SMALL = 'fixture-gray28-small'
const LARGE = 'fixture-gray28-large'
const RGB = 'fixture-rgb32'

interface Tensor {
  name: string
  datatype: string
  shape: number[]
  parameters: Record<string, Record<string, unknown>>
  contents: { fp32_contents: number[]; bytes_contents: Buffer[] } | null
}
interface InferResponse {
  model_name: string
  model_version: string
  id: string
  parameters: Record<string, { parameter_choice: string } & Record<string, unknown>>
  outputs: Tensor[]
  raw_output_contents: Buffer[]
}
interface RestOutput {
  name: string
  datatype: string
  shape: number[]
  data: (number | string)[]
}

function float32LE(values: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(values.length * 4)
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i] ?? 0, i * 4)
  return out
}

function readFloat32LE(bytes: Buffer): number[] {
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
}

/** BYTES raw layout: 4-byte little-endian length, then the UTF-8 text, per element. */
function readBytesElements(bytes: Buffer): string[] {
  const out: string[] = []
  for (let at = 0; at < bytes.length;) {
    const length = bytes.readUInt32LE(at)
    out.push(bytes.subarray(at + 4, at + 4 + length).toString('utf8'))
    at += 4 + length
  }
  return out
}

describe('gRPC Open Inference Protocol (inference.GRPCInferenceService)', () => {
  let app: FastifyInstance
  let clients: GrpcClients
  let reference: Awaited<ReturnType<typeof readReference>>
  before(async () => {
    ;({ app, clients } = await startGrpcApp())
    reference = await readReference(SMALL)
  })
  after(async () => {
    clients.close()
    await app.close()
  })

  const rpc = <Res = Record<string, unknown>>(method: string, request: unknown, options = {}) =>
    clients.call<Res>(clients.inference, method, request, options)
  const rest = async (url: string, payload?: unknown) => {
    const res = await app.inject(
      payload === undefined
        ? { method: 'GET', url }
        : {
            method: 'POST',
            url,
            headers: { 'content-type': 'application/json' },
            payload: JSON.stringify(payload),
          },
    )
    return { status: res.statusCode, body: res.json<Record<string, unknown>>() }
  }
  // The reference input's rows, repeated for larger batches.
  const smallBatch = (batch: number) =>
    Array.from({ length: batch * 784 }, (_, i) => reference.input.data[i % reference.input.data.length] ?? 0)
  const rawRequest = (model: string, data: ArrayLike<number>, dims: number[], extra = {}) => ({
    model_name: model,
    inputs: [{ name: 'input', datatype: 'FP32', shape: dims }],
    raw_input_contents: [float32LE(data)],
    ...extra,
  })

  it('ServerLive, ServerReady and ServerMetadata answer what GET /v2/health/* and /v2/ answer', async () => {
    assert.deepEqual(await rpc('ServerLive', {}), (await rest('/v2/health/live')).body)
    assert.deepEqual(await rpc('ServerReady', {}), { ready: true })
    assert.deepEqual(await rpc('ServerReady', {}), (await rest('/v2/health/ready')).body)
    assert.deepEqual(await rpc('ServerMetadata', {}), (await rest('/v2/')).body)
  })

  it('ModelMetadata and ModelReady match REST for every model and alphanet-auto; unknown ones are NOT_FOUND', async () => {
    const names = [...app.zoo.names(), 'alphanet-auto']
    for (const name of names) {
      for (const version of ['', '1']) {
        const metadata = await rpc('ModelMetadata', { name, version })
        assert.deepEqual(metadata, { ...(await rest(`/v2/models/${name}`)).body, properties: {} }, name)
        assert.deepEqual(await rpc('ModelReady', { name, version }), { ready: true })
      }
    }
    await assert.rejects(rpc('ModelReady', { name: 'no-such-model' }), (e) =>
      Boolean(assertStatus(e, grpc.status.NOT_FOUND, /unknown model: 'no-such-model'/)),
    )
    await assert.rejects(rpc('ModelMetadata', { name: SMALL, version: '2' }), (e) =>
      Boolean(assertStatus(e, grpc.status.NOT_FOUND, /version 2 is not found/)),
    )
  })

  it('raw_input_contents in, raw_output_contents out: bit-equal to POST /v2/models/{m}/infer, batch 3', async () => {
    const data = smallBatch(3)
    const response = await rpc<InferResponse>(
      'ModelInfer',
      rawRequest(SMALL, data, [3, 1, 28, 28], { id: 'r-1' }),
    )
    const restBody = (
      await rest(`/v2/models/${SMALL}/infer`, {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 1, 28, 28], data }],
      })
    ).body as { outputs: RestOutput[] }
    assert.equal(response.model_name, SMALL)
    assert.equal(response.model_version, '1')
    assert.equal(response.id, 'r-1')
    assert.deepEqual(
      response.outputs.map((o) => [o.name, o.datatype, o.shape, o.contents]),
      restBody.outputs.map((o) => [o.name, o.datatype, o.shape, null]),
    )
    assert.equal(response.raw_output_contents.length, 2)
    restBody.outputs.forEach((output, i) => {
      assert.deepEqual(
        readFloat32LE(response.raw_output_contents[i] ?? Buffer.alloc(0)),
        output.data,
        output.name,
      )
    })
    // The ONNX reference output of this model for the same input.
    const logits = readFloat32LE(response.raw_output_contents[0] ?? Buffer.alloc(0)).slice(0, 10)
    logits.forEach((v, i) => {
      assert.ok(Math.abs(v - (reference.output.data[i] ?? Number.NaN)) < 1e-4)
    })
  })

  it('typed fp32_contents in, typed contents out; classification outputs are BYTES like REST', async () => {
    const data = smallBatch(2)
    const outputs = [
      { name: 'probabilities', parameters: { classification: { int64_param: 3 } } },
      { name: 'logits' },
    ]
    const response = await rpc<InferResponse>('ModelInfer', {
      model_name: SMALL,
      model_version: '1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, 28, 28], contents: { fp32_contents: data } }],
      outputs,
    })
    const restBody = (
      await rest(`/v2/models/${SMALL}/infer`, {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 1, 28, 28], data }],
        outputs: [{ name: 'probabilities', parameters: { classification: 3 } }, { name: 'logits' }],
      })
    ).body as { outputs: RestOutput[] }
    assert.deepEqual(response.raw_output_contents, [])
    const [classes, logits] = response.outputs
    assert.ok(classes && logits)
    assert.equal(classes.datatype, 'BYTES')
    assert.deepEqual(classes.shape, [2, 3])
    assert.deepEqual(
      classes.contents?.bytes_contents.map((b) => b.toString('utf8')),
      restBody.outputs[0]?.data,
    )
    assert.match(String(restBody.outputs[0]?.data[0]), /^\d\.\d{6}:\d:/)
    // fp32_contents are float32 on the wire, as the REST JSON numbers are.
    assert.deepEqual(logits.contents?.fp32_contents, restBody.outputs[1]?.data)
  })

  it('raw classification outputs use the BYTES length-prefixed layout', async () => {
    const response = await rpc<InferResponse>(
      'ModelInfer',
      rawRequest(SMALL, smallBatch(1), [1, 1, 28, 28], {
        outputs: [{ name: 'logits', parameters: { classification: { int64_param: 2 } } }],
      }),
    )
    assert.equal(response.outputs[0]?.datatype, 'BYTES')
    const elements = readBytesElements(response.raw_output_contents[0] ?? Buffer.alloc(0))
    assert.equal(elements.length, 2)
    for (const element of elements) assert.match(element, /^-?\d+\.\d{6}:\d+:/)
  })

  it('the same images give what POST /v1/classify gives (model, classes and probabilities)', async () => {
    for (const [file, type] of [
      ['photo.jpg', 'image/jpeg'],
      ['gray.png', 'image/png'],
      ['portrait.jpg', 'image/jpeg'],
    ] as const) {
      const image = await readFile(fixturePath('images', file))
      for (const name of [SMALL, RGB]) {
        const classify = await app.inject({
          method: 'POST',
          url: `/v1/classify?model=${name}&topK=3`,
          headers: { 'content-type': type },
          payload: image,
        })
        assert.equal(classify.statusCode, 200, classify.body)
        const expected = classify.json<{ predictions: { label: string; index: number; score: number }[] }>()
        const model = app.zoo.get(name) as ModelEntry
        const pixels = await decodeImage(image, { maxPixels: 40_000_000 })
        const tensor = pixelsToTensor(pixels, model.input)
        const dims = [1, model.input.channels, model.input.size, model.input.size]
        const response = await rpc<InferResponse>('ModelInfer', {
          ...rawRequest(name, tensor, dims),
          outputs: [{ name: 'probabilities' }],
        })
        const probabilities = readFloat32LE(response.raw_output_contents[0] ?? Buffer.alloc(0))
        const ranked = probabilities
          .map((p, index) => ({ p, index }))
          .sort((a, b) => b.p - a.p || a.index - b.index)
        expected.predictions.forEach((prediction, rank) => {
          const entry = ranked[rank]
          assert.ok(entry)
          assert.equal(entry.index, prediction.index, `${file} on ${name}, rank ${rank}`)
          assert.ok(Math.abs(entry.p - prediction.score) < 1e-6, `${file} on ${name}`)
        })
      }
    }
  })

  it('alphanet-auto selects by the budget parameters, as REST does, and says why', async () => {
    const parameters = { maxMflops: { double_param: 0.2 }, minTop1: { double_param: 0.5 } }
    const response = await rpc<InferResponse>(
      'ModelInfer',
      rawRequest('alphanet-auto', smallBatch(1), [1, 1, 28, 28], { parameters }),
    )
    const restBody = (
      await rest('/v2/models/alphanet-auto/infer', {
        parameters: { maxMflops: 0.2, minTop1: 0.5 },
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28], data: smallBatch(1) }],
      })
    ).body as { model_name: string; parameters: Record<string, unknown> }
    assert.equal(response.model_name, restBody.model_name)
    const plain = Object.fromEntries(
      Object.entries(response.parameters).map(([k, v]) => [k, v[v.parameter_choice]]),
    )
    assert.deepEqual(plain, restBody.parameters)
    assert.equal(plain.budgetMet, true)
    // A budget no model meets: INVALID_ARGUMENT (REST: 400), with the catalogue code in the trailers.
    const error = await rpc('ModelInfer', {
      ...rawRequest('alphanet-auto', smallBatch(1), [1, 1, 28, 28]),
      parameters: { maxMflops: { double_param: 0.001 } },
    }).catch((e: unknown) => e)
    assertStatus(error, grpc.status.INVALID_ARGUMENT, /no ready model satisfies the budget/)
    assert.deepEqual((error as grpc.ServiceError).metadata.get('error-code'), ['BUDGET_INFEASIBLE'])
  })

  it('bad requests get their status and leave the server serving', async () => {
    const cases: [string, unknown, grpc.status, RegExp][] = [
      [
        'unknown model',
        rawRequest('no-such-model', smallBatch(1), [1, 1, 28, 28]),
        grpc.status.NOT_FOUND,
        /unknown model/,
      ],
      [
        'wrong shape',
        rawRequest(SMALL, smallBatch(1), [1, 1, 14, 56]),
        grpc.status.INVALID_ARGUMENT,
        /Expected \[-1,1,28,28\], got \[1,1,14,56\]/,
      ],
      [
        'wrong datatype',
        {
          model_name: SMALL,
          inputs: [
            {
              name: 'input',
              datatype: 'INT32',
              shape: [1, 1, 28, 28],
              contents: { int_contents: Array(784).fill(1) },
            },
          ],
        },
        grpc.status.INVALID_ARGUMENT,
        /data-type is 'INT32', but model 'fixture-gray28-small' expects 'FP32'/,
      ],
      [
        'FP32 data in the wrong contents field',
        {
          model_name: SMALL,
          inputs: [
            {
              name: 'input',
              datatype: 'FP32',
              shape: [1, 1, 28, 28],
              contents: { fp64_contents: Array(784).fill(1) },
            },
          ],
        },
        grpc.status.INVALID_ARGUMENT,
        /in fp64_contents; an FP32 tensor's contents go in fp32_contents/,
      ],
      [
        'raw bytes short of the shape',
        rawRequest(SMALL, smallBatch(1).slice(1), [1, 1, 28, 28]),
        grpc.status.INVALID_ARGUMENT,
        /3132 bytes of binary data but its shape and FP32 datatype need 3136/,
      ],
      [
        'no data',
        { model_name: SMALL, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 28, 28] }] },
        grpc.status.INVALID_ARGUMENT,
        /has no data/,
      ],
      [
        'negative dimension',
        rawRequest(SMALL, smallBatch(1), [-1, 1, 28, 28]),
        grpc.status.INVALID_ARGUMENT,
        /shape/,
      ],
      [
        'unknown output',
        rawRequest(SMALL, smallBatch(1), [1, 1, 28, 28], { outputs: [{ name: 'embeddings' }] }),
        grpc.status.INVALID_ARGUMENT,
        /unexpected inference output 'embeddings'/,
      ],
      [
        'version 2',
        rawRequest(SMALL, smallBatch(1), [1, 1, 28, 28], { model_version: '2' }),
        grpc.status.NOT_FOUND,
        /version 2/,
      ],
    ]
    for (const [what, request, code, pattern] of cases) {
      const error = await rpc('ModelInfer', request).then(
        () => assert.fail(`${what}: answered OK`),
        (e: unknown) => e,
      )
      assertStatus(error, code, pattern)
      assert.equal((error as grpc.ServiceError).metadata.get('error-code').length, 1, what)
    }
    // Larger than MAX_BODY_BYTES (8 MiB), as an HTTP body would be: RESOURCE_EXHAUSTED.
    const rows = Math.ceil((app.config.maxBodyBytes + 1) / (784 * 4))
    await assert.rejects(
      rpc('ModelInfer', rawRequest(SMALL, new Float32Array(rows * 784), [rows, 1, 28, 28])),
      (e) => Boolean(assertStatus(e, grpc.status.RESOURCE_EXHAUSTED)),
    )
    // A deadline that has passed by the time the call could run: DEADLINE_EXCEEDED.
    await assert.rejects(
      rpc('ModelInfer', rawRequest(LARGE, smallBatch(1), [1, 1, 28, 28]), { deadline: Date.now() + 1 }),
      (e) => Boolean(assertStatus(e, grpc.status.DEADLINE_EXCEEDED)),
    )
    // Still serving, on both transports.
    const ok = await rpc<InferResponse>('ModelInfer', rawRequest(SMALL, smallBatch(1), [1, 1, 28, 28]), {
      deadline: Date.now() + 30_000,
    })
    assert.equal(ok.model_name, SMALL)
    assert.deepEqual(await rpc('ServerReady', {}), { ready: true })
    assert.equal((await rest('/readyz')).status, 200)
  })

  it('gRPC inference shows in the metrics with api="grpc"', async () => {
    await rpc('ModelInfer', rawRequest(SMALL, smallBatch(1), [1, 1, 28, 28]))
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    assert.match(text, new RegExp(`alphanet_inference_requests_total\\{model="${SMALL}",api="grpc"\\} [1-9]`))
    assert.match(
      text,
      /alphanet_inference_failures_total\{model="none",api="grpc",code="MODEL_NOT_FOUND"\} [1-9]/,
    )
  })

  it('grpc.health.v1.Health: Check, List and Watch report SERVING; unknown services are NOT_FOUND', async () => {
    const health = <Res>(method: string, request: unknown) =>
      clients.call<Res>(clients.health, method, request)
    assert.deepEqual(await health('Check', { service: '' }), { status: 'SERVING' })
    assert.deepEqual(await health('Check', { service: 'inference.GRPCInferenceService' }), {
      status: 'SERVING',
    })
    await assert.rejects(health('Check', { service: 'nope' }), (e) =>
      Boolean(assertStatus(e, grpc.status.NOT_FOUND)),
    )
    assert.deepEqual(await health('List', {}), {
      statuses: { '': { status: 'SERVING' }, 'inference.GRPCInferenceService': { status: 'SERVING' } },
    })
    const watch = (
      clients.health as unknown as { Watch: (r: unknown) => grpc.ClientReadableStream<unknown> }
    ).Watch({
      service: '',
    })
    const [first] = await new Promise<unknown[]>((resolve) =>
      watch.once('data', (d) => {
        resolve([d])
      }),
    )
    assert.deepEqual(first, { status: 'SERVING' })
    watch.on('error', () => undefined) // the CANCELLED status that cancel() produces
    watch.cancel()
  })
})
