// Inference worker entry when the server runs from its TypeScript sources (tests, `npm run dev`).
// On Node 20 tsx registers its loader in the main thread only, so each worker registers it itself
// before importing the real worker; the built server (dist/) starts worker.js directly instead.
import { register } from 'tsx/esm/api'

register()
await import('./worker.ts')
