/**
 * Validates a parsed manifest.json: schema version first (so a newer writer gets "unsupported
 * schemaVersion" rather than a wall of field errors), then the JSON Schema, then the invariants the
 * schema cannot express (docs/zoo-contract.md, bottom). File existence and checksums are per model
 * and checked by load-zoo.ts, because they make one model not ready rather than the zoo invalid.
 */
import { Compile } from 'typebox/compile'
import { cascadeProblems } from './cascade-invariants.js'
import { MANIFEST_SCHEMA_VERSION, ManifestSchema, type Manifest } from './manifest-schema.js'

/** The manifest cannot be served at all; `problems` lists every violation, one per line. */
export class ManifestError extends Error {
  constructor(
    readonly problems: string[],
    source = 'manifest',
  ) {
    super(`${source} is invalid:\n  ${problems.join('\n  ')}`)
    this.name = 'ManifestError'
  }
}

const checkManifest = Compile(ManifestSchema)

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** JSON-pointer path of an error, e.g. `/models/2/input/std/0` → `models[2].input.std[0]`. */
function readablePath(pointer: string): string {
  if (pointer === '') return '(manifest)'
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '')
}

function schemaProblems(value: unknown): string[] {
  const problems: string[] = []
  const seen = new Set<string>()
  for (const error of checkManifest.Errors(value)) {
    const params = error.params as Record<string, unknown>
    let detail = error.message
    if (error.keyword === 'required' && Array.isArray(params.requiredProperties)) {
      detail = `missing required ${params.requiredProperties.map((p) => `"${String(p)}"`).join(', ')}`
    } else if (error.keyword === 'additionalProperties' && Array.isArray(params.additionalProperties)) {
      detail = `unknown field ${params.additionalProperties.map((p) => `"${String(p)}"`).join(', ')}`
    }
    const line = `${readablePath(error.instancePath)}: ${detail}`
    if (!seen.has(line)) {
      seen.add(line)
      problems.push(line)
    }
  }
  return problems
}

function invariantProblems(manifest: Manifest): string[] {
  const problems: string[] = []
  const names = new Set<string>()
  const files = new Map<string, string>()
  manifest.models.forEach((model, i) => {
    const where = `models[${i}] (${model.name})`
    if (names.has(model.name)) problems.push(`${where}: duplicate model name "${model.name}"`)
    names.add(model.name)
    const other = files.get(model.file)
    if (other !== undefined) problems.push(`${where}: file "${model.file}" is also used by "${other}"`)
    else files.set(model.file, model.name)
    const { input } = model
    if (input.mean.length !== input.channels) {
      problems.push(`${where}: input.mean has ${input.mean.length} values for ${input.channels} channel(s)`)
    }
    if (input.std.length !== input.channels) {
      problems.push(`${where}: input.std has ${input.std.length} values for ${input.channels} channel(s)`)
    }
    if (input.resizeShortSide < input.size) {
      problems.push(
        `${where}: input.resizeShortSide ${input.resizeShortSide} is smaller than input.size ${input.size}`,
      )
    }
    if (model.top5 !== undefined && model.top5 < model.top1) {
      problems.push(`${where}: top5 ${model.top5} is below top1 ${model.top1}`)
    }
    if (model.latencyMs && model.latencyMs.p95 < model.latencyMs.p50) {
      problems.push(`${where}: latencyMs.p95 ${model.latencyMs.p95} is below p50 ${model.latencyMs.p50}`)
    }
    if (model.arch.resolution !== model.resolution) {
      problems.push(
        `${where}: arch.resolution ${model.arch.resolution} differs from resolution ${model.resolution}`,
      )
    }
    if (model.reference && model.reference.file === model.file) {
      problems.push(`${where}: reference.file must not be the ONNX file itself`)
    }
  })
  if (manifest.defaultModel !== undefined && !names.has(manifest.defaultModel)) {
    problems.push(`defaultModel "${manifest.defaultModel}" names no model of the zoo`)
  }
  if (Number.isNaN(Date.parse(manifest.zoo.createdAt))) {
    problems.push(`zoo.createdAt "${manifest.zoo.createdAt}" is not an ISO-8601 timestamp`)
  }
  problems.push(...cascadeProblems(manifest))
  return problems
}

/** Returns the manifest typed, or throws ManifestError naming every problem. */
export function validateManifest(value: unknown, source = 'manifest'): Manifest {
  if (!isRecord(value)) throw new ManifestError(['the manifest must be a JSON object'], source)
  const version = value.schemaVersion
  if (version === undefined) {
    throw new ManifestError(
      [`missing "schemaVersion" (this server reads version ${MANIFEST_SCHEMA_VERSION})`],
      source,
    )
  }
  if (version !== MANIFEST_SCHEMA_VERSION) {
    throw new ManifestError(
      [
        `unsupported schemaVersion ${JSON.stringify(version)}: this server reads version ${MANIFEST_SCHEMA_VERSION} ` +
          '(see docs/zoo-contract.md); upgrade the server or re-export the zoo',
      ],
      source,
    )
  }
  if (!checkManifest.Check(value)) throw new ManifestError(schemaProblems(value), source)
  const problems = invariantProblems(value)
  if (problems.length > 0) throw new ManifestError(problems, source)
  return value
}

/** Parses manifest.json text; a JSON syntax error is reported as a ManifestError too. */
export function parseManifest(text: string, source = 'manifest'): Manifest {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ManifestError([`not valid JSON: ${(error as Error).message}`], source)
  }
  return validateManifest(value, source)
}
