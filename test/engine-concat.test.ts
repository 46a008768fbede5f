import t from 'tap';
import * as E from '../src/engine/index.js';
import { concat, slice } from '../src/engine/ops/concat.js';
import { gpu, randomArray } from './helpers/engine.js';
import { expectNoLeak, gpuGrads, prod } from './helpers/nn.js';

await gpu();

function unravel(i: number, shape: readonly number[]): number[] {
  const c: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    c[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return c;
}
function ravel(c: readonly number[], shape: readonly number[]): number {
  return c.reduce((acc, v, d) => acc * shape[d]! + v, 0);
}

/** Reference concat: element by element through coordinates. */
function concatRef(parts: Float32Array[], shapes: number[][], axis: number): { y: Float32Array; shape: number[] } {
  const sizes = shapes.map((s) => s[axis]!);
  const shape = shapes[0]!.map((d, i) => (i === axis ? sizes.reduce((a, b) => a + b, 0) : d));
  const y = new Float32Array(prod(shape));
  for (let o = 0; o < y.length; o++) {
    const c = unravel(o, shape);
    let k = 0;
    let at = c[axis]!;
    while (at >= sizes[k]!) at -= sizes[k++]!;
    const cc = [...c];
    cc[axis] = at;
    y[o] = parts[k]![ravel(cc, shapes[k]!)]!;
  }
  return { y, shape };
}

function sliceRef(x: Float32Array, shape: number[], axis: number, start: number, end: number): { y: Float32Array; shape: number[] } {
  const out = shape.map((d, i) => (i === axis ? end - start : d));
  const y = new Float32Array(prod(out));
  for (let o = 0; o < y.length; o++) {
    const c = unravel(o, out);
    c[axis] = c[axis]! + start;
    y[o] = x[ravel(c, shape)]!;
  }
  return { y, shape: out };
}

const concatCases: [number[][], number][] = [
  [[[1, 3, 5, 7], [1, 4, 5, 7]], 1],
  [[[3, 1, 4, 5], [3, 7, 4, 5], [3, 2, 4, 5]], 1],
  [[[1, 3, 5, 7], [3, 3, 5, 7]], 0],
  [[[2, 3, 1, 7], [2, 3, 4, 7]], 2],
  [[[2, 3, 5, 1], [2, 3, 5, 3], [2, 3, 5, 2]], 3],
  [[[2, 3, 5, 2], [2, 3, 5, 3]], -1],
  [[[3, 5], [3, 2]], 1],
  [[[7], [2]], 0],
  [[[2, 3, 4], [2, 0, 4], [2, 1, 4]], 1],
  // more parts than one launch takes (4)
  [[[2, 1, 3], [2, 2, 3], [2, 0, 3], [2, 3, 3], [2, 1, 3], [2, 2, 3]], 1],
];

for (const [shapes, axis] of concatCases) {
  t.test(`concat ${JSON.stringify(shapes)} axis ${axis}`, async (t) => {
    const parts = shapes.map((s, k) => randomArray(prod(s), 10 + k));
    const a = axis < 0 ? axis + shapes[0]!.length : axis;
    const ref = concatRef(parts, shapes, a);
    const r = randomArray(ref.y.length, 20);
    const { y, shape, g } = await gpuGrads((...xs) => concat(xs, axis), parts, shapes, r);
    t.same(shape, ref.shape);
    t.same(Array.from(y), Array.from(ref.y), 'forward');
    // The gradient of each part is its slice of r.
    let off = 0;
    shapes.forEach((s, k) => {
      const expected = sliceRef(Float32Array.from(r), ref.shape, a, off, off + s[a]!).y;
      t.same(Array.from(g[k]!), Array.from(expected), `gradient of part ${k}`);
      off += s[a]!;
    });
  });
}

t.test('concat takes up to 4 parts per launch', async (t) => {
  const eng = E.engine();
  for (const [parts, launches] of [[2, 1], [4, 1], [5, 2], [9, 3]] as const) {
    const xs = Array.from({ length: parts }, (_, k) => E.tensor(randomArray(6, k), [1, 2, 3]));
    const d0 = eng.recorder.dispatches;
    const y = concat(xs, 1);
    t.equal(eng.recorder.dispatches - d0, launches, `${parts} parts: ${launches} launch(es)`);
    const ref = concatRef(await Promise.all(xs.map((x) => x.read())), xs.map(() => [1, 2, 3]), 1);
    t.same(Array.from(await y.read()), Array.from(ref.y), `${parts} parts: values`);
    [y, ...xs].forEach((x) => x.dispose());
  }
});

t.test('concat with the default axis 1 and a part that needs no gradient', async (t) => {
  const shapes = [[3, 2, 5, 7], [3, 5, 5, 7]];
  const parts = shapes.map((s, k) => randomArray(prod(s), 30 + k));
  const r = randomArray(3 * 7 * 5 * 7, 32);
  const { y, g } = await gpuGrads((a, b) => concat([a!, b!]), parts, shapes, r, [false, true]);
  t.same(Array.from(y), Array.from(concatRef(parts, shapes, 1).y));
  t.equal(g[0], null);
  t.same(Array.from(g[1]!), Array.from(sliceRef(Float32Array.from(r), [3, 7, 5, 7], 1, 2, 7).y));
});

t.test('concat of the same tensor twice accumulates both gradients', async (t) => {
  const x = randomArray(2 * 3, 40);
  const r = randomArray(2 * 6, 41);
  const { g } = await gpuGrads((a) => concat([a!, a!], 1), [x], [[2, 3]], r);
  const expected = [0, 1, 2, 3, 4, 5].map((i) => {
    const [row, col] = [Math.floor(i / 3), i % 3];
    return Math.fround(r[row * 6 + col]! + r[row * 6 + 3 + col]!);
  });
  t.same(Array.from(g[0]!), expected);
});

const sliceCases: [number[], number, number, number][] = [
  [[3, 7, 5, 4], 1, 2, 5],
  [[3, 7, 5, 4], 0, 1, 3],
  [[1, 3, 5, 7], 2, 0, 1],
  [[1, 3, 5, 7], 3, 4, 7],
  [[2, 3, 5, 7], -1, -3, -1],
  [[2, 3, 5, 7], 1, 0, 3],
  [[5, 6], 1, 2, 2],
  [[9], 0, 3, 8],
  [[2, 3, 4], 2, 1, 3],
];

for (const [shape, axis, start, end] of sliceCases) {
  t.test(`slice ${JSON.stringify(shape)} axis ${axis} [${start}, ${end})`, async (t) => {
    const x = randomArray(prod(shape), 50);
    const a = axis < 0 ? axis + shape.length : axis;
    const size = shape[a]!;
    const s = start < 0 ? start + size : start;
    const e = end < 0 ? end + size : end;
    const ref = sliceRef(x, shape, a, s, e);
    const r = randomArray(ref.y.length, 51);
    const { y, shape: got, g } = await gpuGrads((v) => slice(v, axis, start, end), [x], [shape], r);
    t.same(got, ref.shape);
    t.same(Array.from(y), Array.from(ref.y), 'forward');
    const expected = new Float32Array(x.length);
    for (let o = 0; o < ref.y.length; o++) {
      const c = unravel(o, ref.shape);
      c[a] = c[a]! + s;
      expected[ravel(c, shape)] = r[o]!;
    }
    t.same(Array.from(g[0]!), Array.from(expected), 'gradient embedded in zeros');
  });
}

t.test('concat and slice invert each other', async (t) => {
  const a = E.randn([2, 3, 4, 5], 1);
  const b = E.randn([2, 6, 4, 5], 2);
  const c = concat([a, b]);
  t.same(Array.from(await slice(c, 1, 3, 9).read()), Array.from(await b.read()));
  t.same(Array.from(await slice(c, 1, 0, 3).read()), Array.from(await a.read()));
});

t.test('concat and slice argument errors', async (t) => {
  t.throws(() => concat([]), /concat: needs at least one tensor/);
  t.throws(() => concat([E.zeros([2, 3, 4]), E.zeros([2, 3, 5])], 1), /concat: shapes \[2, 3, 4\], \[2, 3, 5\] differ outside axis 1/);
  t.throws(() => concat([E.zeros([2, 3]), E.zeros([2, 3, 1])]), /concat: shapes/);
  t.throws(() => concat([E.zeros([2, 3])], 2), /concat: axis 2 is out of range for shape \[2, 3\]/);
  t.throws(() => slice(E.zeros([2, 3]), 1, 2, 4), /slice: range \[2, 4\) is invalid for axis 1 of shape \[2, 3\]/);
  t.throws(() => slice(E.zeros([2, 3]), 1, 2, 1), /slice: range/);
  t.throws(() => slice(E.zeros([1, 2, 3, 4, 5]), 1, 0, 1), /at most 4 dimensions/);
});

t.test('concat and slice release intermediates', async (t) => {
  const run = () =>
    E.tidy(() => {
      const x = E.randn([3, 3, 9, 7], 1);
      x.requiresGrad = true;
      E.backward(E.sum(slice(concat([x, x, x], 1), 2, 1, 8)));
      x.dispose();
    });
  await expectNoLeak(t, run);
});
