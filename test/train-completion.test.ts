/**
 * Missing-modality completion: the conditioning input (mask, given modalities, availability
 * planes), the random hiding of modalities, the baselines and the per-class linear model, and a
 * short training run whose synthesized flair (from t1, t1c, t2) beats BOTH the per-class mean and
 * the per-class linear regression, on MAE and PSNR, on held-out phantom slices.
 */
import t from 'tap';
import { init, Rng } from '../src/engine/index.js';
import { concatDatasets, makePhantom, type Dataset, type Slice } from '../src/data/index.js';
import {
  availabilityWithout, classMeanImage, classMeanIntensities, classLinearImage, ClassLinearModel, completionChannels,
  completionCondition, CompletionTrainer, ErrorAccumulator, evaluateCompletion, fitClassLinear, randomAvailability,
} from '../src/train/completion.js';
import { DEFAULT_GAN_CONFIG, type GanConfig } from '../src/train/pix2pix.js';

await init();

t.test('the conditioning input: one-hot mask, given modalities, hidden ones zero or filled, availability planes', async (t) => {
  const ds = makePhantom({ size: 16, numNodes: 1, slicesPerNode: 3, testSlices: 1, seed: 2 }).nodes[0]!;
  const C = ds.numClasses;
  const M = ds.modalities.length;
  const HW = 16 * 16;
  const avail = [
    [true, false, true, false],
    [false, false, false, false],
    [true, true, true, false],
  ];
  const got = completionCondition(ds.slices, C, avail);
  const K = completionChannels(C, M);
  t.equal(K, C + 2 * M);
  t.equal(got.length, 3 * K * HW);
  // Reference: straightforward loops over (sample, channel, pixel).
  let mismatches = 0;
  ds.slices.forEach((s, n) => {
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < HW; i++) {
        let want: number;
        if (k < C) want = s.mask[i] === k ? 1 : 0;
        else if (k < C + M) want = avail[n]![k - C] ? s.image[(k - C) * HW + i]! : 0;
        else want = avail[n]![k - C - M] ? 1 : 0;
        if (got[(n * K + k) * HW + i] !== want) mismatches++;
      }
    }
  });
  t.equal(mismatches, 0, 'every value as specified');
  // Hidden channels filled from `filled` (e.g. the linear estimate), given ones untouched.
  const filled = Float32Array.from({ length: 3 * M * HW }, (_, i) => 0.001 * (i % 997) - 0.4);
  const withFill = completionCondition(ds.slices, C, avail, filled);
  let fillMismatches = 0;
  ds.slices.forEach((s, n) => {
    for (let m = 0; m < M; m++) {
      for (let i = 0; i < HW; i++) {
        const want = avail[n]![m] ? s.image[m * HW + i]! : filled[(n * M + m) * HW + i]!;
        if (withFill[(n * K + C + m) * HW + i] !== want) fillMismatches++;
      }
    }
  });
  t.equal(fillMismatches, 0, 'hidden channels hold the filled values, given ones the real ones');
  t.throws(() => completionCondition(ds.slices, C, avail, new Float32Array(5)), /filled has 5 values/);
  // Same availability for every slice.
  const shared = completionCondition(ds.slices, C, availabilityWithout(M, [3]));
  const perSlice = completionCondition(ds.slices, C, ds.slices.map(() => [true, true, true, false]));
  t.same(shared, perSlice, 'one list for all slices = the same list per slice');
  t.same(availabilityWithout(4, [1, 3]), [true, false, true, false]);
  t.throws(() => completionCondition(ds.slices, C, [true, false]), /must list 4 modalities/);
});

t.test('random availability: at least one modality hidden, all 15 patterns, seeded', async (t) => {
  const counts = new Map<string, number>();
  const rng = new Rng(8);
  const draws = 6000;
  let allGiven = 0;
  for (let i = 0; i < draws; i++) {
    const a = randomAvailability(rng, 4);
    if (a.every(Boolean)) allGiven++;
    const key = a.map((x) => (x ? 1 : 0)).join('');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  t.equal(allGiven, 0, 'never everything given');
  t.equal(counts.size, 15, 'every pattern with at least one hidden occurs');
  const expected = draws / 15;
  const worst = Math.max(...[...counts.values()].map((c) => Math.abs(c - expected) / expected));
  t.ok(worst < 0.2, `uniform over the 15 patterns (worst deviation ${(100 * worst).toFixed(1)}%)`);
  const a = new Rng(3);
  const b = new Rng(3);
  t.same(Array.from({ length: 20 }, () => randomAvailability(a, 4)), Array.from({ length: 20 }, () => randomAvailability(b, 4)), 'same seed, same draws');
  const rare = new Rng(4);
  const hidden = Array.from({ length: 2000 }, () => randomAvailability(rare, 4, 0.25).filter((x) => !x).length);
  t.ok(hidden.every((h) => h >= 1), 'hide probability 0.25: still at least one hidden');
});

t.test('baselines on hand-made data: per-class mean and per-class linear fit', async (t) => {
  // Two 2x2 slices, 2 classes, 2 modalities; modality 1 = 0.5 * modality 0 + (class 0: -0.2, class 1: 0.1).
  const mk = (key: string, mask: number[], m0: number[]): Slice => ({
    key,
    mask: Uint8Array.from(mask),
    image: Float32Array.from([...m0, ...m0.map((v, i) => 0.5 * v + (mask[i] === 0 ? -0.2 : 0.1))]),
    modalities: ['a', 'b'],
    meta: {},
  });
  const ds: Dataset = {
    height: 2, width: 2, numClasses: 3, classNames: ['x', 'y', 'z'], modalities: ['a', 'b'],
    slices: [mk('s0', [0, 0, 1, 1], [-0.8, 0.2, 0.4, 0.6]), mk('s1', [1, 0, 1, 0], [0.0, -0.4, 0.8, 0.6])],
  };
  const means = classMeanIntensities(ds, 1);
  const ref = (c: number) => {
    const v: number[] = [];
    for (const s of ds.slices) s.mask.forEach((m, i) => m === c && v.push(s.image[4 + i]!));
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  t.ok(Math.abs(means[0]! - ref(0)) < 1e-9 && Math.abs(means[1]! - ref(1)) < 1e-9, 'class means');
  t.ok(Number.isNaN(means[2]!), 'absent class: NaN');
  t.same(Array.from(classMeanImage(Uint8Array.from([1, 2]), means)), [Math.fround(means[1]!), -1], 'absent class renders as -1');
  const w = fitClassLinear(ds, [0], 1);
  t.ok(Math.abs(w[0]![0]! + 0.2) < 1e-4 && Math.abs(w[0]![1]! - 0.5) < 1e-4, `class 0: ${w[0]}`);
  t.ok(Math.abs(w[1]![0]! - 0.1) < 1e-4 && Math.abs(w[1]![1]! - 0.5) < 1e-4, `class 1: ${w[1]}`);
  const pred = classLinearImage(ds.slices[0]!, [0], w);
  const err = new ErrorAccumulator();
  err.add(pred, ds.slices[0]!.image.subarray(4), ds.slices[0]!.mask);
  t.ok(err.result().mae < 1e-4, 'exact relation recovered');
  const acc = new ErrorAccumulator();
  acc.add([0, 0.5, 1, 1], [0, 0, 0, 1], [0, 1, 1, 1]);
  const r = acc.result();
  t.ok(Math.abs(r.mae - 1.5 / 4) < 1e-12 && Math.abs(r.maeForeground - 1.5 / 3) < 1e-12, 'MAE over all and foreground pixels');
  t.ok(Math.abs(r.psnr - 10 * Math.log10(4 / (1.25 / 4))) < 1e-9, 'PSNR for the range [-1, 1]');
});

t.test('the per-class linear model: any subset from one fit; nothing given = the class mean', async (t) => {
  const data = makePhantom({ size: 16, numNodes: 1, slicesPerNode: 6, testSlices: 2, seed: 5 });
  const train = data.nodes[0]!;
  const lin = ClassLinearModel.fit(train);
  const HW = 16 * 16;
  const s = data.test.slices[0]!;
  // Against the direct fit of the same regression.
  let worst = 0;
  for (const [given, target] of [[[0, 1, 2], 3], [[2], 0], [[0, 3], 1]] as const) {
    const avail = [0, 1, 2, 3].map((m) => (given as readonly number[]).includes(m));
    const pred = lin.predict(s, avail);
    const ref = classLinearImage(s, given, fitClassLinear(train, given, target));
    for (let i = 0; i < HW; i++) worst = Math.max(worst, Math.abs(pred[target * HW + i]! - ref[i]!));
    for (const g of given) t.same(Array.from(pred.subarray(g * HW, (g + 1) * HW)), Array.from(s.image.subarray(g * HW, (g + 1) * HW)), `given ${g} copied`);
  }
  t.ok(worst < 1e-5, `same as fitClassLinear (worst difference ${worst.toExponential(1)})`);
  const none = lin.predict(s, [false, false, false, false]);
  const means = classMeanIntensities(train, 3);
  let worstMean = 0;
  for (let i = 0; i < HW; i++) if (!Number.isNaN(means[s.mask[i]!]!)) worstMean = Math.max(worstMean, Math.abs(none[3 * HW + i]! - means[s.mask[i]!]!));
  t.ok(worstMean < 1e-4, `nothing given: the per-class mean (worst difference ${worstMean.toExponential(1)})`);
  const back = ClassLinearModel.fromJSON(JSON.parse(JSON.stringify(lin.toJSON())));
  t.same(Array.from(back.predict(s, [true, false, true, false])), Array.from(lin.predict(s, [true, false, true, false])), 'survives JSON');
});

t.test('completion: synthesized flair beats the per-class mean AND the per-class linear regression (MAE and PSNR)', async (t) => {
  // CI-sized: 16x16, 100 iterations of batch 32, every sample hiding flair (focus 1).
  // The untrained model is the linear baseline exactly (its last layer starts at zero); the
  // test asks for a margin over it, so neither a copy of a baseline nor an untrained model passes.
  // Measured 2026-12-02 (lavapipe, phantom of that day), flair MAE / PSNR: completion 0.0570 /
  // 27.33 dB, linear 0.0595 / 26.94, mean 0.1309 / 20.89; seed 2 (120 iterations): 0.0573 / 27.32
  // against linear 0.0604 / 26.70. Margins asked: 2% MAE and 0.2 dB, about half of those.
  const ITERS = 100;
  const data = makePhantom({ size: 16, numNodes: 3, seed: 1, testSlices: 24 });
  const train = concatDatasets(data.nodes);
  const cfg: GanConfig = {
    ...DEFAULT_GAN_CONFIG, ngf: 16, ndf: 8, blocks: 2, dLayers: 2, dropout: false, lr: 3e-3, iters: ITERS, decayIters: ITERS / 2, seed: 1,
  };
  const flair = data.test.modalities.indexOf('flair');
  const focus = { available: availabilityWithout(4, [flair]), probability: 1 };
  const model = new CompletionTrainer(cfg, train, { focus });
  const before = (await evaluateCompletion(model, train, data.test, [flair])).evaluation.metrics.flair!;
  t.ok(Math.abs(before.completion.mae - before.classLinear.mae) < 1e-6, `untrained: the linear baseline (${before.completion.mae.toFixed(4)})`);
  const t0 = performance.now();
  await model.train(train, { batchSize: 32 });
  const seconds = (performance.now() - t0) / 1000;
  t.equal(model.iter, ITERS);
  const r = await evaluateCompletion(model, train, data.test, [flair]);
  const m = r.evaluation.metrics.flair!;
  const f = (x: { mae: number; psnr: number }) => `MAE ${x.mae.toFixed(4)} PSNR ${x.psnr.toFixed(2)}`;
  t.comment(`${ITERS} iterations in ${seconds.toFixed(1)} s; flair: completion ${f(m.completion)}; linear ${f(m.classLinear)}; mean ${f(m.classMean)}; mask only ${f(m.maskOnly)}`);
  t.same(r.evaluation.given, ['t1', 't1c', 't2']);
  t.same(r.evaluation.missing, ['flair']);
  t.ok(m.completion.mae < m.classMean.mae, `MAE ${m.completion.mae.toFixed(4)} < per-class mean ${m.classMean.mae.toFixed(4)}`);
  t.ok(m.completion.psnr > m.classMean.psnr, `PSNR ${m.completion.psnr.toFixed(2)} > per-class mean ${m.classMean.psnr.toFixed(2)}`);
  t.ok(m.completion.mae < 0.98 * m.classLinear.mae, `MAE ${m.completion.mae.toFixed(4)} at least 2% below per-class linear ${m.classLinear.mae.toFixed(4)}`);
  t.ok(m.completion.psnr > m.classLinear.psnr + 0.2, `PSNR ${m.completion.psnr.toFixed(2)} at least 0.2 dB above per-class linear ${m.classLinear.psnr.toFixed(2)}`);
  // Given channels are the inputs; the synthesized one is not a copy of the real flair.
  const HW = 16 * 16;
  const s0 = data.test.slices[0]!;
  t.same(Array.from(r.completed.subarray(0, HW)), Array.from(s0.image.subarray(0, HW)), 't1 (given) passed through');
  const synth = r.completed.subarray(flair * HW, (flair + 1) * HW);
  t.notSame(Array.from(synth), Array.from(s0.image.subarray(flair * HW, (flair + 1) * HW)), 'not the real flair');
  t.ok(synth.every((v) => v >= -1 && v <= 1), 'in [-1, 1]');
});
