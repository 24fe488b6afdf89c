/**
 * What app.ts decorates the Fastify instance with, typed once for every route: `app.zoo` (the
 * read side of the served zoo), `app.inference` (run a model of it) and `app.zooManager` (swap in
 * a new zoo). All three are the one runtime object (runtime/serving-zoo.ts); their types live in
 * runtime/types.ts, the one module of the types the routes and the runtime share.
 */
import type { AppConfig } from './config.js'
import type { ModelRunner, ZooReloader, ZooView } from './runtime/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig
    zoo: ZooView
    inference: ModelRunner
    zooManager: ZooReloader
  }
}
