/**
 * `npm run bench` section "cascade": the zoo's best cascade against its largest member on real
 * Fashion-MNIST test images, side by side in one run on one server. The best cascade is the
 * cheapest (expected MFLOPs) within 0.1 point of the largest member's top-1, else the most
 * accurate one. Measured: one request at a time (the two alternate image by image: mean and p50
 * latency, top-1 on those images, how many needed a later stage) and closed-loop throughput with
 * `clients` connections cycling through the images (the two alternate in rounds).
 */
import { readFileSync, existsSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import sharp from 'sharp'
import type { CascadeManifest, Manifest } from '../server/zoo/manifest-schema.js'
import { closedLoopOf, Connection, encodeRequest } from './lib/client.js'
import { HOST, type Child } from './lib/processes.js'
import { mean, median, round } from './lib/stats.js'

export const FASHION_MNIST_TEST = '/usr/share/datasets/fashion-mnist'

export interface CascadeSide {
  name: string
  kind: 'cascade' | 'model'
  expectedMflops: number
  /** One at a time: mean and median request latency over the images, ms. */
  meanLatencyMs: number
  p50LatencyMs: number
  /** Top-1 on the images sent. */
  top1: number
  /** Share of the images a later stage answered (cascade only). */
  escalated?: number
  /** Closed loop: answers per second (median over rounds). */
  throughputPerS: number
}

export interface CascadeBench {
  images: number
  clients: number
  rounds: number
  cascade: CascadeSide
  largest: CascadeSide
  latencyRatio: number
  throughputRatio: number
}

/** PNG bytes and labels of the first `count` test images. */
export async function testImages(
  count: number,
  dir = FASHION_MNIST_TEST,
): Promise<{ png: Buffer[]; labels: number[] }> {
  const images = gunzipSync(readFileSync(`${dir}/t10k-images-idx3-ubyte.gz`))
  const labels = gunzipSync(readFileSync(`${dir}/t10k-labels-idx1-ubyte.gz`))
  const n = Math.min(count, images.readUInt32BE(4))
  const [rows, cols] = [images.readUInt32BE(8), images.readUInt32BE(12)]
  const png: Buffer[] = []
  for (let i = 0; i < n; i++) {
    const pixels = images.subarray(16 + i * rows * cols, 16 + (i + 1) * rows * cols)
    png.push(
      await sharp(pixels, { raw: { width: cols, height: rows, channels: 1 } })
        .png()
        .toBuffer(),
    )
  }
  return { png, labels: Array.from(labels.subarray(8, 8 + n)) }
}

export function bestCascade(manifest: Manifest): CascadeManifest | undefined {
  const cascades = manifest.cascades ?? []
  const largest = [...manifest.models].sort((a, b) => b.mflops - a.mflops)[0]
  if (!largest || cascades.length === 0) return undefined
  const near = cascades.filter((c) => c.top1 >= largest.top1 - 0.001)
  if (near.length > 0) return [...near].sort((a, b) => a.expectedMflops - b.expectedMflops)[0]
  return [...cascades].sort((a, b) => b.top1 - a.top1)[0]
}

interface Answer {
  latencyMs: number
  index: number
  escalated: boolean
}

function request(name: string, image: Buffer): Buffer {
  return encodeRequest(
    {
      method: 'POST',
      path: `/v1/classify?model=${encodeURIComponent(name)}&topK=1`,
      headers: { 'content-type': 'image/png' },
      body: image,
    },
    HOST,
  )
}

async function classify(connection: Connection, name: string, image: Buffer): Promise<Answer> {
  const response = await connection.send(request(name, image))
  if (response.status !== 200) throw new Error(`${name}: HTTP ${response.status} ${response.body.toString()}`)
  const body = JSON.parse(response.body.toString()) as {
    predictions: { index: number }[]
    cascade?: { exitStage: number }
  }
  return {
    latencyMs: response.latencyMs,
    index: body.predictions[0]?.index ?? -1,
    escalated: (body.cascade?.exitStage ?? 0) > 0,
  }
}

export async function cascadeComparison(
  server: Child,
  manifest: Manifest,
  options: { images: number; clients: number; seconds: number; rounds: number },
  log: (line: string) => void,
): Promise<CascadeBench | undefined> {
  const cascade = bestCascade(manifest)
  const largest = [...manifest.models].sort((a, b) => b.mflops - a.mflops)[0]
  if (!cascade || !largest || !existsSync(`${FASHION_MNIST_TEST}/t10k-images-idx3-ubyte.gz`)) return undefined
  const { png, labels } = await testImages(options.images)
  log(`  cascade: ${cascade.name} vs ${largest.name} on ${png.length} test images`)
  const connection = new Connection(HOST, server.port)
  const answers: Record<'cascade' | 'model', Answer[]> = { cascade: [], model: [] }
  try {
    for (let i = 0; i < Math.min(20, png.length); i++) {
      await classify(connection, cascade.name, png[i] as Buffer)
      await classify(connection, largest.name, png[i] as Buffer)
    }
    for (let i = 0; i < png.length; i++) {
      // Alternate which goes first, so neither always runs on a warmer cache.
      const order: ['cascade' | 'model', string][] = [
        ['cascade', cascade.name],
        ['model', largest.name],
      ]
      if (i % 2 === 1) order.reverse()
      for (const [kind, name] of order) answers[kind].push(await classify(connection, name, png[i] as Buffer))
    }
  } finally {
    connection.close()
  }
  const throughput: Record<'cascade' | 'model', number[]> = { cascade: [], model: [] }
  for (let round = 0; round < options.rounds; round++) {
    for (const [kind, name] of [
      ['cascade', cascade.name],
      ['model', largest.name],
    ] as const) {
      const connections = Array.from({ length: options.clients }, () => new Connection(HOST, server.port))
      const idle = [...connections]
      let next = 0
      const send = async () => {
        const c = idle.pop()
        if (!c) throw new Error('more loops than connections')
        try {
          return await classify(c, name, png[next++ % png.length] as Buffer)
        } finally {
          idle.push(c)
        }
      }
      const result = await closedLoopOf(send, options.clients, options.seconds * 1000)
      connections.forEach((c) => {
        c.close()
      })
      throughput[kind].push((result.responses.length / result.elapsedMs) * 1000)
    }
  }
  const side = (kind: 'cascade' | 'model', name: string, expectedMflops: number): CascadeSide => {
    const list = answers[kind]
    const result: CascadeSide = {
      name,
      kind,
      expectedMflops,
      meanLatencyMs: round(mean(list.map((a) => a.latencyMs))),
      p50LatencyMs: round(median(list.map((a) => a.latencyMs))),
      top1: round(list.filter((a, i) => a.index === labels[i]).length / list.length, 4),
      throughputPerS: round(median(throughput[kind]), 1),
    }
    if (kind === 'cascade') result.escalated = round(list.filter((a) => a.escalated).length / list.length, 4)
    return result
  }
  const c = side('cascade', cascade.name, cascade.expectedMflops)
  const m = side('model', largest.name, largest.mflops)
  return {
    images: png.length,
    clients: options.clients,
    rounds: options.rounds,
    cascade: c,
    largest: m,
    latencyRatio: round(c.meanLatencyMs / m.meanLatencyMs),
    throughputRatio: round(c.throughputPerS / m.throughputPerS),
  }
}

export function cascadeMarkdown(result: CascadeBench): string {
  const row = (s: CascadeSide) =>
    `| \`${s.name}\` | ${s.kind} | ${s.expectedMflops.toFixed(2)} | ${s.meanLatencyMs.toFixed(3)} | ${s.p50LatencyMs.toFixed(3)} | ${(s.top1 * 100).toFixed(2)} | ${s.escalated === undefined ? '--' : `${(s.escalated * 100).toFixed(1)} %`} | ${s.throughputPerS.toFixed(1)} |`
  return [
    `### Cascade vs the largest member (${result.images} Fashion-MNIST test images, one server)`,
    '',
    '| served | kind | MFLOPs (expected) | mean latency ms (one at a time) | p50 ms | top-1 % on these images | answered by a later stage | throughput /s (' +
      `${result.clients} clients, median of ${result.rounds} rounds) |`,
    '|---|---|---:|---:|---:|---:|---:|---:|',
    row(result.cascade),
    row(result.largest),
    '',
    `Cascade ÷ largest: mean latency ×${result.latencyRatio}, throughput ×${result.throughputRatio}.`,
    '',
  ].join('\n')
}
