import t from 'tap';
import * as E from '../src/engine/index.js';
import { reduceTuning } from '../src/engine/primitives.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

await gpu();

const unaryCases: [string, (x: E.Tensor) => E.Tensor, (v: number) => number, [number, number]][] = [
  ['relu', E.relu, (v) => Math.max(v, 0), [-2, 2]],
  ['leakyRelu', (x) => E.leakyRelu(x, 0.2), (v) => (v > 0 ? v : 0.2 * v), [-2, 2]],
  ['tanh', E.tanh, Math.tanh, [-30, 30]],
  ['sigmoid', E.sigmoid, (v) => 1 / (1 + Math.exp(-v)), [-80, 80]],
  ['exp', E.exp, Math.exp, [-3, 3]],
  ['log', E.log, Math.log, [0.1, 5]],
  ['abs', E.abs, Math.abs, [-2, 2]],
  ['sqrt', E.sqrt, Math.sqrt, [0.1, 4]],
  ['affine', (x) => E.affine(x, 1.5, -0.25), (v) => 1.5 * v - 0.25, [-2, 2]],
  ['square', E.square, (v) => v * v, [-2, 2]],
];

for (const shape of [[1], [3, 7], [3, 1, 5, 7], [2, 3, 17, 9]]) {
  for (const [name, op, ref, [lo, hi]] of unaryCases) {
    t.test(`${name} ${JSON.stringify(shape)}`, async (t) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = randomArray(n, 7, lo, hi);
      const y = await op(E.tensor(data, shape)).read();
      const c = closeness(y, Array.from(data, ref), 2e-5, 1e-6);
      t.ok(c.ok, c.msg);
    });
  }
}

function refBinary(a: Float32Array, as: number[], b: Float32Array, bs: number[], f: (x: number, y: number) => number) {
  const r = Math.max(as.length, bs.length);
  const pa = [...Array(r - as.length).fill(1), ...as];
  const pb = [...Array(r - bs.length).fill(1), ...bs];
  const out = pa.map((d, i) => Math.max(d, pb[i]));
  const n = out.reduce((x, y) => x * y, 1);
  const res = new Float32Array(n);
  const idx = (shape: number[], coord: number[]) =>
    coord.reduce((acc, c, i) => acc * shape[i]! + (shape[i] === 1 ? 0 : c), 0);
  for (let i = 0; i < n; i++) {
    const coord: number[] = [];
    let q = i;
    for (let d = r - 1; d >= 0; d--) {
      coord[d] = q % out[d]!;
      q = Math.floor(q / out[d]!);
    }
    res[i] = f(a[idx(pa, coord)]!, b[idx(pb, coord)]!);
  }
  return { res, out };
}

const binaryCases: [string, (a: E.Tensor, b: E.Tensor) => E.Tensor, (x: number, y: number) => number][] = [
  ['add', E.add, (x, y) => x + y],
  ['sub', E.sub, (x, y) => x - y],
  ['mul', E.mul, (x, y) => x * y],
  ['div', E.div, (x, y) => x / y],
];
const shapePairs: [number[], number[]][] = [
  [[3, 7], [3, 7]],
  [[3, 7, 5, 2], [1, 7, 1, 1]],
  [[1, 7, 1, 1], [3, 7, 5, 2]],
  [[3, 1, 5, 7], [7]],
  [[2, 3, 4], [2, 1, 4]],
  [[1], [3, 5]],
];
for (const [as, bs] of shapePairs) {
  for (const [name, op, f] of binaryCases) {
    t.test(`${name} ${JSON.stringify(as)} ${JSON.stringify(bs)}`, async (t) => {
      const a = randomArray(as.reduce((x, y) => x * y, 1), 3);
      const b = randomArray(bs.reduce((x, y) => x * y, 1), 4, 0.5, 2);
      const { res, out } = refBinary(a, as, b, bs, f);
      const y = op(E.tensor(a, as), E.tensor(b, bs));
      t.same(y.shape, out);
      const c = closeness(await y.read(), res, 1e-5, 1e-6);
      t.ok(c.ok, c.msg);
    });
  }
}

t.test('incompatible broadcast names both shapes', async (t) => {
  t.throws(() => E.add(E.zeros([3, 4]), E.zeros([5])), /\[3, 4\] and \[5\]/);
});

// Both sums of the one-workgroup-per-output kernel: subgroupAdd (reduce_subgroup.wgsl, CPU adapters
// whose subgroup holds the workgroup) and the workgroup-memory tree (reduce.wgsl).
for (const subgroupSums of [true, false]) t.test(`sum and mean over axes${subgroupSums ? '' : ' (workgroup sums)'}`, async (t) => {
  reduceTuning.subgroupSums = subgroupSums;
  t.teardown(() => void (reduceTuning.subgroupSums = true));
  for (const shape of [[7], [3, 7], [3, 5, 2], [2, 3, 17, 9], [1, 1, 700, 3]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = randomArray(n, 11);
    const x = E.tensor(data, shape);
    for (let mask = 1; mask < 1 << shape.length; mask++) {
      const axes = shape.map((_, i) => i).filter((i) => mask & (1 << i));
      const outShape = shape.filter((_, i) => !axes.includes(i));
      const count = axes.reduce((a, i) => a * shape[i]!, 1);
      const expected = new Float64Array(outShape.reduce((a, b) => a * b, 1));
      for (let i = 0; i < n; i++) {
        let q = i;
        const coord: number[] = [];
        for (let d = shape.length - 1; d >= 0; d--) {
          coord[d] = q % shape[d]!;
          q = Math.floor(q / shape[d]!);
        }
        let o = 0;
        shape.forEach((d, k) => {
          if (!axes.includes(k)) o = o * d + coord[k]!;
        });
        expected[o]! += data[i]!;
      }
      const s = E.sum(x, axes);
      t.same(s.shape, outShape);
      const c = closeness(await s.read(), expected, 1e-4, 1e-5);
      t.ok(c.ok, `sum ${JSON.stringify(shape)} axes ${axes}: ${c.msg}`);
      const m = await E.mean(x, axes, true).read();
      const cm = closeness(m, Array.from(expected, (v) => v / count), 1e-4, 1e-5);
      t.ok(cm.ok, `mean ${JSON.stringify(shape)} axes ${axes}: ${cm.msg}`);
    }
  }
});
