/** Gradient-check cases of the neural-network layer ops (norm, pool, resample, pad, concat, dropout). */
import type * as E from '../../src/engine/index.js';
import { concat, slice } from '../../src/engine/ops/concat.js';
import { dropout } from '../../src/engine/ops/dropout.js';
import { batchNorm2d, instanceNorm2d } from '../../src/engine/ops/norm.js';
import { pad2d } from '../../src/engine/ops/pad.js';
import { maxPool2d } from '../../src/engine/ops/pool.js';
import { upsampleBilinear2x, upsampleNearest2x } from '../../src/engine/ops/resample.js';
import type { GradCase } from './harness.js';

/**
 * Distinct values 0.05 apart in a fixed shuffled order: every 2x2 window's maximum then beats the
 * runner-up by >= 0.05, more than the finite-difference step (0.01) can bridge.
 */
function separated(n: number, seed: number): Float32Array {
  const order = [...Array(n).keys()];
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return Float32Array.from(order, (k) => (k - n / 2) * 0.05);
}

const bnTrain = (x: E.Tensor, w: E.Tensor, b: E.Tensor, rm: E.Tensor, rv: E.Tensor) =>
  batchNorm2d(x, w, b, rm, rv, { training: true, momentum: 0.1 });
const bnEval = (x: E.Tensor, w: E.Tensor, b: E.Tensor, rm: E.Tensor, rv: E.Tensor) =>
  batchNorm2d(x, w, b, rm, rv, { training: false });
const runningStats = (c: number) => [
  { shape: [c], grad: false },
  { shape: [c], low: 0.5, high: 1.5, grad: false },
];

export const nnCases: GradCase[] = [
  {
    op: 'batchNorm2d',
    name: 'training, affine, [3,3,4,5]',
    inputs: [{ shape: [3, 3, 4, 5] }, { shape: [3], low: 0.5, high: 1.5 }, { shape: [3] }, ...runningStats(3)],
    fn: bnTrain,
  },
  {
    op: 'batchNorm2d',
    name: 'training, affine, batch 1, [1,7,3,5]',
    inputs: [{ shape: [1, 7, 3, 5] }, { shape: [7], low: 0.5, high: 1.5 }, { shape: [7] }, ...runningStats(7)],
    fn: bnTrain,
  },
  {
    op: 'batchNorm2d',
    name: 'training, no affine, no running stats, [3,1,5,7]',
    inputs: [{ shape: [3, 1, 5, 7] }],
    fn: (x) => batchNorm2d(x, null, null, null, null, { training: true }),
  },
  {
    op: 'batchNorm2d',
    name: 'eval, affine, [3,3,4,5]',
    inputs: [{ shape: [3, 3, 4, 5] }, { shape: [3], low: 0.5, high: 1.5 }, { shape: [3] }, ...runningStats(3)],
    fn: bnEval,
  },
  {
    op: 'batchNorm2d',
    name: 'eval, gradient to x only, [1,3,5,7]',
    inputs: [
      { shape: [1, 3, 5, 7] },
      { shape: [3], low: 0.5, high: 1.5, grad: false },
      { shape: [3], grad: false },
      ...runningStats(3),
    ],
    fn: bnEval,
  },
  {
    op: 'instanceNorm2d',
    name: 'affine, [3,3,4,5]',
    inputs: [{ shape: [3, 3, 4, 5] }, { shape: [3], low: 0.5, high: 1.5 }, { shape: [3] }],
    fn: (x, w, b) => instanceNorm2d(x, w!, b!),
  },
  {
    op: 'instanceNorm2d',
    name: 'no affine, [1,7,5,3]',
    inputs: [{ shape: [1, 7, 5, 3] }],
    fn: (x) => instanceNorm2d(x, null, null),
  },
  {
    op: 'maxPool2d',
    name: 'separated values, [3,3,5,7] (odd sizes)',
    inputs: [{ shape: [3, 3, 5, 7], values: separated(3 * 3 * 5 * 7, 1) }],
    fn: (x) => maxPool2d(x),
    samples: 96,
  },
  {
    op: 'maxPool2d',
    name: 'separated values, [1,7,6,4]',
    inputs: [{ shape: [1, 7, 6, 4], values: separated(7 * 6 * 4, 2) }],
    fn: (x) => maxPool2d(x),
    samples: 96,
  },
  { op: 'upsampleNearest2x', name: '[3,3,5,7]', inputs: [{ shape: [3, 3, 5, 7] }], fn: (x) => upsampleNearest2x(x) },
  { op: 'upsampleBilinear2x', name: '[3,3,5,7]', inputs: [{ shape: [3, 3, 5, 7] }], fn: (x) => upsampleBilinear2x(x), samples: 64 },
  {
    op: 'upsampleBilinear2x',
    name: 'alignCorners, [1,7,4,3]',
    inputs: [{ shape: [1, 7, 4, 3] }],
    fn: (x) => upsampleBilinear2x(x, { alignCorners: true }),
    samples: 84,
  },
  { op: 'pad2d', name: 'zero 2, [3,3,5,7]', inputs: [{ shape: [3, 3, 5, 7] }], fn: (x) => pad2d(x, 2, 'zero') },
  { op: 'pad2d', name: 'zero [0,3,1,2], [1,2,4,3]', inputs: [{ shape: [1, 2, 4, 3] }], fn: (x) => pad2d(x, [0, 3, 1, 2]) },
  { op: 'pad2d', name: 'reflect 3, [3,1,4,5]', inputs: [{ shape: [3, 1, 4, 5] }], fn: (x) => pad2d(x, 3, 'reflect'), samples: 60 },
  {
    op: 'pad2d',
    name: 'reflect [1,3,2,4], [1,3,5,4]',
    inputs: [{ shape: [1, 3, 5, 4] }],
    fn: (x) => pad2d(x, [1, 3, 2, 4], 'reflect'),
    samples: 60,
  },
  {
    op: 'concat',
    name: 'axis 1, [3,2,4,5] + [3,5,4,5] + [3,1,4,5]',
    inputs: [{ shape: [3, 2, 4, 5] }, { shape: [3, 5, 4, 5] }, { shape: [3, 1, 4, 5] }],
    fn: (a, b, c) => concat([a!, b!, c!]),
  },
  {
    op: 'concat',
    name: 'axis 3, [2,3,5,2] + [2,3,5,3]',
    inputs: [{ shape: [2, 3, 5, 2] }, { shape: [2, 3, 5, 3] }],
    fn: (a, b) => concat([a!, b!], 3),
  },
  { op: 'slice', name: 'axis 1 [2,5) of [3,7,4,5]', inputs: [{ shape: [3, 7, 4, 5] }], fn: (x) => slice(x, 1, 2, 5) },
  { op: 'slice', name: 'axis 0 [1,3) of [3,4,7]', inputs: [{ shape: [3, 4, 7] }], fn: (x) => slice(x, 0, 1, 3) },
  { op: 'slice', name: 'axis 3 [-4,-1) of [2,3,5,7]', inputs: [{ shape: [2, 3, 5, 7] }], fn: (x) => slice(x, 3, -4, -1) },
  { op: 'dropout', name: 'p 0.5, seed 42, [3,3,5,7]', inputs: [{ shape: [3, 3, 5, 7] }], fn: (x) => dropout(x, 0.5, 42) },
  { op: 'dropout', name: 'p 0.2, seed 7, [2,1,9,9]', inputs: [{ shape: [2, 1, 9, 9] }], fn: (x) => dropout(x, 0.2, 7) },
];
