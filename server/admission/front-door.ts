/**
 * The front door every transport shares (HTTP routes and gRPC calls alike): `app.admission.admit()`
 * admits one request or throws the refusal admit.ts gives — the server under pressure (event-loop
 * delay, heap or RSS over its limit) or already handling MAX_IN_FLIGHT requests. The HTTP hooks in
 * plugins/security.ts and the gRPC services count against the same in-flight bound.
 */
import { admit } from './admit.js'

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
    const refused = admit({ stage: 'in-flight', inFlight: this.count, maxInFlight: this.max })
    if (refused) throw refused
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
