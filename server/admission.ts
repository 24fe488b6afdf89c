/**
 * The front door every transport shares (HTTP routes and gRPC calls alike): `app.admission.admit()`
 * admits one request or throws 503 OVERLOADED, while the server is under pressure (event-loop
 * delay, heap or RSS over its limit) or already handles MAX_IN_FLIGHT requests. The HTTP hooks in
 * plugins/security.ts and the gRPC services count against the same in-flight bound.
 */
import { apiError } from './errors.js'

export interface Admission {
  /** Admits one request, or throws OVERLOADED; call the returned function once when it ends. */
  admit(): () => void
}

/** At most `max` requests at once (0 = no bound). */
export class InFlightLimit {
  private count = 0

  constructor(private readonly max: number) {}

  /** Counts a request in, or throws OVERLOADED; the returned function counts it out (once). */
  enter(): () => void {
    if (this.max > 0 && this.count >= this.max) {
      throw apiError(
        'OVERLOADED',
        `the server is handling ${this.count} requests (MAX_IN_FLIGHT ${this.max}); retry later`,
        { reason: 'inFlight', retryAfterS: 1 },
      )
    }
    this.count++
    let left = false
    return () => {
      if (left) return
      left = true
      this.count--
    }
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    admission: Admission
  }
}
