import t from 'tap';
import {
  classHistogram,
  concatDatasets,
  conditionTensor,
  contiguousRanges,
  imageTensor,
  labelTensor,
  partitionDataset,
  selectModalities,
  subsetDataset,
  trainTestSplit,
  validateDataset,
  type Dataset,
  type Slice,
} from '../src/data/sample.js';
import { Rng, hashSeed } from '../src/engine/index.js';

const H = 3;
const W = 4;
function slice(k: number): Slice {
  return {
    key: `s${k}`,
    mask: Uint8Array.from({ length: H * W }, (_, i) => (i + k) % 3),
    image: Float32Array.from({ length: 2 * H * W }, (_, i) => ((i + k) % 10) / 10),
    modalities: ['t1', 't2'],
    meta: { k },
  };
}
const ds = (n: number): Dataset => ({
  height: H,
  width: W,
  numClasses: 3,
  classNames: ['a', 'b', 'c'],
  modalities: ['t1', 't2'],
  slices: Array.from({ length: n }, (_, k) => slice(k)),
});

t.test('conditionTensor is one-hot NCHW; imageTensor and labelTensor are NCHW / NHW', async (t) => {
  const d = ds(2);
  const c = conditionTensor(d.slices, 3);
  t.equal(c.length, 2 * 3 * H * W);
  const HW = H * W;
  for (let n = 0; n < 2; n++)
    for (let i = 0; i < HW; i++) {
      const cls = d.slices[n]!.mask[i]!;
      for (let k = 0; k < 3; k++) if (c[n * 3 * HW + k * HW + i] !== (k === cls ? 1 : 0)) t.fail(`n${n} i${i} k${k}`);
    }
  t.equal(c.reduce((a, b) => a + b, 0), 2 * HW, 'exactly one 1 per pixel');
  const reuse = new Float32Array(c.length).fill(7);
  t.same(Array.from(conditionTensor(d.slices, 3, reuse)), Array.from(c), 'out buffer is cleared and filled');
  t.throws(() => conditionTensor(d.slices, 2), /class 2 >= 2/);
  const im = imageTensor(d.slices);
  t.equal(im[1 * 2 * HW + 1 * HW + 5], d.slices[1]!.image[HW + 5], '[n=1, m=1, pixel 5]');
  const l = labelTensor(d.slices);
  t.equal(l[HW + 7], d.slices[1]!.mask[7]);
  t.equal(conditionTensor([], 3).length, 0);
});

t.test('validateDataset catches inconsistencies', async (t) => {
  validateDataset(ds(3));
  const bad = ds(2);
  bad.slices[1]!.mask[0] = 3;
  t.throws(() => validateDataset(bad, 'nodeA'), /nodeA: slice 's1' has class id 3 >= 3/);
  const dup = ds(2);
  dup.slices[1]!.key = 's0';
  t.throws(() => validateDataset(dup), /duplicate slice key 's0'/);
  const range = ds(1);
  range.slices[0]!.image[3] = 1.5;
  t.throws(() => validateDataset(range), /image value 1.5 outside \[-1, 1\]/);
  const size = ds(1);
  size.slices[0]!.image = new Float32Array(5);
  t.throws(() => validateDataset(size), /image has 5 values, expected 2x3x4/);
  t.throws(() => validateDataset({ ...ds(1), classNames: ['a'] }), /1 class names for 3 classes/);
});

t.test('splits: subset, train/test, partition, contiguous ranges, concat, modalities', async (t) => {
  const d = ds(10);
  t.same(subsetDataset(d, [3, 1]).slices.map((s) => s.key), ['s3', 's1']);
  t.throws(() => subsetDataset(d, [10]), /index 10 out of range/);

  const a = trainTestSplit(d, { testFraction: 0.3, seed: 1 });
  const b = trainTestSplit(d, { testFraction: 0.3, seed: 1 });
  t.same(a.test.slices.map((s) => s.key), b.test.slices.map((s) => s.key), 'deterministic');
  t.equal(a.test.slices.length, 3);
  t.equal(a.train.slices.length, 7);
  const keys = [...a.train.slices, ...a.test.slices].map((s) => s.key).sort();
  t.same(keys, d.slices.map((s) => s.key).sort(), 'disjoint and complete');
  const other = [1, 2, 3, 4, 5].map((seed) => trainTestSplit(d, { testFraction: 0.3, seed }).test.slices.map((s) => s.key).join());
  t.ok(new Set(other).size > 1, 'seed changes the split');

  const parts = partitionDataset(d, 3, (s) => (s.meta.k as number) % 3);
  t.same(parts.map((p) => p.slices.length), [4, 3, 3]);
  t.throws(() => partitionDataset(d, 2, () => 2), /assigned to part 2/);
  t.same(contiguousRanges(10, 4), [[0, 2], [2, 5], [5, 7], [7, 10]]);
  t.same(contiguousRanges(2, 3), [[0, 0], [0, 1], [1, 2]]);

  t.equal(concatDatasets(parts).slices.length, 10);
  t.throws(() => concatDatasets([d, { ...d, numClasses: 4, classNames: ['a', 'b', 'c', 'd'] }]), /differ/);

  const t2 = selectModalities(d, ['t2']);
  t.same(t2.modalities, ['t2']);
  t.same(Array.from(t2.slices[4]!.image), Array.from(d.slices[4]!.image.subarray(H * W)));
  t.throws(() => selectModalities(d, ['flair']), /'flair' not in/);
  t.same(classHistogram(ds(1)), [4, 4, 4]);
});

t.test('Rng: deterministic, state round trip, forks, rough uniformity', async (t) => {
  const a = new Rng(123);
  const b = new Rng(123);
  const xs = Array.from({ length: 5 }, () => a.next());
  t.same(Array.from({ length: 5 }, () => b.next()), xs);
  const c = Rng.fromState(a.state);
  t.equal(c.next(), a.next(), 'fromState continues the stream');
  const f1 = a.fork('x').next();
  const f2 = a.fork('x').next();
  t.equal(f1, f2, 'fork does not advance the parent');
  t.not(a.fork('y').next(), f1);
  const r = new Rng(9);
  let s = 0;
  let s2 = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const v = r.normal();
    s += v;
    s2 += v * v;
  }
  t.ok(Math.abs(s / n) < 0.05 && Math.abs(s2 / n - 1) < 0.05, `normal mean ${(s / n).toFixed(3)}, var ${(s2 / n).toFixed(3)}`);
  let m = 0;
  for (let i = 0; i < n; i++) m += r.next();
  t.ok(Math.abs(m / n - 0.5) < 0.01);
  t.not(hashSeed('ab', 'c'), hashSeed('a', 'bc'));
  t.not(hashSeed(1, 2), hashSeed(2, 1));
  t.throws(() => hashSeed(NaN), /non-finite/);
});
