/** The cascade rule: a stage answers at top-1 probability ≥ its threshold, else the next one runs. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { evaluateCascade, type StageRunner } from '../../server/cascade/dataset-evaluation.js'
import { decideStage, runCascade, softmax } from '../../server/cascade/rule.js'

const logitsFor = (p: number[]) => p.map((v) => Math.log(v))

describe('cascade rule', () => {
  it('answers at the first confident stage (>=), the last stage always answers', async () => {
    assert.equal(decideStage(logitsFor([0.8, 0.2]), 0, [0.8]).answers, true)
    assert.equal(decideStage(logitsFor([0.79, 0.21]), 0, [0.8]).answers, false)
    assert.equal(decideStage(logitsFor([0.5, 0.5]), 1, [0.8]).answers, true)
    assert.ok(Math.abs((softmax([1, 2, 3])[2] ?? 0) - 0.66524096) < 1e-7)
    const calls: number[] = []
    const run = (outputs: number[][]) => (stage: number) => {
      calls.push(stage)
      return Promise.resolve(logitsFor(outputs[stage] ?? []))
    }
    const sure = await runCascade(
      2,
      [0.9],
      run([
        [0.95, 0.05],
        [0.1, 0.9],
      ]),
      (l) => l,
    )
    assert.deepEqual(calls, [0])
    assert.deepEqual(
      sure.map((s) => [s.stage, s.classIndex, s.answers]),
      [[0, 0, true]],
    )
    calls.length = 0
    const unsure = await runCascade(
      2,
      [0.9],
      run([
        [0.6, 0.4],
        [0.1, 0.9],
      ]),
      (l) => l,
    )
    assert.deepEqual(calls, [0, 1])
    assert.deepEqual(
      unsure.map((s) => [s.stage, s.classIndex, s.answers]),
      [
        [0, 0, false],
        [1, 1, true],
      ],
    )
  })

  it('dataset evaluation sends only the unsure images on, and costs what ran', async () => {
    // Stage 0 is sure of images 0 and 1 (right on 0, wrong on 1); stage 1 answers 2 and 3 right.
    const stage0 = [
      [0.95, 0.05],
      [0.99, 0.01],
      [0.6, 0.4],
      [0.55, 0.45],
    ]
    const stage1 = [
      [0.1, 0.9],
      [0.1, 0.9],
      [0.2, 0.8],
      [0.9, 0.1],
    ]
    const seen: number[][] = []
    const runner = (name: string, rows: number[][], mflops: number): StageRunner => ({
      name,
      mflops,
      run: (images, count) => {
        const ids = Array.from(images.subarray(0, count))
        seen.push(ids)
        return Promise.resolve(Float32Array.from(ids.flatMap((id) => logitsFor(rows[id] ?? []))))
      },
    })
    const result = await evaluateCascade(
      [runner('a', stage0, 1), runner('b', stage1, 10)],
      [0.9],
      { images: Float32Array.from([0, 1, 2, 3]), perImage: 1, labels: Int32Array.from([0, 1, 1, 0]) },
      8,
    )
    assert.deepEqual(seen, [
      [0, 1, 2, 3],
      [2, 3],
    ])
    assert.deepEqual(result, { top1: 0.75, samples: 4, exitFractions: [0.5, 0.5], meanMflops: 6 })
  })
})
