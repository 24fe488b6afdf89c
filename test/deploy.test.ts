/**
 * Deployment artefacts, validated without a Docker engine or a cluster:
 * - Dockerfile: parsed (dockerfile-ast) and linted (dockerfile-utils, the VS Code Docker
 *   extension's checker): the stages, non-root numeric USER, HEALTHCHECK that needs no curl (and
 *   that actually probes a running server), EXPOSE 8080, the zoo copied in, CPU by default and a
 *   CUDA 12 + cuDNN 9 variant; every file COPY takes from the context exists and passes .dockerignore.
 * - deploy/kubernetes: each object against the Kubernetes schemas of kubernetes-models, unknown
 *   fields refused by type-checking the manifests against its TypeScript definitions (what
 *   `kubectl apply --validate=strict` refuses), and the wiring (probes on real routes, selectors,
 *   non-root, read-only root fs, HPA target, settings the server knows).
 * - deploy/kserve: ServingRuntime and InferenceService against the committed JSON Schemas derived
 *   from KServe's CRDs (deploy/kserve/schema; no package ships them), their containers as above.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Ajv } from 'ajv'
import { DockerfileParser, type Copy, type Instruction } from 'dockerfile-ast'
import { validate as lintDockerfile } from 'dockerfile-utils'
import type { FastifyInstance } from 'fastify'
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { Container, Service, Volume } from 'kubernetes-models/v1'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { helpText } from '../server/config.js'
import { ROOT } from './helper.js'
import { startApp } from './routes/support.js'

// One server for the whole file: the HEALTHCHECK probes it, the manifests' probe paths are asked of it.
let app: FastifyInstance
let port: number
before(async () => {
  app = await startApp()
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
after(() => app.close())

type Manifest = Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } }

function readYaml(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    assert.deepEqual(doc.errors, [], `${path}: YAML errors`)
    return doc.toJS() as Manifest
  })
}

// ------------------------------------------------------------------------------- Dockerfile model

interface Stage {
  name: string
  /** The base image with ARG defaults substituted. */
  base: string
  instructions: Instruction[]
}

const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const dockerfile = DockerfileParser.parse(text)
  const args = new Map<string, string>()
  for (const arg of dockerfile.getInitialARGs()) {
    const property = arg.getProperty()
    const value = property?.getValue()
    if (property && value !== null && value !== undefined) args.set(property.getName(), value)
  }
  const substitute = (value: string) =>
    value.replace(/\$\{(\w+)\}/g, (_, name: string) => args.get(name) ?? '')
  const stages: Stage[] = []
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [image = '', as, name] = instruction.getArguments().map((a) => a.getValue())
      assert.equal(as?.toUpperCase(), 'AS', `every stage is named: FROM ${image}`)
      stages.push({ name: name ?? '', base: substitute(image), instructions: [] })
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return { args, stages }
}

const { args: dockerArgs, stages } = parseDockerfile(DOCKERFILE)

function stage(name: string): Stage {
  const found = stages.find((s) => s.name === name)
  assert.ok(found, `stage ${name}`)
  return found
}

function instructions(s: Stage, keyword: string): Instruction[] {
  return s.instructions.filter((i) => i.getKeyword() === keyword)
}

function argumentsOf(instruction: Instruction): string[] {
  return instruction.getArguments().map((a) => a.getValue())
}

/** A COPY as text with its flags: `--from=build /app/dist ./dist`. */
function copyFlags(instruction: Instruction): ReturnType<Copy['getFlags']> {
  const withFlags = instruction as Partial<Pick<Copy, 'getFlags'>>
  return withFlags.getFlags?.() ?? []
}

function copyText(instruction: Instruction): string {
  const flags = copyFlags(instruction).map((f) => `--${f.getName()}=${f.getValue() ?? ''}`)
  return [...flags, ...argumentsOf(instruction)].join(' ')
}

/** An exec-form (JSON array) instruction argument, e.g. CMD ["node", "x"]. */
function execForm(instruction: Instruction, after = ''): string[] {
  const content = instruction.getArgumentsContent() ?? ''
  const json = content.slice(content.indexOf(after) + after.length).trim()
  return JSON.parse(json) as string[]
}

/** .dockerignore semantics: patterns in order, the last one matching a path or a parent wins. */
function dockerIgnored(path: string, patterns: readonly string[]): boolean {
  const toRegExp = (glob: string) =>
    new RegExp(
      `^${glob
        .replace(/\/$/, '')
        .split('')
        .map((c, i, all) =>
          c === '*'
            ? all[i + 1] === '*'
              ? ''
              : all[i - 1] === '*'
                ? '.*'
                : '[^/]*'
            : /[.+?^${}()|[\]\\]/.test(c)
              ? `\\${c}`
              : c,
        )
        .join('')
        .replace(/\.\*\//g, '(?:.*/)?')}$`,
    )
  const parts = path.split('/')
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
  let ignored = false
  for (const raw of patterns) {
    const negate = raw.startsWith('!')
    const regexp = toRegExp(negate ? raw.slice(1) : raw)
    if (candidates.some((c) => regexp.test(c))) ignored = !negate
  }
  return ignored
}

function filesUnder(path: string): string[] {
  const absolute = join(ROOT, path)
  if (!statSync(absolute).isDirectory()) return [path]
  return readdirSync(absolute).flatMap((name) => filesUnder(relative(ROOT, join(absolute, name))))
}

describe('Dockerfile', () => {
  it('lints clean (dockerfile-utils), and the linter does flag a broken Dockerfile', () => {
    assert.deepEqual(lintDockerfile(DOCKERFILE), [])
    assert.ok(lintDockerfile('FROM node:20-slim\nEXPOSE eighty\nFOO bar\n').length >= 2)
  })

  it('has the build, dependency and runtime stages; CPU by default, CUDA by build argument', () => {
    assert.deepEqual(
      stages.map((s) => s.name),
      ['build', 'deps-cpu', 'deps-cuda', 'cpu', 'node-runtime', 'cuda', 'final'],
    )
    assert.equal(dockerArgs.get('VARIANT'), 'cpu')
    assert.equal(stages.at(-1)?.base, 'cpu', 'the last stage is the default image')
    assert.equal(DOCKERFILE.match(/^FROM \$\{VARIANT\} AS final$/m)?.length, 1)
    for (const s of stages) {
      assert.match(s.base, /^[\w./-]+:[\w.-]+$|^(cpu|cuda)$/, `${s.name}: base image pinned to a tag`)
      assert.doesNotMatch(s.base, /:latest$/)
    }
    assert.match(stage('cpu').base, /^node:20-slim$/)
    assert.match(stage('cuda').base, /^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+$/)
  })

  it('installs onnxruntime-node without the CUDA download for CPU, with it (cuda12) for CUDA', () => {
    const run = (s: Stage) =>
      instructions(s, 'RUN')
        .map((i) => i.getArgumentsContent() ?? '')
        .join('\n')
    assert.match(run(stage('build')), /ONNXRUNTIME_NODE_INSTALL=skip npm ci/)
    assert.match(run(stage('deps-cpu')), /ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev/)
    assert.match(run(stage('deps-cuda')), /ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev/)
    assert.match(run(stage('deps-cuda')), /test -f linux\/x64\/libonnxruntime_providers_cuda\.so/)
    assert.match(run(stage('build')), /validate-zoo\.js \/zoo/, 'the zoo is validated at build time')
  })

  for (const name of ['cpu', 'cuda']) {
    describe(`${name} image`, () => {
      it('runs as a numeric non-root user, exposes 8080, starts the built server', () => {
        const s = stage(name)
        const [user] = instructions(s, 'USER').map(argumentsOf)
        assert.deepEqual(user, ['10001:10001'])
        assert.deepEqual(instructions(s, 'EXPOSE').map(argumentsOf), [['8080', '8081']])
        const cmds = instructions(s, 'CMD')
        assert.equal(cmds.length, 1)
        assert.deepEqual(execForm(cmds[0]!), ['node', 'dist/server/main.js'])
        const env = instructions(s, 'ENV')
          .map((i) => i.getArgumentsContent() ?? '')
          .join(' ')
        for (const setting of ['HOST=0.0.0.0', 'PORT=8080', 'GRPC_PORT=8081', 'ZOO_DIR=/app/models'])
          assert.ok(env.includes(setting), setting)
        assert.ok(env.includes(`EXECUTION_PROVIDER=${name}`))
        assert.ok(env.includes('MALLOC_ARENA_MAX=2'), 'libvips fragments glibc arenas without it')
      })

      it('copies the validated zoo, the build output, the page assets and production dependencies', () => {
        const copies = instructions(stage(name), 'COPY').map(copyText)
        assert.ok(copies.includes('--from=build /zoo/ ./models/'), copies.join('\n'))
        assert.ok(copies.includes('--from=build /app/dist ./dist'))
        assert.ok(copies.includes('server/web/assets/ ./server/web/assets/'))
        assert.ok(copies.includes('server/grpc/proto/ ./server/grpc/proto/'), 'the protos gRPC loads')
        assert.ok(copies.includes(`--from=deps-${name} /app/node_modules ./node_modules`))
      })

      it('has a HEALTHCHECK on /healthz that needs only node', () => {
        const checks = instructions(stage(name), 'HEALTHCHECK')
        assert.equal(checks.length, 1)
        const command = execForm(checks[0]!, 'CMD')
        assert.equal(command[0], 'node')
        assert.equal(command[1], '-e')
        assert.match(command[2] ?? '', /\/healthz/)
        assert.doesNotMatch(checks[0]!.getArgumentsContent() ?? '', /curl|wget/)
      })
    })
  }

  it('every file COPY takes from the build context exists and is not excluded by .dockerignore', () => {
    const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
    const sources = new Set<string>()
    for (const s of stages) {
      for (const copy of instructions(s, 'COPY')) {
        if (copyFlags(copy).some((f) => f.getName() === 'from')) continue
        const parts = argumentsOf(copy)
        for (const source of parts.slice(0, -1))
          sources.add(source.replace(/\$\{ZOO\}/, dockerArgs.get('ZOO') ?? 'models'))
      }
    }
    // ZOO defaults to models/, which the pipeline fills; the fixture zoo is the documented alternative.
    sources.add('test/fixtures/zoo/')
    for (const source of sources) {
      const path = source.replace(/\/$/, '')
      if (path === 'models' && !existsSync(join(ROOT, 'models', 'manifest.json'))) continue
      assert.ok(existsSync(join(ROOT, path)), `${source} exists`)
      for (const file of filesUnder(path))
        assert.ok(!dockerIgnored(file, patterns), `${file} is in the build context`)
    }
    for (const excluded of [
      'node_modules/fastify/package.json',
      'dist/server/main.js',
      'training/alphanet/__init__.py',
      'runs/x',
      '.git/HEAD',
      'server/node_modules/x',
    ]) {
      assert.ok(dockerIgnored(excluded, patterns), `${excluded} is kept out of the context`)
    }
  })

  describe('HEALTHCHECK command against a server', () => {
    async function runCheck(portValue: number): Promise<number | null> {
      const [, flag, script] = execForm(instructions(stage('cpu'), 'HEALTHCHECK')[0]!, 'CMD')
      const child = spawn(process.execPath, [flag!, script!], {
        env: { PATH: process.env.PATH ?? '', PORT: String(portValue) },
        stdio: 'ignore',
      })
      const [code] = (await once(child, 'exit')) as [number | null]
      return code
    }

    it('exits 0 while the server answers and 1 when nothing listens', async () => {
      assert.equal(await runCheck(port), 0)
      const probe = createServer()
      probe.listen(0, '127.0.0.1')
      await once(probe, 'listening')
      const closedPort = (probe.address() as { port: number }).port
      probe.close()
      await once(probe, 'close')
      assert.equal(await runCheck(closedPort), 1)
    })
  })
})

// ---------------------------------------------------------------------------- Kubernetes manifests

const KUBERNETES_DIR = join(ROOT, 'deploy', 'kubernetes')
const KSERVE_DIR = join(ROOT, 'deploy', 'kserve')

const MODELS: Record<
  string,
  { create: (data: never) => { validate(): void }; type: string; module: string }
> = {
  'apps/v1/Deployment': {
    create: (d) => new Deployment(d),
    type: 'IDeployment',
    module: 'kubernetes-models/apps/v1/Deployment',
  },
  'v1/Service': { create: (d) => new Service(d), type: 'IService', module: 'kubernetes-models/v1/Service' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    create: (d) => new HorizontalPodAutoscaler(d),
    type: 'IHorizontalPodAutoscaler',
    module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler',
  },
  'policy/v1/PodDisruptionBudget': {
    create: (d) => new PodDisruptionBudget(d),
    type: 'IPodDisruptionBudget',
    module: 'kubernetes-models/policy/v1/PodDisruptionBudget',
  },
}

/**
 * Type-checks manifests against kubernetes-models' TypeScript interfaces: excess-property checks on
 * object literals find the unknown (misspelled) fields its JSON-schema validators let through.
 */
interface TypedEntry {
  type: string
  module: string
  value: unknown
  label: string
}

function unknownFields(entries: readonly TypedEntry[]): string[] {
  const file = join(ROOT, 'test', '__deploy_manifests__.ts')
  const source = entries
    .map(
      (e, i) =>
        `import type { ${e.type} as T${i} } from '${e.module}'\nexport const m${i}: T${i} = ${JSON.stringify(e.value)}\n`,
    )
    .join('')
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  }
  const host = ts.createCompilerHost(options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest)
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (name) => name === file || fileExists(name)
  const program = ts.createProgram([file], options, host)
  return ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
    const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1
    const entry = entries[Math.floor(line / 2)]
    return `${entry?.label ?? '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

const typedEntries: TypedEntry[] = []
let typeProblems: string[] | undefined

/** Problems of the entries whose label starts with `prefix`; one TypeScript program checks them all. */
function unknownFieldsOf(prefix: string): string[] {
  typeProblems ??= unknownFields(typedEntries)
  return typeProblems.filter((p) => p.startsWith(prefix))
}

interface PodSpecLike {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number }
  terminationGracePeriodSeconds?: number
  containers: ContainerLike[]
}
interface ProbeLike {
  httpGet?: { path: string; port: number | string }
}
interface ContainerLike {
  name: string
  image: string
  ports?: { name?: string; containerPort: number }[]
  env?: { name: string; value?: string }[]
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  readinessProbe?: ProbeLike
  livenessProbe?: ProbeLike
  startupProbe?: ProbeLike
  securityContext?: {
    runAsNonRoot?: boolean
    runAsUser?: number
    allowPrivilegeEscalation?: boolean
    readOnlyRootFilesystem?: boolean
    capabilities?: { drop?: string[] }
  }
}

/** Environment variable names the server reads (from --help, which is generated from the config schema). */
const KNOWN_SETTINGS = new Set(
  [...helpText().matchAll(/^\s+--[\w-]+ <value>\s+([A-Z_]+)$/gm)].map((m) => m[1]),
)

function checkContainer(container: ContainerLike, label: string): void {
  for (const variable of container.env ?? []) {
    assert.ok(KNOWN_SETTINGS.has(variable.name), `${label}: ${variable.name} is a server setting`)
  }
  const resources = container.resources
  for (const kind of ['cpu', 'memory']) {
    assert.ok(resources?.requests?.[kind] && resources.limits?.[kind], `${label}: ${kind} request and limit`)
  }
  const security = container.securityContext
  assert.ok(security, `${label}: securityContext`)
  assert.equal(security.allowPrivilegeEscalation, false, label)
  assert.equal(security.readOnlyRootFilesystem, true, label)
  assert.deepEqual(security.capabilities?.drop, ['ALL'], label)
  assert.ok(
    container.ports?.some((p) => p.containerPort === 8080),
    `${label}: port 8080`,
  )
  assert.match(container.image, /^alphanet-zoo:\d+\.\d+\.\d+$/, label)
}

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const files = readdirSync(KUBERNETES_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  const manifests = files.flatMap((file) => readYaml(join(KUBERNETES_DIR, file)).map((m) => ({ file, m })))
  function byKind(kind: string): unknown {
    const found = manifests.find(({ m }) => m.kind === kind)?.m
    assert.ok(found, kind)
    return found
  }
  it('kustomization lists every manifest file', () => {
    const [kustomization] = readYaml(join(KUBERNETES_DIR, 'kustomization.yaml')) as unknown as [
      { resources: string[] },
    ]
    assert.deepEqual([...kustomization.resources].sort(), [...files].sort())
  })

  it('each object is valid against the Kubernetes schema', () => {
    assert.deepEqual(manifests.map(({ m }) => m.kind).sort(), [
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'Service',
    ])
    for (const { file, m } of manifests) {
      const model = MODELS[`${m.apiVersion}/${m.kind}`]
      assert.ok(model, `${file}: ${m.apiVersion} ${m.kind} is a known kind`)
      assert.doesNotThrow(() => {
        model.create(m as never).validate()
      }, `${file}: ${m.kind}`)
    }
  })

  for (const { file, m } of manifests) {
    const model = MODELS[`${m.apiVersion}/${m.kind}`]
    if (model)
      typedEntries.push({ type: model.type, module: model.module, value: m, label: `kubernetes/${file}` })
  }
  // A misspelled field, to show the check is not vacuous.
  const typo = structuredClone(byKind('Deployment') as { spec: Record<string, unknown> })
  typo.spec.replica = 3
  typedEntries.push({
    type: 'IDeployment',
    module: 'kubernetes-models/apps/v1/Deployment',
    value: typo,
    label: 'typo/deployment',
  })

  it('no object has a field Kubernetes does not know (strict field validation)', () => {
    assert.deepEqual(unknownFieldsOf('kubernetes/'), [])
    const problems = unknownFieldsOf('typo/')
    assert.equal(problems.length, 1)
    assert.match(problems[0]!, /replica/)
  })

  it('Deployment: probes on the real health routes, non-root, read-only root fs, resources, drain time', async () => {
    const deployment = byKind('Deployment') as {
      spec: {
        selector: { matchLabels: Record<string, string> }
        template: { metadata: { labels: Record<string, string> }; spec: PodSpecLike }
      }
    }
    const { template, selector } = deployment.spec
    for (const [k, v] of Object.entries(selector.matchLabels)) assert.equal(template.metadata.labels[k], v)
    const pod = template.spec
    assert.ok(pod.securityContext)
    assert.equal(pod.securityContext.runAsNonRoot, true)
    assert.equal(
      String(pod.securityContext.runAsUser),
      argumentsOf(instructions(stage('cpu'), 'USER')[0]!)[0]?.split(':')[0],
    )
    const [container] = pod.containers
    assert.ok(container)
    checkContainer(container, 'deployment')
    assert.equal(container.readinessProbe?.httpGet?.path, '/readyz')
    assert.equal(container.livenessProbe?.httpGet?.path, '/healthz')
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
      const path = probe?.httpGet?.path
      assert.ok(path)
      assert.equal(probe.httpGet?.port, 'http')
      assert.equal((await app.inject({ method: 'GET', url: path })).statusCode, 200, path)
    }
    assert.ok(container.ports?.some((p) => p.name === 'http' && p.containerPort === 8080))
    assert.ok(container.ports?.some((p) => p.name === 'grpc' && p.containerPort === 8081))
    const shutdownMs = Number(container.env?.find((e) => e.name === 'SHUTDOWN_TIMEOUT_MS')?.value ?? 30000)
    assert.ok(
      (pod.terminationGracePeriodSeconds ?? 30) * 1000 > shutdownMs + 5000,
      'grace period covers the drain',
    )
  })

  it('Service, HPA and PDB select and target the Deployment', () => {
    const deployment = byKind('Deployment') as {
      metadata: { name: string }
      spec: { template: { metadata: { labels: Record<string, string> } } }
    }
    const labels = deployment.spec.template.metadata.labels
    const service = byKind('Service') as {
      spec: { selector: Record<string, string>; ports: { targetPort: string; appProtocol?: string }[] }
    }
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(labels[k], v)
    assert.deepEqual(
      service.spec.ports.map((p) => [p.targetPort, p.appProtocol]),
      [
        ['http', undefined],
        ['grpc', 'kubernetes.io/h2c'],
      ],
    )
    const hpa = byKind('HorizontalPodAutoscaler') as {
      spec: {
        scaleTargetRef: { apiVersion: string; kind: string; name: string }
        minReplicas: number
        maxReplicas: number
      }
    }
    assert.deepEqual(hpa.spec.scaleTargetRef, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    })
    assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas)
    const pdb = byKind('PodDisruptionBudget') as {
      spec: { selector: { matchLabels: Record<string, string> } }
    }
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(labels[k], v)
  })
})

// --------------------------------------------------------------------------------------- KServe

describe('KServe manifests (deploy/kserve)', () => {
  const ajv = new Ajv({ allErrors: true, strict: true })
  const schema = (name: string) =>
    JSON.parse(readFileSync(join(KSERVE_DIR, 'schema', name), 'utf8')) as object
  const validateRuntime = ajv.compile(schema('servingruntime.v1alpha1.schema.json'))
  const validateService = ajv.compile(schema('inferenceservice.v1beta1.schema.json'))
  const [runtime] = readYaml(join(KSERVE_DIR, 'serving-runtime.yaml'))
  const [service] = readYaml(join(KSERVE_DIR, 'inference-service.yaml'))
  const [grpcService] = readYaml(join(KSERVE_DIR, 'inference-service-grpc.yaml'))

  it('the ServingRuntime and InferenceServices match the CRD-derived schemas', () => {
    assert.ok(validateRuntime(runtime), JSON.stringify(validateRuntime.errors))
    assert.ok(validateService(service), JSON.stringify(validateService.errors))
    assert.ok(validateService(grpcService), JSON.stringify(validateService.errors))
    // Not vacuous: an unknown field and a wrong enum value are refused.
    const broken = structuredClone(service) as unknown as { spec: { predictor: Record<string, unknown> } }
    broken.spec.predictor.scaleMetric = 'gpu'
    broken.spec.predictor.minReplica = 1
    assert.equal(validateService(broken), false)
    assert.equal(validateService.errors?.length, 2)
  })

  const runtimeSpec = (runtime as unknown as { spec: { containers: ContainerLike[]; volumes: unknown[] } })
    .spec
  runtimeSpec.containers.forEach((value, i) => {
    typedEntries.push({
      type: 'IContainer',
      module: 'kubernetes-models/v1/Container',
      value,
      label: `kserve/container ${i}`,
    })
  })
  runtimeSpec.volumes.forEach((value, i) => {
    typedEntries.push({
      type: 'IVolume',
      module: 'kubernetes-models/v1/Volume',
      value,
      label: `kserve/volume ${i}`,
    })
  })

  it("the runtime's containers and volumes are valid Kubernetes objects with no unknown fields", () => {
    const spec = runtimeSpec
    for (const container of spec.containers) {
      assert.doesNotThrow(() => {
        new Container(container).validate()
      })
    }
    for (const volume of spec.volumes) {
      assert.doesNotThrow(() => {
        new Volume(volume as never).validate()
      })
    }
    assert.deepEqual(unknownFieldsOf('kserve/'), [])
  })

  it('serves the Open Inference Protocol from kserve-container, probed on the v2 health routes', async () => {
    const spec = (
      runtime as unknown as {
        spec: {
          protocolVersions: string[]
          supportedModelFormats: { name: string }[]
          containers: ContainerLike[]
        }
      }
    ).spec
    assert.deepEqual(spec.protocolVersions, ['v2', 'grpc-v2'])
    const [container] = spec.containers
    assert.ok(container)
    assert.equal(container.name, 'kserve-container')
    checkContainer(container, 'serving runtime')
    assert.equal(container.securityContext?.runAsNonRoot, true)
    for (const [probe, path] of [
      [container.readinessProbe, '/v2/health/ready'],
      [container.livenessProbe, '/v2/health/live'],
    ] as const) {
      assert.equal(probe?.httpGet?.path, path)
      assert.equal((await app.inject({ method: 'GET', url: path })).statusCode, 200, path)
    }
    const model = (
      service as unknown as {
        spec: {
          predictor: { model: { runtime: string; protocolVersion: string; modelFormat: { name: string } } }
        }
      }
    ).spec.predictor.model
    assert.equal(model.runtime, runtime!.metadata.name)
    assert.equal(model.protocolVersion, 'v2')
    assert.ok(spec.supportedModelFormats.some((f) => f.name === model.modelFormat.name))
  })

  it('the gRPC InferenceService routes the h2c port the runtime serves gRPC on', () => {
    const model = (
      grpcService as unknown as {
        spec: {
          predictor: {
            model: {
              runtime: string
              protocolVersion: string
              ports: { name: string; containerPort: number }[]
            }
          }
        }
      }
    ).spec.predictor.model
    assert.equal(model.runtime, runtime!.metadata.name)
    assert.equal(model.protocolVersion, 'grpc-v2')
    const [container] = (runtime as unknown as { spec: { containers: ContainerLike[] } }).spec.containers
    const grpcPort = Number(container?.env?.find((e) => e.name === 'GRPC_PORT')?.value)
    assert.deepEqual(
      model.ports.map((p) => [p.name, p.containerPort]),
      [['h2c', grpcPort]],
    )
    assert.equal(grpcPort, 8081)
  })
})
