/**
 * Runs every test file in ONE process (`npm test`). On a small machine most of what `node --test`
 * spends per file is starting Node and compiling the same imports (fastify, typebox, sharp,
 * onnxruntime) again through tsx; importing all files into one process pays that once. Files run
 * in sorted order; node:test reports per suite and sets a failing exit code on any failure.
 * Pass file paths to run only those: `npm test -- test/zoo/load-zoo.test.ts`.
 */
import { readdirSync, statSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const root = resolve(import.meta.dirname, '..')

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name)
      if (name === 'fixtures' || name === 'node_modules' || name === 'training') return []
      if (statSync(path).isDirectory()) return testFiles(path)
      return name.endsWith('.test.ts') ? [path] : []
    })
}

const requested = process.argv.slice(2)
const files = requested.length > 0 ? requested.map((f) => resolve(f)) : testFiles(join(root, 'test'))
for (const file of files) {
  process.stderr.write(`# file ${relative(root, file)}\n`)
  await import(pathToFileURL(file).href)
}
