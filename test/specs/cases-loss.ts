/**
 * Gradient checks of the losses. Loss gradients are ~1/(elements), so inputs are kept to a few
 * dozen to a few hundred elements and `atol` is tightened to stay well below the gradients.
 * Labels and class ids are fixed, non-differentiable inputs.
 */
import * as E from '../../src/engine/index.js';
import { bceWithLogits, l1Loss, mseLoss, softDice, softmaxCrossEntropy } from '../../src/engine/ops/loss.js';
import type { GradCase } from './harness.js';

/** Deterministic class ids in [0, classes) for `n` pixels (every class present). */
const ids = (n: number, classes: number): number[] => Array.from({ length: n }, (_, i) => (i * 7 + (i >> 2)) % classes);

const tight = { atol: 1e-4, rtol: 2e-2 };

export const lossCases: GradCase[] = [
  // BCE with logits.
  {
    op: 'bceWithLogits',
    name: 'tensor target [3,7]',
    inputs: [{ shape: [3, 7], low: -4, high: 4 }, { shape: [3, 7], low: 0, high: 1, grad: false }],
    fn: (x, t) => bceWithLogits(x, t),
    ...tight,
  },
  {
    op: 'bceWithLogits',
    name: 'constant target 1, [2,3,5,4]',
    inputs: [{ shape: [2, 3, 5, 4], low: -5, high: 5 }],
    fn: (x) => bceWithLogits(x, 1),
    samples: 40,
    atol: 2e-5,
  },
  {
    op: 'bceWithLogits',
    name: 'constant target 0, [1,1,3,5]',
    inputs: [{ shape: [1, 1, 3, 5], low: -5, high: 5 }],
    fn: (x) => bceWithLogits(x, 0),
    ...tight,
  },
  {
    op: 'bceWithLogits',
    name: 'gradient to the target too, [5,3]',
    inputs: [{ shape: [5, 3], low: -3, high: 3 }, { shape: [5, 3], low: 0, high: 1 }],
    fn: (x, t) => bceWithLogits(x, t),
    ...tight,
  },
  // L1: pred = d + t with |d| >= 0.05 keeps |pred - target| away from the kink at 0.
  {
    op: 'l1Loss',
    name: '[3,5,7], |pred - target| >= 0.05',
    inputs: [{ shape: [3, 5, 7], awayFromZero: 0.05 }, { shape: [3, 5, 7], grad: false }],
    fn: (d, t) => l1Loss(E.add(d, t), t),
    samples: 40,
    atol: 1e-5,
  },
  {
    op: 'l1Loss',
    name: 'channels [0,2] of [2,4,3,5]',
    inputs: [{ shape: [2, 4, 3, 5], awayFromZero: 0.05 }, { shape: [2, 4, 3, 5], grad: false }],
    fn: (d, t) => l1Loss(E.add(d, t), t, { channels: [0, 2] }),
    samples: 60,
    atol: 1e-5,
  },
  {
    op: 'l1Loss',
    name: 'gradient to the target, [4,3]',
    inputs: [{ shape: [4, 3], grad: false }, { shape: [4, 3], awayFromZero: 0.05 }],
    // target = p - d with a constant p: the gradient reaches d through the target only.
    fn: (p, d) => l1Loss(p, E.sub(p, d)),
    ...tight,
  },
  // MSE.
  {
    op: 'mseLoss',
    name: 'pred and target [3,7]',
    inputs: [{ shape: [3, 7] }, { shape: [3, 7] }],
    fn: (p, t) => mseLoss(p, t),
    ...tight,
  },
  {
    op: 'mseLoss',
    name: 'channels [1] of [3,3,2,5]',
    inputs: [{ shape: [3, 3, 2, 5] }, { shape: [3, 3, 2, 5], grad: false }],
    fn: (p, t) => mseLoss(p, t, { channels: [1] }),
    samples: 40,
    ...tight,
  },
  // Softmax cross-entropy.
  {
    op: 'softmaxCrossEntropy',
    name: 'logits [2,3,4,5]',
    inputs: [{ shape: [2, 3, 4, 5], low: -3, high: 3 }, { shape: [2, 4, 5], grad: false, values: ids(40, 3) }],
    fn: (x, y) => softmaxCrossEntropy(x, y),
    samples: 40,
    ...tight,
  },
  {
    op: 'softmaxCrossEntropy',
    name: 'class weights, mean over pixels, [1,4,3,5]',
    inputs: [{ shape: [1, 4, 3, 5], low: -3, high: 3 }, { shape: [1, 3, 5], grad: false, values: ids(15, 4) }],
    fn: (x, y) => softmaxCrossEntropy(x, y, { weights: [0.5, 2, 1, 3] }),
    samples: 40,
    ...tight,
  },
  {
    op: 'softmaxCrossEntropy',
    name: 'class weights normalized by weights, ignored labels, [2,3,2,3]',
    inputs: [
      { shape: [2, 3, 2, 3], low: -3, high: 3 },
      { shape: [2, 2, 3], grad: false, values: [0, 1, 2, -1, 2, 1, 255, 0, 0, 1, 2, 2] },
    ],
    fn: (x, y) => softmaxCrossEntropy(x, y, { weights: [1, 0.25, 4], normalize: 'weights' }),
    ...tight,
  },
  {
    op: 'softmaxCrossEntropy',
    name: 'logits [7,5] (no spatial dims)',
    inputs: [{ shape: [7, 5], low: -3, high: 3 }, { shape: [7], grad: false, values: ids(7, 5) }],
    fn: (x, y) => softmaxCrossEntropy(x, y),
    ...tight,
  },
  // Soft Dice.
  {
    op: 'softDice',
    name: 'logits [2,3,4,5]',
    inputs: [{ shape: [2, 3, 4, 5], low: -2, high: 2 }, { shape: [2, 4, 5], grad: false, values: ids(40, 3) }],
    fn: (x, y) => softDice(x, y),
    samples: 40,
    atol: 2e-5,
  },
  {
    op: 'softDice',
    name: 'ignoreBackground, eps 1, [1,4,3,5]',
    inputs: [{ shape: [1, 4, 3, 5], low: -2, high: 2 }, { shape: [1, 3, 5], grad: false, values: ids(15, 4) }],
    fn: (x, y) => softDice(x, y, { ignoreBackground: true, eps: 1 }),
    samples: 40,
    atol: 2e-5,
  },
  {
    op: 'softDice',
    name: 'absent class, [3,2,2,3]',
    inputs: [{ shape: [3, 2, 2, 3], low: -2, high: 2 }, { shape: [3, 2, 3], grad: false, values: Array(18).fill(0) }],
    fn: (x, y) => softDice(x, y, { eps: 1e-3 }),
    atol: 2e-5,
  },
];
