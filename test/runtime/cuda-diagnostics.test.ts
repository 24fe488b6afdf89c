import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  CUDA_RUNTIME_LIBRARIES,
  diagnoseCudaFailure,
  libraryLoads,
  librariesNamedInError,
  ORT_PROVIDER_LIBRARIES,
} from '../../server/runtime/cuda-diagnostics.js'

describe('CUDA diagnostics', () => {
  it('extracts the libraries an onnxruntime error says it could not load', () => {
    const text =
      'Failed to load library /opt/ort/libonnxruntime_providers_cuda.so with error: ' +
      'libcudnn.so.9: cannot open shared object file: No such file or directory; ' +
      'libcublasLt.so.12: cannot open shared object file'
    assert.deepEqual(librariesNamedInError(text), [
      'libonnxruntime_providers_cuda.so',
      'libcudnn.so.9',
      'libcublasLt.so.12',
    ])
    assert.deepEqual(
      librariesNamedInError('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'),
      [],
    )
  })

  it('probes libraries with the dynamic loader', () => {
    assert.equal(libraryLoads('libc.so.6'), true)
    assert.equal(libraryLoads('libdefinitely-not-installed.so.42'), false)
  })

  it('names only the CUDA libraries missing when the provider libraries are installed', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ort-bin-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    for (const lib of ORT_PROVIDER_LIBRARIES) await writeFile(join(dir, lib), '')
    const diagnosis = diagnoseCudaFailure('Failed to load shared library', {
      bindingDir: dir,
      loads: (lib) => lib !== 'libcudnn.so.9' && lib !== 'libcublasLt.so.12',
    })
    assert.deepEqual(diagnosis.missing, ['libcublasLt.so.12', 'libcudnn.so.9'])
    assert.match(
      diagnosis.message,
      /^CUDA execution provider unavailable: missing libcublasLt.so.12, libcudnn.so.9\./,
    )
    assert.match(diagnosis.message, /CUDA 12 and cuDNN 9 libraries must be on the loader path/)
    assert.doesNotMatch(diagnosis.message, /npm rebuild/)
    assert.match(diagnosis.message, /docs\/cuda.md/)
    assert.match(diagnosis.message, /onnxruntime said: Failed to load shared library$/)
  })

  it('points at the provider install when onnxruntime-node was installed without CUDA', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ort-bin-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const diagnosis = diagnoseCudaFailure('x', { bindingDir: dir, loads: () => true })
    assert.deepEqual(diagnosis.missing, ORT_PROVIDER_LIBRARIES)
    assert.match(diagnosis.message, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/)
  })

  it('says so when every library loads (driver or device problem)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'ort-bin-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    for (const lib of ORT_PROVIDER_LIBRARIES) await writeFile(join(dir, lib), '')
    const diagnosis = diagnoseCudaFailure('CUDA failure 100: no CUDA-capable device is detected', {
      bindingDir: dir,
      loads: () => true,
    })
    assert.deepEqual(diagnosis.missing, [])
    assert.match(diagnosis.message, /all libraries load; check the driver and that a GPU is visible/)
  })

  it('diagnoses this machine for real: no CUDA provider libraries, no cuDNN', () => {
    const diagnosis = diagnoseCudaFailure(
      'OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library',
    )
    if (libraryLoads('libcudnn.so.9')) {
      // A host with cuDNN: the diagnosis must not claim it missing.
      assert.ok(!diagnosis.missing.includes('libcudnn.so.9'))
      return
    }
    assert.ok(diagnosis.missing.includes('libcudnn.so.9'))
    assert.ok(
      diagnosis.missing.every((lib) => [...ORT_PROVIDER_LIBRARIES, ...CUDA_RUNTIME_LIBRARIES].includes(lib)),
    )
  })
})
