import * as E from '../../src/engine/index.js';
import { broadcastBinary, type GradCase } from './harness.js';

const map = (f: (v: number) => number) => ([x]: Float64Array[]) => x!.map(f);

const shapes = [[1], [3, 7], [2, 3, 5, 4]];
/** [op, the engine's function, its CPU reference, input range]. */
const unary: [string, (x: E.Tensor) => E.Tensor, (v: number) => number, Partial<{ low: number; high: number; awayFromZero: number }>][] = [
  ['relu', E.relu, (v) => Math.max(v, 0), { awayFromZero: 0.05 }],
  ['leakyRelu', (x) => E.leakyRelu(x, 0.2), (v) => (v > 0 ? v : 0.2 * v), { awayFromZero: 0.05 }],
  ['tanh', E.tanh, Math.tanh, {}],
  ['sigmoid', E.sigmoid, (v) => 1 / (1 + Math.exp(-v)), { low: -3, high: 3 }],
  ['exp', E.exp, Math.exp, {}],
  ['log', E.log, Math.log, { low: 0.5, high: 2 }],
  ['abs', E.abs, Math.abs, { awayFromZero: 0.05 }],
  ['sqrt', E.sqrt, Math.sqrt, { low: 0.5, high: 2 }],
  ['affine', (x) => E.affine(x, -1.5, 0.3), (v) => -1.5 * v + 0.3, {}],
  ['square', E.square, (v) => v * v, {}],
];

export const elementwiseCases: GradCase[] = [
  ...unary.flatMap(([op, fn, f, range]) =>
    shapes.map((shape) => ({ op, name: JSON.stringify(shape), inputs: [{ shape, ...range }], fn, reference: map(f) })),
  ),
  ...(
    [
      ['add', E.add, (a: number, b: number) => a + b],
      ['sub', E.sub, (a: number, b: number) => a - b],
      ['mul', E.mul, (a: number, b: number) => a * b],
      ['div', E.div, (a: number, b: number) => a / b],
    ] as const
  ).flatMap(([op, fn, f]) => {
    const reference = broadcastBinary(f);
    return [
      { op, name: 'same shape [3,7]', inputs: [{ shape: [3, 7] }, { shape: [3, 7], low: 0.5, high: 2 }], fn, reference },
      {
        op,
        name: 'channel broadcast [3,7,5,2] x [1,7,1,1]',
        inputs: [{ shape: [3, 7, 5, 2] }, { shape: [1, 7, 1, 1], low: 0.5, high: 2 }],
        fn,
        reference,
      },
      { op, name: 'batch broadcast [1,3,2] x [5,3,2]', inputs: [{ shape: [1, 3, 2] }, { shape: [5, 3, 2], low: 0.5, high: 2 }], fn, reference },
    ];
  }),
  { op: 'expand', name: '[1,3,1,1] -> [2,3,5,7]', inputs: [{ shape: [1, 3, 1, 1] }], fn: (x) => E.expand(x, [2, 3, 5, 7]) },
  { op: 'sum', name: 'all of [3,5,7]', inputs: [{ shape: [3, 5, 7] }], fn: (x) => E.sum(x) },
  { op: 'sum', name: 'axes 0,2 of [3,5,7,2]', inputs: [{ shape: [3, 5, 7, 2] }], fn: (x) => E.sum(x, [0, 2]) },
  { op: 'mean', name: 'axis 1 keepdim of [3,5,7]', inputs: [{ shape: [3, 5, 7] }], fn: (x) => E.mean(x, 1, true) },
  { op: 'mean', name: 'all of [1,600]', inputs: [{ shape: [1, 600] }], fn: (x) => E.mean(x) },
  { op: 'reshape', name: '[3,4,5] -> [12,-1]', inputs: [{ shape: [3, 4, 5] }], fn: (x) => E.square(E.reshape(x, [12, -1])) },
];
