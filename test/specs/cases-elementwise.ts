import * as E from '../../src/engine/index.js';
import type { GradCase } from './harness.js';

const shapes = [[1], [3, 7], [2, 3, 5, 4]];
const unary: [string, (x: E.Tensor) => E.Tensor, Partial<{ low: number; high: number; awayFromZero: number }>][] = [
  ['relu', E.relu, { awayFromZero: 0.05 }],
  ['leakyRelu', (x) => E.leakyRelu(x, 0.2), { awayFromZero: 0.05 }],
  ['tanh', E.tanh, {}],
  ['sigmoid', E.sigmoid, { low: -3, high: 3 }],
  ['exp', E.exp, {}],
  ['log', E.log, { low: 0.5, high: 2 }],
  ['abs', E.abs, { awayFromZero: 0.05 }],
  ['sqrt', E.sqrt, { low: 0.5, high: 2 }],
  ['affine', (x) => E.affine(x, -1.5, 0.3), {}],
  ['square', E.square, {}],
];

export const elementwiseCases: GradCase[] = [
  ...unary.flatMap(([op, fn, range]) =>
    shapes.map((shape) => ({ op, name: JSON.stringify(shape), inputs: [{ shape, ...range }], fn })),
  ),
  ...(
    [
      ['add', E.add],
      ['sub', E.sub],
      ['mul', E.mul],
      ['div', E.div],
    ] as const
  ).flatMap(([op, fn]) => [
    { op, name: 'same shape [3,7]', inputs: [{ shape: [3, 7] }, { shape: [3, 7], low: 0.5, high: 2 }], fn },
    {
      op,
      name: 'channel broadcast [3,7,5,2] x [1,7,1,1]',
      inputs: [{ shape: [3, 7, 5, 2] }, { shape: [1, 7, 1, 1], low: 0.5, high: 2 }],
      fn,
    },
    { op, name: 'batch broadcast [1,3,2] x [5,3,2]', inputs: [{ shape: [1, 3, 2] }, { shape: [5, 3, 2], low: 0.5, high: 2 }], fn },
  ]),
  { op: 'expand', name: '[1,3,1,1] -> [2,3,5,7]', inputs: [{ shape: [1, 3, 1, 1] }], fn: (x) => E.expand(x, [2, 3, 5, 7]) },
  { op: 'sum', name: 'all of [3,5,7]', inputs: [{ shape: [3, 5, 7] }], fn: (x) => E.sum(x) },
  { op: 'sum', name: 'axes 0,2 of [3,5,7,2]', inputs: [{ shape: [3, 5, 7, 2] }], fn: (x) => E.sum(x, [0, 2]) },
  { op: 'mean', name: 'axis 1 keepdim of [3,5,7]', inputs: [{ shape: [3, 5, 7] }], fn: (x) => E.mean(x, 1, true) },
  { op: 'mean', name: 'all of [1,600]', inputs: [{ shape: [1, 600] }], fn: (x) => E.mean(x) },
  { op: 'reshape', name: '[3,4,5] -> [12,-1]', inputs: [{ shape: [3, 4, 5] }], fn: (x) => E.square(E.reshape(x, [12, -1])) },
];
