/**
 * Explains why onnxruntime-node could not use CUDA. The error the binding throws is generic
 * ("OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library"); the library
 * that failed only reaches stderr. So this names the culprits itself: the provider libraries that
 * must sit next to the binding, and the CUDA 12 / cuDNN 9 libraries they need, each probed with
 * the same dynamic loader (process.dlopen resolves bare sonames through LD_LIBRARY_PATH/ld.so.cache).
 * @see docs/cuda.md
 */
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

/** Libraries next to the onnxruntime binding that provide the CUDA execution provider. */
export const ORT_PROVIDER_LIBRARIES = [
  'libonnxruntime_providers_shared.so',
  'libonnxruntime_providers_cuda.so',
]

/** What libonnxruntime_providers_cuda.so (ORT 1.30, CUDA 12 build) links against. */
export const CUDA_RUNTIME_LIBRARIES = [
  'libcuda.so.1',
  'libcudart.so.12',
  'libcublas.so.12',
  'libcublasLt.so.12',
  'libcufft.so.11',
  'libcurand.so.10',
  'libcudnn.so.9',
]

/** Directory of onnxruntime_binding.node for this platform (where the provider .so files belong). */
export function ortBindingDir(): string {
  const require = createRequire(import.meta.url)
  const root = dirname(require.resolve('onnxruntime-node/package.json'))
  return join(root, 'bin', 'napi-v6', process.platform, process.arch)
}

/** Library names an onnxruntime error text says could not be loaded (`libfoo.so.N: cannot open …`). */
export function librariesNamedInError(text: string): string[] {
  const found = new Set<string>()
  const pattern = /(lib[\w.+-]*?\.so(?:\.\d+)*)(?::\s*cannot open shared object file|\s+with error)/g
  for (const match of text.matchAll(pattern)) {
    const path = match[1]
    if (path) found.add(path.slice(path.lastIndexOf('/') + 1))
  }
  return [...found]
}

/** True when the dynamic loader finds `soname` (a non-addon library loads, then fails to "self-register"). */
export function libraryLoads(soname: string): boolean {
  try {
    process.dlopen({ exports: {} }, soname)
    return true
  } catch (error) {
    return !/cannot open shared object file|No such file or directory/.test((error as Error).message)
  }
}

export interface CudaDiagnosis {
  /** Libraries that could not be found (provider libraries first, then CUDA/cuDNN). */
  missing: string[]
  /** One paragraph for logs and the start-up failure message. */
  message: string
}

export interface DiagnoseOptions {
  bindingDir?: string
  loads?: (soname: string) => boolean
}

/** Builds the explanation for a failed CUDA session from the ORT error text and a loader probe. */
export function diagnoseCudaFailure(ortMessage: string, options: DiagnoseOptions = {}): CudaDiagnosis {
  const bindingDir = options.bindingDir ?? ortBindingDir()
  const loads = options.loads ?? libraryLoads
  const missing = new Set<string>(librariesNamedInError(ortMessage))
  for (const lib of ORT_PROVIDER_LIBRARIES) {
    if (!existsSync(join(bindingDir, lib))) missing.add(lib)
  }
  for (const lib of CUDA_RUNTIME_LIBRARIES) {
    if (!loads(lib)) missing.add(lib)
  }
  const list = [...missing]
  const providerMissing = list.some((lib) => ORT_PROVIDER_LIBRARIES.includes(lib))
  const hints: string[] = []
  if (providerMissing) {
    hints.push(
      `onnxruntime-node's CUDA provider libraries are not installed in ${bindingDir} ` +
        '(run `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node`)',
    )
  }
  if (list.some((lib) => CUDA_RUNTIME_LIBRARIES.includes(lib))) {
    hints.push('CUDA 12 and cuDNN 9 libraries must be on the loader path (LD_LIBRARY_PATH or ldconfig)')
  }
  const head =
    list.length > 0
      ? `CUDA execution provider unavailable: missing ${list.join(', ')}`
      : 'CUDA execution provider unavailable (all libraries load; check the driver and that a GPU is visible)'
  const message = `${head}. ${hints.join('; ')}${hints.length > 0 ? '; ' : ''}see docs/cuda.md. onnxruntime said: ${ortMessage}`
  return { missing: list, message }
}
