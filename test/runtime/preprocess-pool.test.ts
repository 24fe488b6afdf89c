/**
 * The preprocessing stage on its own: images become tensors per their contract, and an image whose
 * client has gone is dropped by the worker before it is decoded (CLIENT_CLOSED).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { InputContract } from '../../server/preprocess/pixels-to-tensor.js'
import { PreprocessPool } from '../../server/runtime/preprocess-pool.js'
import { epochMs } from '../../server/runtime/worker-protocol.js'
import { jpegDeclaring } from '../fuzz/corpus.js'
import { fixtureImage } from '../routes/support.js'

const CONTRACT: InputContract = {
  size: 8,
  channels: 3,
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
  resizeShortSide: 8,
  interpolation: 'bilinear',
}

describe('PreprocessPool', () => {
  it('turns an image into a tensor of the contract’s shape', async () => {
    const pool = new PreprocessPool({ size: 1 })
    try {
      const bytes = new Uint8Array(await fixtureImage('gray.png'))
      const reply = await pool.prepare(CONTRACT, { kind: 'image', bytes, maxPixels: 1e6 }, epochMs() + 10_000)
      assert.ok(reply.ok, JSON.stringify(reply))
      assert.equal(reply.tensor.length, 3 * 8 * 8)
    } finally {
      await pool.close()
    }
  })

  it('drops an image waiting for its decode when its request is abandoned', async () => {
    const pool = new PreprocessPool({ size: 1 })
    try {
      // Budget 9 MP: each 3000×3000 decode holds all of it, so the small image waits its turn.
      const slow = await jpegDeclaring(3000, 3000)
      const busy = [1, 2].map(() =>
        pool.prepare(
          CONTRACT,
          { kind: 'image', bytes: new Uint8Array(slow), maxPixels: 9_000_000 },
          epochMs() + 60_000,
        ),
      )
      const abandoned = new AbortController()
      const small = pool.prepare(
        CONTRACT,
        { kind: 'image', bytes: new Uint8Array(await fixtureImage('gray.png')), maxPixels: 9_000_000 },
        epochMs() + 60_000,
        [],
        abandoned.signal,
      )
      await new Promise((resolve) => setTimeout(resolve, 20))
      abandoned.abort()
      const reply = await small
      assert.ok(!reply.ok, 'the abandoned image was preprocessed anyway')
      assert.equal(reply.error.code, 'CLIENT_CLOSED')
      assert.match(reply.error.message, /before its image could be decoded/)
      for (const done of await Promise.all(busy)) assert.ok(done.ok, 'the live requests still finish')
    } finally {
      await pool.close()
    }
  })
})
