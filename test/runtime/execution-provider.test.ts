import assert from 'node:assert/strict'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { diagnoseCudaFailure } from '../../server/runtime/cuda-diagnostics.js'
import {
  CudaUnavailableError,
  isCudaProviderError,
  resolveExecutionProvider,
  type SessionProbe,
} from '../../server/runtime/execution-provider.js'
import { FIXTURE_ZOO_DIR } from '../helper.js'

const MODEL = join(FIXTURE_ZOO_DIR, 'fixture-gray28-small.onnx')
// The real probe: on a host without CUDA (this project's CI machine) the unavailable path is
// exercised for real; on a GPU host with the libraries the same tests assert CUDA is chosen.
const cudaAbsent = diagnoseCudaFailure('').missing.length > 0

const released: string[] = []
const okProbe: SessionProbe = async (path) => ({
  release: async () => {
    released.push(path)
  },
})

describe('execution provider resolution', () => {
  it('cpu mode never touches CUDA', async () => {
    let probed = false
    const decision = await resolveExecutionProvider('cpu', [MODEL], async () => {
      probed = true
      throw new Error('unreachable')
    })
    assert.deepEqual(decision, { provider: 'cpu' })
    assert.equal(probed, false)
  })

  it('uses CUDA when a CUDA session can be created, and releases the probe session', async () => {
    released.length = 0
    assert.deepEqual(await resolveExecutionProvider('auto', [MODEL], okProbe), { provider: 'cuda' })
    assert.deepEqual(await resolveExecutionProvider('cuda', [MODEL], okProbe), { provider: 'cuda' })
    assert.deepEqual(released, [MODEL, MODEL])
  })

  it('skips a candidate whose failure is about the model, not CUDA', async () => {
    const tried: string[] = []
    const decision = await resolveExecutionProvider('cuda', ['corrupt.onnx', MODEL], async (path) => {
      tried.push(path)
      if (path === 'corrupt.onnx') throw new Error('Failed to load model because protobuf parsing failed.')
      return okProbe(path)
    })
    assert.deepEqual(decision, { provider: 'cuda' })
    assert.deepEqual(tried, ['corrupt.onnx', MODEL])
  })

  it('tells CUDA provider errors from model errors', () => {
    assert.equal(
      isCudaProviderError('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'),
      true,
    )
    assert.equal(isCudaProviderError('libcudnn.so.9: cannot open shared object file'), true)
    assert.equal(isCudaProviderError('CUDA failure 100: no CUDA-capable device is detected'), true)
    assert.equal(isCudaProviderError('Failed to load model because protobuf parsing failed.'), false)
    assert.equal(isCudaProviderError("Load model from x.onnx failed:File doesn't exist"), false)
  })

  it('auto mode falls back to the CPU with one warning naming the missing libraries when CUDA is absent', async () => {
    const decision = await resolveExecutionProvider('auto', [MODEL])
    if (!cudaAbsent) {
      assert.deepEqual(decision, { provider: 'cuda' })
      return
    }
    assert.equal(decision.provider, 'cpu')
    assert.match(decision.warning ?? '', /^CUDA execution provider unavailable: missing .*libcudnn\.so\.9/)
    assert.match(decision.warning ?? '', /falling back to the CPU execution provider$/)
  })

  it('cuda mode fails fast naming the missing libraries when CUDA is absent', async () => {
    if (!cudaAbsent) {
      assert.deepEqual(await resolveExecutionProvider('cuda', [MODEL]), { provider: 'cuda' })
      return
    }
    await assert.rejects(resolveExecutionProvider('cuda', [MODEL]), (error: unknown) => {
      assert.ok(error instanceof CudaUnavailableError)
      assert.match(error.message, /^EXECUTION_PROVIDER=cuda: CUDA execution provider unavailable: missing /)
      assert.ok(error.diagnosis.missing.includes('libcudnn.so.9'))
      assert.ok(error.diagnosis.missing.includes('libcublasLt.so.12'))
      return true
    })
  })
})
