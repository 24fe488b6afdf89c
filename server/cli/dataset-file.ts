/**
 * The evaluation-dataset file read by `zoo:validate --dataset` (written by the Python pipeline):
 * images already preprocessed to one model input contract, so top-1 measured here in
 * onnxruntime-node is comparable to the figure the pipeline measured in PyTorch.
 *
 * Layout (all little-endian):
 *   bytes 0..7    magic "AZDATA01"
 *   bytes 8..11   uint32 H = byte length of the header that follows
 *   H bytes       UTF-8 JSON header, right-padded with spaces so 12 + H is a multiple of 4:
 *                 { "version": 1, "count": N, "shape": [N, C, S, S], "dtype": "float32",
 *                   "labelDtype": "int32" | "uint8", "classes": K,
 *                   "input": { "channels": C, "size": S, "mean": [...], "std": [...],
 *                              "resizeShortSide": R, "interpolation": "bilinear" | "bicubic" | "nearest" },
 *                   "description"?: "..." }
 *   N·C·S·S float32   the preprocessed images, NCHW
 *   N int32 or N uint8 the labels (class indices in [0, K))
 * Nothing may follow the labels. Python writer: header = json.dumps(h).encode(); pad with b" ";
 * then images.astype("<f4").tobytes() and labels.astype("<i4").tobytes().
 */
import { readFile } from 'node:fs/promises'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'

export const DATASET_MAGIC = 'AZDATA01'

const DatasetHeaderSchema = Type.Object({
  version: Type.Literal(1),
  count: Type.Integer({ minimum: 1 }),
  shape: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 4, maxItems: 4 }),
  dtype: Type.Literal('float32'),
  labelDtype: Type.Union([Type.Literal('int32'), Type.Literal('uint8')]),
  classes: Type.Integer({ minimum: 1 }),
  input: Type.Object({
    channels: Type.Integer({ minimum: 1 }),
    size: Type.Integer({ minimum: 1 }),
    mean: Type.Array(Type.Number()),
    std: Type.Array(Type.Number()),
    resizeShortSide: Type.Integer({ minimum: 1 }),
    interpolation: Type.Union([Type.Literal('bilinear'), Type.Literal('bicubic'), Type.Literal('nearest')]),
  }),
  description: Type.Optional(Type.String()),
})

export type DatasetHeader = Static<typeof DatasetHeaderSchema>

export interface Dataset {
  header: DatasetHeader
  /** N·C·S·S values, NCHW. */
  images: Float32Array
  labels: Int32Array
}

export class DatasetError extends Error {
  constructor(path: string, problem: string) {
    super(`dataset ${path}: ${problem}`)
    this.name = 'DatasetError'
  }
}

const checkHeader = Compile(DatasetHeaderSchema)

export function parseDataset(bytes: Uint8Array, path = 'dataset'): Dataset {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.length < 12 || buffer.toString('latin1', 0, 8) !== DATASET_MAGIC) {
    throw new DatasetError(path, `not a dataset file (expected the magic "${DATASET_MAGIC}")`)
  }
  const headerLength = buffer.readUInt32LE(8)
  const dataStart = 12 + headerLength
  if (dataStart > buffer.length) throw new DatasetError(path, 'truncated header')
  if (dataStart % 4 !== 0) throw new DatasetError(path, 'header must be space-padded to a 4-byte boundary')
  let header: unknown
  try {
    header = JSON.parse(buffer.toString('utf8', 12, dataStart))
  } catch (error) {
    throw new DatasetError(path, `header is not JSON: ${(error as Error).message}`)
  }
  if (!checkHeader.Check(header)) {
    const first = checkHeader.Errors(header)[0]
    throw new DatasetError(
      path,
      `invalid header at ${first?.instancePath || '/'}: ${first?.message ?? 'invalid'}`,
    )
  }
  const [n, c, h, w] = header.shape as [number, number, number, number]
  if (n !== header.count) throw new DatasetError(path, `shape[0] ${n} differs from count ${header.count}`)
  if (c !== header.input.channels || h !== header.input.size || w !== header.input.size) {
    throw new DatasetError(path, `shape [${header.shape.join(', ')}] does not match the input contract`)
  }
  const imageBytes = n * c * h * w * 4
  const labelBytes = n * (header.labelDtype === 'int32' ? 4 : 1)
  if (buffer.length !== dataStart + imageBytes + labelBytes) {
    throw new DatasetError(
      path,
      `size ${buffer.length} bytes, expected ${dataStart + imageBytes + labelBytes} for ${n} images and labels`,
    )
  }
  // Copies give aligned, owned arrays whatever the alignment of the file buffer.
  const images = new Float32Array(n * c * h * w)
  for (let i = 0; i < images.length; i++) images[i] = buffer.readFloatLE(dataStart + i * 4)
  const labels = new Int32Array(n)
  const labelStart = dataStart + imageBytes
  for (let i = 0; i < n; i++) {
    const label =
      header.labelDtype === 'int32'
        ? buffer.readInt32LE(labelStart + i * 4)
        : buffer.readUInt8(labelStart + i)
    if (label < 0 || label >= header.classes) {
      throw new DatasetError(path, `label ${label} of sample ${i} is outside [0, ${header.classes})`)
    }
    labels[i] = label
  }
  return { header, images, labels }
}

export async function readDataset(path: string): Promise<Dataset> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (error) {
    throw new DatasetError(path, `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`)
  }
  return parseDataset(bytes, path)
}
