// Preprocessing worker entry when the server runs from its TypeScript sources (tests, `npm run
// dev`): registers tsx in the worker, then loads the real worker (see worker-from-source.mjs).
import { register } from 'tsx/esm/api'

register()
await import('./preprocess-worker.ts')
