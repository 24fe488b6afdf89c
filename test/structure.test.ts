/**
 * Two mechanical rules of the server's layout (issue 12), kept true from now on: no .ts file under
 * server/ over 400 lines, and no import cycle among server/ modules — type-only imports
 * (`import type`, `import('…').T`) count, as do `export … from` and dynamic `import()`. Imports are
 * read from each file's syntax tree (the TypeScript compiler the project already type-checks
 * with), so a specifier in a comment or a string is not one.
 */
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import ts from 'typescript'

const root = resolve(import.meta.dirname, '..')
const serverDir = join(root, 'server')
const MAX_LINES = 400

function tsFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) return tsFiles(path)
      return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : []
    })
}

function lineCount(text: string): number {
  const lines = text.split('\n').length
  return text.endsWith('\n') ? lines - 1 : lines
}

/** The module specifiers `source` imports or re-exports, type-only ones included. */
function importedSpecifiers(fileName: string, source: string): string[] {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text)
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      found.push(node.moduleReference.expression.text)
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      found.push(node.argument.literal.text)
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text)
    }
    ts.forEachChild(node, visit)
  }
  visit(file)
  return found
}

/** The .ts file a relative specifier of `from` names ('./x.js' → './x.ts'), if it is one. */
function resolveRelative(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined
  const target = resolve(dirname(from), specifier)
  const candidates = [
    target.replace(/\.(m|c)?js$/, (ext) => ext.replace('js', 'ts')),
    target,
    `${target}.ts`,
    join(target, 'index.ts'),
  ]
  return candidates.find((path) => path.endsWith('.ts') && existsSync(path))
}

/** Every module under server/ and the server/ modules it imports. */
function serverGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of tsFiles(serverDir)) {
    const targets = importedSpecifiers(file, readFileSync(file, 'utf8'))
      .map((specifier) => resolveRelative(file, specifier))
      .filter((path): path is string => path !== undefined && path.startsWith(serverDir))
    graph.set(file, [...new Set(targets)])
  }
  return graph
}

/**
 * The cycles of `graph`, one per strongly connected component of more than one node (or a node
 * importing itself), each as a path that starts and ends at the same node (Tarjan's algorithm).
 */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const components: string[][] = []
  const connect = (node: string): void => {
    index.set(node, counter)
    low.set(node, counter)
    counter++
    stack.push(node)
    onStack.add(node)
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        connect(next)
        low.set(node, Math.min(low.get(node)!, low.get(next)!))
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!))
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = []
      let member: string
      do {
        member = stack.pop()!
        onStack.delete(member)
        component.push(member)
      } while (member !== node)
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component)
    }
  }
  for (const node of graph.keys()) if (!index.has(node)) connect(node)
  return components.map((component) => cycleWithin(graph, new Set(component)))
}

/** One concrete cycle through the members of a strongly connected component (breadth-first). */
function cycleWithin(graph: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>): string[] {
  const start = [...members].sort()[0]!
  const previous = new Map<string, string>()
  const queue = [start]
  while (queue.length > 0) {
    const node = queue.shift()!
    for (const next of graph.get(node) ?? []) {
      if (!members.has(next)) continue
      if (next === start) {
        const path = [node]
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!)
        return [...path, start]
      }
      if (!previous.has(next)) {
        previous.set(next, node)
        queue.push(next)
      }
    }
  }
  return [start]
}

describe('server layout', () => {
  const short = (path: string) => relative(root, path)

  it(`has no .ts file over ${MAX_LINES} lines`, () => {
    const long = tsFiles(serverDir)
      .map((file) => ({ file: short(file), lines: lineCount(readFileSync(file, 'utf8')) }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ file, lines }) => `${file}: ${lines} lines`)
    assert.deepEqual(long, [], `split these by responsibility:\n${long.join('\n')}`)
  })

  it('has no import cycle among server/ modules, type-only imports included', () => {
    const graph = serverGraph()
    const edges = [...graph.values()].reduce((sum, targets) => sum + targets.length, 0)
    assert.ok(
      graph.size > 50 && edges > 200,
      `only ${graph.size} modules, ${edges} imports found under server/`,
    )
    const cycles = findCycles(graph).map((cycle) => cycle.map(short).join(' → '))
    assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`)
  })
})

describe('the layout checks themselves', () => {
  it('read every kind of import, type-only and re-exports included, and nothing in comments', () => {
    const source = [
      "import { a } from './a.js'",
      "import type { B } from './b.js'",
      "import './c.js'",
      "export { d } from './d.js'",
      "export * from './e.js'",
      "export type { F } from './f.js'",
      "let g: import('./g.js').G",
      "const h = await import('./h.js')",
      "import i = require('./i.js')",
      "// import { x } from './not-an-import.js'",
      'const s = "from \'./not-an-import-either.js\'"',
      "import {\n  j,\n  type J,\n} from './j.js'",
      "import fastify from 'fastify'",
    ].join('\n')
    assert.deepEqual(importedSpecifiers('example.ts', source), [
      './a.js',
      './b.js',
      './c.js',
      './d.js',
      './e.js',
      './f.js',
      './g.js',
      './h.js',
      './i.js',
      './j.js',
      'fastify',
    ])
  })

  it('find a cycle, including a self-import, and none in a graph without one', () => {
    const acyclic = new Map([
      ['a', ['b', 'c']],
      ['b', ['c']],
      ['c', []],
    ])
    assert.deepEqual(findCycles(acyclic), [])
    const cyclic = new Map([
      ['app', ['routes']],
      ['routes', ['decorators']],
      ['decorators', ['runtime']],
      ['runtime', ['routes']],
      ['self', ['self']],
    ])
    const cycles = findCycles(cyclic)
      .map((cycle) => cycle.join(' → '))
      .sort()
    assert.deepEqual(cycles, ['decorators → runtime → routes → decorators', 'self → self'])
  })

  it('find the cycle in files on disk the way the server check reads them', () => {
    const files = new Map([
      ['/x/a.ts', "import type { B } from './b.js'\nexport const a = 1"],
      ['/x/b.ts', "export type { A } from './a.js'\nexport type B = 1"],
    ])
    const graph = new Map(
      [...files].map(([file, source]) => [
        file,
        importedSpecifiers(file, source).map((specifier) =>
          resolve(dirname(file), specifier).replace(/\.js$/, '.ts'),
        ),
      ]),
    )
    assert.deepEqual(findCycles(graph), [['/x/a.ts', '/x/b.ts', '/x/a.ts']])
  })
})
