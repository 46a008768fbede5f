/**
 * coordinateTrimmedMean / coordinateMedian, voteAlignment and weightedVotes against plain
 * TypeScript references, and the flat-copy helpers.
 */
import t from 'tap';
import * as E from '../src/engine/index.js';
import { copyFlatInto, splitFlat } from '../src/engine/internal.js';
import * as I from '../src/engine/internal.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

await gpu();

/** Column j of x [m, n] sorted, its trim smallest and largest dropped, averaged (in f32 order). */
function referenceTrimmedMean(x: Float32Array, m: number, n: number, trim: number): Float32Array {
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const col = Array.from({ length: m }, (_, i) => x[i * n + j]!).sort((a, b) => a - b);
    let s = 0;
    for (let i = trim; i < m - trim; i++) s = Math.fround(s + col[i]!);
    out[j] = Math.fround(s / (m - 2 * trim));
  }
  return out;
}

for (const [m, n, trim] of [[1, 7, 0], [2, 5, 0], [3, 1037, 1], [4, 300, 1], [5, 257, 2], [5, 257, 1], [7, 61, 3], [64, 33, 20]] as const) {
  t.test(`trimmed mean of ${m} votes x ${n}, trim ${trim}`, async (t) => {
    const x = randomArray(m * n, 100 * m + n + trim, -3, 3);
    // Ties: a repeated value in some columns.
    for (let j = 0; j < n; j += 5) x[j] = x[(m - 1) * n + j]!;
    const got = await E.coordinateTrimmedMean(E.tensor(x, [m, n]), trim).read();
    const c = closeness(got, referenceTrimmedMean(x, m, n, trim), 1e-6, 1e-6);
    t.ok(c.ok, c.msg);
  });
}

t.test('the median ignores a minority of arbitrary votes', async (t) => {
  const n = 513;
  const honest = [randomArray(n, 1), randomArray(n, 2), randomArray(n, 3)];
  const hostile = [randomArray(n, 4).map((v) => -1e6 * v), new Float32Array(n).fill(3e7)];
  const x = new Float32Array(5 * n);
  [...honest, ...hostile].forEach((v, i) => x.set(v, i * n));
  const med = await E.coordinateMedian(E.tensor(x, [5, n])).read();
  let outside = 0;
  for (let j = 0; j < n; j++) {
    const h = honest.map((v) => v[j]!);
    if (med[j]! < Math.min(...h) || med[j]! > Math.max(...h)) outside++;
  }
  t.equal(outside, 0, 'every coordinate lies between the smallest and the largest honest value');
  // The control: the plain mean is dragged far outside by the same votes.
  const mean = await E.coordinateTrimmedMean(E.tensor(x, [5, n]), 0).read();
  t.ok(mean.some((v, j) => Math.abs(v) > 1e5 + Math.abs(med[j]!)), 'the mean (trim 0) is not: the check can fail');
});

t.test('voteAlignment and weightedVotes against plain dot products and sums', async (t) => {
  for (const [m, n] of [[1, 3], [3, 1037], [5, 257]] as const) {
    const x = randomArray(m * n, 7 * m + n);
    const r = randomArray(n, 11 * m + n);
    const w = randomArray(m, 13 * m);
    const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, j) => s + v * b[j]!, 0);
    const row = (i: number) => x.subarray(i * n, (i + 1) * n);
    const want = [...Array.from({ length: m }, (_, i) => [dot(row(i), r), dot(row(i), row(i))]).flat(), dot(r, r)];
    let c = closeness(await I.voteAlignment(E.tensor(x, [m, n]), E.tensor(r, [n])).read(), want, 1e-4, 1e-4);
    t.ok(c.ok, `alignment of ${m} votes x ${n}: ${c.msg}`);
    const sum = Array.from({ length: n }, (_, j) => w.reduce((s, wi, i) => s + wi * x[i * n + j]!, 0));
    c = closeness(await I.weightedVotes(E.tensor(x, [m, n]), E.tensor(w, [m])).read(), sum, 1e-5, 1e-6);
    t.ok(c.ok, `weighted sum of ${m} votes x ${n}: ${c.msg}`);
  }
  t.throws(() => I.voteAlignment(E.zeros([2, 3]), E.zeros([4])), /reference has 4 elements, votes have 3/);
  t.throws(() => I.weightedVotes(E.zeros([2, 3]), E.zeros([3])), /3 weights for 2 votes/);
});

t.test('bad arguments are named', async (t) => {
  const x = E.zeros([3, 4]);
  t.throws(() => E.coordinateTrimmedMean(x, 2), /trim must be an integer in \[0, 1\] for 3 votes, got 2/);
  t.throws(() => E.coordinateTrimmedMean(E.zeros([12]), 0), /input must be \[votes, n\], got \[12\]/);
  t.throws(() => E.coordinateTrimmedMean(E.zeros([65, 2]), 0), /needs 1\.\.64 votes \(rows\), got 65/);
});

t.test('copyFlatInto and splitFlat round-trip a list of tensors', async (t) => {
  const shapes = [[3, 5], [7], [1, 1, 2, 3], [0], [4, 4]];
  const parts = shapes.map((s, i) => E.tensor(randomArray(s.reduce((a, b) => a * b, 1), 40 + i), s));
  const total = parts.reduce((s, p) => s + p.size, 0);
  const flat = E.full([2, total + 3], -7);
  const end = copyFlatInto(parts, flat, total + 3);
  t.equal(end, 2 * total + 3, 'returns the element after the last one written');
  const data = await flat.read();
  t.ok(data.slice(0, total + 3).every((v) => v === -7), 'nothing written before the offset');
  const back = splitFlat(flat, shapes, total + 3);
  for (const [i, p] of parts.entries()) {
    t.same(back[i]!.shape, shapes[i], `shape ${i}`);
    t.same(await back[i]!.read(), await p.read(), `values ${i}`);
  }
  t.throws(() => copyFlatInto(parts, E.zeros([total - 1])), /do not fit in \[\d+\]/);
  t.throws(() => splitFlat(flat, [[2 * total + 7]]), /do not fit/);
});
