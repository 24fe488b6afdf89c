import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MessageBatch } from '../../server/runtime/message-batch.js'

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('MessageBatch', () => {
  it('sends what was pushed in one turn as one message, with every transfer', async () => {
    const sent: { items: number[]; transfer: number }[] = []
    const batch = new MessageBatch<number>((items, transfer) =>
      sent.push({ items, transfer: transfer.length }),
    )
    batch.push(1, [new ArrayBuffer(4)])
    batch.push(2)
    batch.push(3, [new ArrayBuffer(4), new ArrayBuffer(8)])
    assert.equal(sent.length, 0, 'nothing leaves before the turn ends')
    await turn()
    assert.deepEqual(sent, [{ items: [1, 2, 3], transfer: 3 }])
    batch.push(4)
    await turn()
    assert.deepEqual(sent[1], { items: [4], transfer: 0 })
  })

  it('flush() sends at once; a failed send reports the items it lost', async () => {
    const lost: number[] = []
    const batch = new MessageBatch<number>(
      () => {
        throw new Error('DataCloneError')
      },
      (items, error) => {
        assert.equal(error.message, 'DataCloneError')
        lost.push(...items)
      },
    )
    batch.push(7)
    batch.flush()
    assert.deepEqual(lost, [7])
    await turn()
    assert.deepEqual(lost, [7], 'nothing is sent twice')
  })
})
