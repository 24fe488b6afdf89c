/**
 * What app.ts decorates the Fastify instance with, typed once for every route: `app.zoo` (the
 * read side of the served zoo), `app.inference` (run a model of it) and `app.zooManager` (swap in
 * a new zoo). All three are the one runtime object (runtime/serving-zoo.ts); the types live in
 * runtime/types.ts, re-exported here for the routes.
 */
import type { AppConfig } from './config.js'
import type { ModelRunner, ZooReloader, ZooView } from './runtime/types.js'

export type {
  InferenceResult,
  ModelRunner,
  ReloadResult,
  RunOptions,
  ZooReloader,
  ZooView,
} from './runtime/types.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: AppConfig
    zoo: ZooView
    inference: ModelRunner
    zooManager: ZooReloader
  }
}
