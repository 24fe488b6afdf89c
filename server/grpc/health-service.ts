/**
 * grpc.health.v1.Health, for Kubernetes gRPC probes (`grpc: {port: 8081}`) and load balancers.
 * SERVING means "can serve", as GET /readyz does: a zoo is loaded, at least one model is warm and
 * the server is not draining. It answers for the whole server ("") and for
 * inference.GRPCInferenceService; other names are NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch).
 * Watch streams end when the server drains (after a last NOT_SERVING), so they never hold the
 * drain open.
 */
import * as grpc from '@grpc/grpc-js'
import type { ZooView } from '../runtime/types.js'
import { INFERENCE_SERVICE } from './proto.js'

type ServingStatus = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN'

/** How often a Watch stream re-reads readiness (there is no readiness event to listen to). */
export const WATCH_INTERVAL_MS = 1000

const SERVICES = ['', INFERENCE_SERVICE]

export class HealthService {
  private readonly watches = new Set<grpc.ServerWritableStream<unknown, unknown>>()
  private draining = false
  private timer: NodeJS.Timeout | undefined
  private readonly last = new Map<grpc.ServerWritableStream<unknown, unknown>, ServingStatus>()

  constructor(private readonly zoo: ZooView) {}

  private status(service: string): ServingStatus {
    if (!SERVICES.includes(service)) return 'SERVICE_UNKNOWN'
    return !this.draining && this.zoo.isReady() ? 'SERVING' : 'NOT_SERVING'
  }

  implementation(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<{ service: string }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        const status = this.status(call.request.service)
        if (status === 'SERVICE_UNKNOWN') {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${call.request.service}"` })
        } else callback(null, { status })
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        callback(null, {
          statuses: Object.fromEntries(
            SERVICES.map((service) => [service, { status: this.status(service) }]),
          ),
        })
      },
      Watch: (call: grpc.ServerWritableStream<{ service: string }, unknown>) => {
        this.watches.add(call)
        this.send(call)
        call.once('cancelled', () => {
          this.forget(call)
        })
        if (this.draining) this.end(call)
        else
          this.timer ??= setInterval(() => {
            this.poll()
          }, WATCH_INTERVAL_MS).unref()
      },
    }
  }

  /** Sends the stream's status if it changed since the last one it got. */
  private send(call: grpc.ServerWritableStream<{ service: string }, unknown>): void {
    const status = this.status(call.request.service)
    if (this.last.get(call) === status) return
    this.last.set(call, status)
    call.write({ status })
  }

  private poll(): void {
    for (const call of this.watches)
      this.send(call as grpc.ServerWritableStream<{ service: string }, unknown>)
  }

  private forget(call: grpc.ServerWritableStream<unknown, unknown>): void {
    this.watches.delete(call)
    this.last.delete(call)
    if (this.watches.size === 0 && this.timer) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  private end(call: grpc.ServerWritableStream<unknown, unknown>): void {
    this.send(call as grpc.ServerWritableStream<{ service: string }, unknown>)
    this.forget(call)
    call.end()
  }

  /** Draining: every status turns NOT_SERVING, and open Watch streams get it and end. */
  drain(): void {
    this.draining = true
    for (const call of [...this.watches]) this.end(call)
  }
}
