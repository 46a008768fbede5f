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

/**
 * float64 reference of act(norm(x) * w + b + residual) (batch norm in training or instance norm):
 * inputs x, then weight and bias when `affine`, then the residual when `residual`.
 */
function normActRef(perInstance: boolean, affine: boolean, residual: boolean, act: 'relu' | 'leakyRelu' | null, slope = 0.01) {
  return (xs: Float64Array[], shapes: number[][]): Float64Array => {
    const [N, C, H, W] = shapes[0] as [number, number, number, number];
    const x = xs[0]!;
    const w = affine ? xs[1]! : null;
    const b = affine ? xs[2]! : null;
    const r = residual ? xs[affine ? 3 : 1]! : null;
    const HW = H * W;
    const y = new Float64Array(x.length);
    for (let c = 0; c < C; c++) {
      for (let n0 = 0; n0 < (perInstance ? N : 1); n0++) {
        const planes = perInstance ? [n0] : [...Array(N).keys()];
        const idx = planes.flatMap((n) => [...Array(HW).keys()].map((k) => (n * C + c) * HW + k));
        const mean = idx.reduce((a, i) => a + x[i]!, 0) / idx.length;
        const variance = idx.reduce((a, i) => a + (x[i]! - mean) ** 2, 0) / idx.length;
        for (const i of idx) {
          let v = ((x[i]! - mean) / Math.sqrt(variance + 1e-5)) * (w ? w[c]! : 1) + (b ? b[c]! : 0) + (r ? r[i]! : 0);
          if (act === 'relu') v = Math.max(v, 0);
          if (act === 'leakyRelu') v = v > 0 ? v : slope * v;
          y[i] = v;
        }
      }
    }
    return y;
  };
}

/** Cases of the fused norm epilogues (activation, residual): every input differentiated. */
const fusedNormCases: GradCase[] = [
  {
    op: 'batchNorm2d+relu',
    name: 'training, affine, [3,3,4,5]',
    inputs: [{ shape: [3, 3, 4, 5] }, { shape: [3], low: 0.5, high: 1.5 }, { shape: [3] }, ...runningStats(3)],
    fn: (x, w, b, rm, rv) => batchNorm2d(x, w, b, rm, rv, { training: true, activation: 'relu' }),
    reference: normActRef(false, true, false, 'relu'),
    samples: 60,
  },
  {
    op: 'batchNorm2d+leakyRelu',
    name: 'training, slope 0.2, batch 1, [1,7,3,5]',
    inputs: [{ shape: [1, 7, 3, 5] }, { shape: [7], low: 0.5, high: 1.5 }, { shape: [7] }],
    fn: (x, w, b) => batchNorm2d(x, w, b, null, null, { training: true, activation: 'leakyRelu', negativeSlope: 0.2 }),
    reference: normActRef(false, true, false, 'leakyRelu', 0.2),
    samples: 60,
  },
  {
    op: 'batchNorm2d+residual',
    name: 'training, affine, [2,5,3,7]',
    inputs: [{ shape: [2, 5, 3, 7] }, { shape: [5], low: 0.5, high: 1.5 }, { shape: [5] }, { shape: [2, 5, 3, 7] }],
    fn: (x, w, b, r) => batchNorm2d(x, w, b, null, null, { training: true, residual: r }),
    reference: normActRef(false, true, true, null),
    samples: 60,
  },
  {
    op: 'instanceNorm2d+relu',
    name: 'affine, [3,3,4,5]',
    inputs: [{ shape: [3, 3, 4, 5] }, { shape: [3], low: 0.5, high: 1.5 }, { shape: [3] }],
    fn: (x, w, b) => instanceNorm2d(x, w!, b!, { activation: 'relu' }),
    reference: normActRef(true, true, false, 'relu'),
    samples: 60,
  },
  {
    op: 'instanceNorm2d+residual',
    name: 'no affine, [2,3,5,3]',
    inputs: [{ shape: [2, 3, 5, 3] }, { shape: [2, 3, 5, 3] }],
    fn: (x, r) => instanceNorm2d(x, null, null, { residual: r }),
    reference: normActRef(true, false, true, null),
    samples: 60,
  },
];

export const nnCases: GradCase[] = [
  ...fusedNormCases,
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
