/**
 * The one import of onnxruntime-node, so its process-wide settings are applied before any session
 * exists in any thread. Native logging is limited to fatal messages: every failure that matters
 * also surfaces as a thrown JS error that this server reports itself (with context), while ORT's
 * own stderr lines would duplicate it — e.g. the expected CUDA probe failure in `auto` mode would
 * print a red error line on every CPU-only start.
 */
import ort from 'onnxruntime-node'

ort.env.logLevel = 'fatal'

export default ort
export type { InferenceSession } from 'onnxruntime-node'
