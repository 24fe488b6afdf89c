/**
 * Reads a zoo directory: validates manifest.json and verifies every model's ONNX file (present,
 * SHA-256 as declared). A bad file makes that model not ready with the reason; only an unreadable
 * or invalid manifest makes the whole zoo unusable. Sessions are created later, in the workers.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Manifest, ModelManifest } from './manifest-schema.js'
import type { ModelEntry } from './model-entry.js'
import { ManifestError, parseManifest } from './validate-manifest.js'

export const MANIFEST_FILE = 'manifest.json'

export interface Zoo {
  /** Absolute zoo directory. */
  dir: string
  manifest: Manifest
  models: ModelEntry[]
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Why a model file cannot be served, or undefined when it exists and matches its checksum. */
async function fileProblem(path: string, model: ModelManifest): Promise<string | undefined> {
  try {
    const info = await stat(path)
    if (!info.isFile()) return `model file ${model.file} is not a regular file`
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === 'ENOENT'
      ? `model file ${model.file} is missing`
      : `model file ${model.file}: ${code ?? 'unreadable'}`
  }
  const actual = await sha256File(path)
  if (actual !== model.sha256) {
    return `model file ${model.file} has sha256 ${actual}, the manifest declares ${model.sha256}`
  }
  return undefined
}

function toEntry(model: ModelManifest, path: string, problem: string | undefined): ModelEntry {
  const { latencyMs, ...rest } = model
  const entry: ModelEntry = { ...rest, path, ready: problem === undefined }
  if (latencyMs) entry.pipelineLatencyMs = latencyMs
  if (problem !== undefined) entry.reason = problem
  return entry
}

/**
 * Loads and validates `dir`. Throws ManifestError when manifest.json is missing or invalid; models
 * whose files fail the checks come back with `ready: false` and a `reason`.
 */
export async function loadZoo(dir: string): Promise<Zoo> {
  const zooDir = resolve(dir)
  const manifestPath = join(zooDir, MANIFEST_FILE)
  let text: string
  try {
    text = await readFile(manifestPath, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why = code === 'ENOENT' ? 'not found' : `unreadable (${code ?? String(error)})`
    throw new ManifestError([`${manifestPath} ${why}`], `zoo ${zooDir}`)
  }
  const manifest = parseManifest(text, manifestPath)
  const models = await Promise.all(
    manifest.models.map(async (model) => {
      const path = join(zooDir, model.file)
      return toEntry(model, path, await fileProblem(path, model))
    }),
  )
  return { dir: zooDir, manifest, models }
}
