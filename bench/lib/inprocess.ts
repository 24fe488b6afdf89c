/**
 * The baselines the server is compared with, run inside the benchmark process itself with the
 * server's own code and session options:
 * - the in-process pipeline: decode (sharp) → preprocess (the server's Pillow-exact resampler) →
 *   session.run → softmax + top-5, on the main thread, one image at a time or several in flight
 *   (sharp decodes off-thread, so lanes overlap decode with inference);
 * - the runtime alone: session.run on ready tensors at a batch size, the best the runtime can do.
 */
import ort from '../../server/runtime/ort.js'
import { idleRunMs, sessionOptions } from '../../server/runtime/session.js'
import { syntheticInput } from '../../server/runtime/latency.js'
import { decodeImage } from '../../server/preprocess/decode.js'
import { pixelsToTensor } from '../../server/preprocess/pixels-to-tensor.js'
import { rankPredictions } from '../../server/postprocess.js'
import type { ModelEntry } from '../../server/zoo/model-entry.js'
import type { InferenceSession } from '../../server/runtime/ort.js'

const MAX_PIXELS = 40_000_000

export class InProcess {
  private single: InstanceType<typeof ort.Tensor> | undefined

  /** `session` runs batches; `lone` runs single images (a one-thread session where faster). */
  private constructor(
    private readonly model: ModelEntry,
    private readonly session: InferenceSession,
    private readonly lone: InferenceSession,
  ) {}

  /**
   * A session with the server's options and its choice of intra-op threads: `intraOpThreads`,
   * or 1 where that answers a lone request sooner (as the inference worker decides at start-up).
   */
  static async create(model: ModelEntry, intraOpThreads: number): Promise<InProcess> {
    const open = (threads: number) =>
      ort.InferenceSession.create(model.path, sessionOptions({ provider: 'cpu', intraOpThreads: threads }))
    const { channels, size } = model.input
    const feeds = {
      [model.input.name]: new ort.Tensor('float32', syntheticInput(channels * size * size), [
        1,
        channels,
        size,
        size,
      ]),
    }
    const configured = await open(intraOpThreads)
    if (intraOpThreads <= 1) return new InProcess(model, configured, configured)
    const single = await open(1)
    if ((await idleRunMs(single, feeds)) < (await idleRunMs(configured, feeds))) {
      return new InProcess(model, configured, single)
    }
    await single.release()
    return new InProcess(model, configured, configured)
  }

  private dims(rows: number): number[] {
    const { channels, size } = this.model.input
    return [rows, channels, size, size]
  }

  /** One image through the whole pipeline; returns its latency, ms. */
  async classify(image: Buffer): Promise<number> {
    return (await this.classifyTimed(image)).totalMs
  }

  /** One image through the whole pipeline, with the time of its compute stages, ms. */
  async classifyTimed(image: Buffer): Promise<{ totalMs: number; computeMs: number }> {
    const begin = performance.now()
    const pixels = await decodeImage(image, { maxPixels: MAX_PIXELS })
    const tensor = pixelsToTensor(pixels, this.model.input)
    const outputs = await this.lone.run({
      [this.model.input.name]: new ort.Tensor('float32', tensor, this.dims(1)),
    })
    const ran = performance.now()
    const logits = outputs[this.lone.outputNames[0] ?? '']?.data as Float32Array
    rankPredictions(logits, this.model.labels, Math.min(5, this.model.labels.length))
    const end = performance.now()
    return { totalMs: end - begin, computeMs: ran - begin }
  }

  /** Images per second of `lanes` concurrent pipelines for `durationMs`. */
  async pipelineThroughput(image: Buffer, lanes: number, durationMs: number): Promise<number> {
    let done = 0
    const state = { running: true }
    const active = () => state.running
    const begin = performance.now()
    const loops = Array.from({ length: lanes }, async () => {
      while (active()) {
        await this.classify(image)
        if (active()) done++
      }
    })
    await new Promise((resolve) => setTimeout(resolve, durationMs))
    state.running = false
    const elapsed = performance.now() - begin
    await Promise.all(loops)
    return (done * 1000) / elapsed
  }

  /** One bare session.run at batch 1 on a ready tensor (what the server's worker times), ms. */
  async runOnceMs(): Promise<number> {
    const { channels, size } = this.model.input
    this.single ??= new ort.Tensor('float32', syntheticInput(channels * size * size), this.dims(1))
    const begin = performance.now()
    await this.lone.run({ [this.model.input.name]: this.single })
    return performance.now() - begin
  }

  /** Images per second of session.run alone at batch `rows`, for at least `durationMs` (≥ 2 runs). */
  async runtimeThroughput(rows: number, durationMs: number): Promise<number> {
    const { channels, size } = this.model.input
    const input = new ort.Tensor('float32', syntheticInput(rows * channels * size * size), this.dims(rows))
    await this.session.run({ [this.model.input.name]: input })
    let runs = 0
    const begin = performance.now()
    while (runs < 2 || performance.now() - begin < durationMs) {
      await this.session.run({ [this.model.input.name]: input })
      runs++
    }
    return (runs * rows * 1000) / (performance.now() - begin)
  }

  async close(): Promise<void> {
    await this.session.release()
    if (this.lone !== this.session) await this.lone.release()
  }
}
