/** A cascade over the fixture zoo's gray28 models (small 0.19 → large 2.07 MFLOPs). */
import type { CascadeManifest } from '../../server/zoo/manifest-schema.js'

export function fixtureCascade(overrides: Partial<CascadeManifest> = {}): CascadeManifest {
  return {
    name: 'fixture-cascade',
    stages: ['fixture-gray28-small', 'fixture-gray28-large'],
    rule: 'top1Probability',
    thresholds: [0.9],
    expectedMflops: 0.5,
    worstMflops: 2.2637,
    heldOut: { dataset: 'fixture', split: 'holdout', samples: 100, top1: 0.88, exitFractions: [0.85, 0.15] },
    top1: 0.87,
    evaluation: {
      dataset: 'fixture',
      split: 'test',
      samples: 100,
      runtime: 'onnxruntime-node',
      exitFractions: [0.84, 0.16],
      meanMflops: 0.52,
    },
    latencyMs: { expected: 0.2, worst: 0.6, batchSize: 1, host: 'test' },
    ...overrides,
  }
}
