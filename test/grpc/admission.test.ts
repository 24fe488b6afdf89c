/**
 * gRPC calls pass the same front door as HTTP requests and drain with them: beyond MAX_IN_FLIGHT
 * they are shed with UNAVAILABLE and a retry hint (retry-after, grpc-retry-pushback-ms and a
 * google.rpc.RetryInfo), and app.close() lets calls in flight finish, refuses new ones and ends
 * health Watch streams with NOT_SERVING; the real process does the same on SIGTERM and exits 0.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as grpc from '@grpc/grpc-js'
import protobuf from 'protobufjs'
import { readReference } from '../helper.js'
import { startServer } from '../hardening/support.js'
import { assertStatus, freePort, grpcClients, startGrpcApp, type GrpcClients } from './support.js'

const LARGE = 'fixture-gray28-large'

/** google.rpc.Status with a RetryInfo detail, as the rich error model defines them. */
const RICH_ERRORS = protobuf.parse(
  `
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Duration { int64 seconds = 1; int32 nanos = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message RetryInfo { Duration retry_delay = 1; }
`,
  { keepCase: true },
).root

async function batchRequest(rows: number) {
  const { input } = await readReference(LARGE)
  const data = new Float32Array(rows * 784).map((_, i) => input.data[i % input.data.length] ?? 0)
  return {
    model_name: LARGE,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 1, 28, 28] }],
    raw_input_contents: [Buffer.from(data.buffer)],
  }
}

type Outcome = { ok: true } | { ok: false; error: grpc.ServiceError }

function settle(clients: GrpcClients, request: unknown): Promise<Outcome> {
  return clients.call(clients.inference, 'ModelInfer', request).then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error: error as grpc.ServiceError }),
  )
}

describe('gRPC admission and drain', () => {
  it('beyond MAX_IN_FLIGHT: UNAVAILABLE with retry-after, pushback and google.rpc.RetryInfo', async (t) => {
    const { app, clients } = await startGrpcApp({ maxInFlight: 1 })
    t.after(async () => {
      clients.close()
      await app.close()
    })
    const request = await batchRequest(32)
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => settle(clients, request)))
    assert.ok(
      outcomes.some((o) => o.ok),
      'one call was admitted',
    )
    const refused = outcomes.flatMap((o) => (o.ok ? [] : [o.error]))
    assert.ok(refused.length > 0, 'calls beyond the bound were refused')
    for (const error of refused) {
      assertStatus(error, grpc.status.UNAVAILABLE, /MAX_IN_FLIGHT 1/)
      assert.deepEqual(error.metadata.get('error-code'), ['OVERLOADED'])
      assert.deepEqual(error.metadata.get('retry-after'), ['1'])
      assert.deepEqual(error.metadata.get('grpc-retry-pushback-ms'), ['1000'])
      const [details] = error.metadata.get('grpc-status-details-bin')
      assert.ok(Buffer.isBuffer(details))
      const status = RICH_ERRORS.lookupType('google.rpc.Status').toObject(
        RICH_ERRORS.lookupType('google.rpc.Status').decode(details),
        { longs: Number, defaults: true },
      ) as { code: number; message: string; details: { type_url: string; value: Uint8Array }[] }
      assert.equal(status.code, grpc.status.UNAVAILABLE)
      assert.equal(status.message, error.details)
      const [detail] = status.details
      assert.ok(detail)
      assert.equal(detail.type_url, 'type.googleapis.com/google.rpc.RetryInfo')
      const retryInfo = RICH_ERRORS.lookupType('google.rpc.RetryInfo').toObject(
        RICH_ERRORS.lookupType('google.rpc.RetryInfo').decode(detail.value),
        { longs: Number },
      )
      assert.deepEqual(retryInfo, { retry_delay: { seconds: 1 } })
    }
    // The refusals are counted as shed, like HTTP ones.
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body
    assert.match(metrics, /alphanet_shed_requests_total\{model="none",reason="overloaded"\} [1-9]/)
    // The bound is released: a lone call is served again.
    assert.equal((await settle(clients, request)).ok, true)
  })

  it('close(): calls in flight finish, new calls are refused, Watch streams end NOT_SERVING', async () => {
    const { app, clients } = await startGrpcApp()
    try {
      // 12 × 16 rows: within the model's queue bound (MAX_QUEUE_SIZE 256 rows).
      const request = await batchRequest(16)
      const watch = (
        clients.health as unknown as { Watch: (r: unknown) => grpc.ClientReadableStream<unknown> }
      ).Watch({
        service: '',
      })
      const statuses: unknown[] = []
      watch.on('data', (d) => statuses.push(d))
      const watchEnded = new Promise<grpc.StatusObject>((resolve) => watch.once('status', resolve))
      const inFlight = Array.from({ length: 12 }, () => settle(clients, request))
      // Wait for the first answer: the server is now working through the rest.
      await Promise.race(inFlight)
      const closed = app.close()
      const late = await settle(grpcClients(app.grpc.port ?? 0), request)
      const outcomes = await Promise.all(inFlight)
      for (const outcome of outcomes) assert.ok(outcome.ok, outcome.ok ? '' : outcome.error.message)
      assert.equal(late.ok, false, 'a call after close() began is refused')
      assertStatus((late as { error: unknown }).error, grpc.status.UNAVAILABLE)
      await closed
      assert.equal((await watchEnded).code, grpc.status.OK)
      assert.deepEqual(statuses, [{ status: 'SERVING' }, { status: 'NOT_SERVING' }])
    } finally {
      clients.close()
      await app.close()
    }
  })

  it('SIGTERM on the real process drains gRPC calls in flight, then exits 0', async (t) => {
    const port = await freePort()
    const server = await startServer({ GRPC_PORT: String(port) })
    t.after(() => {
      if (server.child.exitCode === null) server.child.kill('SIGKILL')
    })
    await server.waitForLog(/gRPC .* listening/)
    const clients = grpcClients(port)
    t.after(() => {
      clients.close()
    })
    const request = await batchRequest(16)
    const inFlight = Array.from({ length: 15 }, () =>
      settle(clients, request).then((outcome) => ({ outcome, at: Date.now() })),
    )
    await Promise.race(inFlight)
    const signalledAt = Date.now()
    server.child.kill('SIGTERM')
    const answers = await Promise.all(inFlight)
    for (const { outcome } of answers) assert.ok(outcome.ok, outcome.ok ? '' : outcome.error.message)
    assert.ok(
      answers.some((a) => a.at > signalledAt),
      'at least one call was still in flight when SIGTERM arrived',
    )
    assert.equal(await server.exit, 0, server.stderr())
    assert.match(server.stdout(), /"msg":"shut down cleanly"/)
  })
})
