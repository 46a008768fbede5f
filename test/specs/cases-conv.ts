/** Gradient checks for conv2d, convTranspose2d and matmul (every input: x, w, bias; a, b). */
import type * as E from '../../src/engine/index.js';
import { conv2d, convTranspose2d, type ConvTranspose2dOptions, type Conv2dOptions } from '../../src/engine/ops/conv.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import type { GradCase } from './harness.js';

// The ops are linear in each input, so central differences are exact up to rounding; a larger
// step keeps the float32 rounding of the loss small relative to the difference.
const eps = 0.05;

function convCase(name: string, x: number[], w: number[], bias: boolean, opts: Conv2dOptions): GradCase {
  return {
    op: 'conv2d',
    name,
    inputs: [{ shape: x }, { shape: w }, ...(bias ? [{ shape: [w[0]!] }] : [])],
    fn: (xt: E.Tensor, wt: E.Tensor, bt?: E.Tensor) => conv2d(xt, wt, bt ?? null, opts),
    eps,
    samples: 16,
  };
}

function convTCase(name: string, x: number[], w: number[], bias: boolean, opts: ConvTranspose2dOptions): GradCase {
  return {
    op: 'convTranspose2d',
    name,
    inputs: [{ shape: x }, { shape: w }, ...(bias ? [{ shape: [w[1]!] }] : [])],
    fn: (xt: E.Tensor, wt: E.Tensor, bt?: E.Tensor) => convTranspose2d(xt, wt, bt ?? null, opts),
    eps,
    samples: 16,
  };
}

function matmulCase(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean): GradCase {
  return {
    op: 'matmul',
    name: `[${m},${k}]x[${k},${n}]${transposeA ? ' A^T' : ''}${transposeB ? ' B^T' : ''}`,
    inputs: [{ shape: transposeA ? [k, m] : [m, k] }, { shape: transposeB ? [n, k] : [k, n] }],
    fn: (a: E.Tensor, b: E.Tensor) => matmul(a, b, { transposeA, transposeB }),
    eps,
    samples: 16,
  };
}

export const convCases: GradCase[] = [
  convCase('3x3 pad 1, batch 2, bias', [2, 3, 5, 6], [4, 3, 3, 3], true, { padding: 1 }),
  convCase('4x4 stride 2 pad 1, bias', [1, 2, 7, 8], [3, 2, 4, 4], true, { stride: 2, padding: 1 }),
  convCase('3x3 dilation 2 pad 2', [1, 2, 7, 6], [3, 2, 3, 3], false, { padding: 2, dilation: 2 }),
  convCase('7x7 pad 3', [1, 1, 8, 9], [2, 1, 7, 7], true, { padding: 3 }),
  convCase('1x3 stride (2,1) pad (0,1)', [1, 3, 5, 7], [2, 3, 1, 3], false, { stride: [2, 1], padding: [0, 1] }),
  // Reflection padding in the index math: d/dx sums every padded position onto its mirror source.
  convCase('3x3 reflect pad 1, bias', [1, 2, 5, 7], [2, 2, 3, 3], true, { padding: 1, padMode: 'reflect' }),
  convCase('7x7 reflect pad 3', [1, 1, 5, 7], [2, 1, 7, 7], false, { padding: 3, padMode: 'reflect' }),
  convTCase('3x3 stride 2 pad 1 output padding 1, bias', [2, 3, 4, 5], [3, 2, 3, 3], true, { stride: 2, padding: 1, outputPadding: 1 }),
  convTCase('4x4 stride 2 pad 1, bias', [1, 4, 3, 4], [4, 3, 4, 4], true, { stride: 2, padding: 1 }),
  convTCase('3x3 dilation 2 pad 1', [1, 2, 4, 4], [2, 3, 3, 3], false, { padding: 1, dilation: 2 }),
  convTCase('2x3 stride (1,3)', [1, 3, 3, 4], [3, 2, 2, 3], true, { stride: [1, 3] }),
  matmulCase(5, 7, 3, false, false),
  matmulCase(5, 7, 3, true, false),
  matmulCase(5, 7, 3, false, true),
  matmulCase(17, 8, 6, true, true),
];
