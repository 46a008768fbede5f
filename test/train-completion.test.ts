/**
 * Missing-modality completion: the conditioning input (mask, given modalities, availability
 * planes), the random hiding of modalities, the baselines, and a short training run whose
 * synthesized flair (from t1, t1c, t2) beats the per-class-mean baseline on held-out phantom slices.
 */
import t from 'tap';
import { init, Rng } from '../src/engine/index.js';
import { concatDatasets, makePhantom, type Dataset, type Slice } from '../src/data/index.js';
import {
  availabilityWithout, classMeanImage, classMeanIntensities, classLinearImage, completionChannels, completionCondition,
  CompletionTrainer, ErrorAccumulator, evaluateCompletion, fitClassLinear, randomAvailability,
} from '../src/train/completion.js';
import { DEFAULT_GAN_CONFIG, type GanConfig } from '../src/train/pix2pix.js';

await init();

t.test('the conditioning input: one-hot mask, given modalities, zeros for hidden ones, availability planes', async (t) => {
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
  // Same availability for every slice.
  const shared = completionCondition(ds.slices, C, availabilityWithout(M, [3]));
  const perSlice = completionCondition(ds.slices, C, ds.slices.map(() => [true, true, true, false]));
  t.same(shared, perSlice, 'one list for all slices = the same list per slice');
  t.same(availabilityWithout(4, [1, 3]), [true, false, true, false]);
  t.throws(() => completionCondition(ds.slices, C, [true, false]), /4 modalities/);
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

t.test('completion: synthesized flair beats the per-class mean on held-out slices', async (t) => {
  // CI-sized: 16x16, 300 iterations. Measured here (lavapipe), seed 1: completion MAE 0.0993 vs
  // per-class mean 0.1070 (mask only 0.1022; per-class linear regression 0.0508). Seeds 2 and 3
  // gave 0.1020 and 0.1025 against the same 0.1070. Threshold: strictly below the class mean.
  const ITERS = 300;
  const data = makePhantom({ size: 16, numNodes: 3, seed: 1, testSlices: 24 });
  const train = concatDatasets(data.nodes);
  const cfg: GanConfig = {
    ...DEFAULT_GAN_CONFIG, ngf: 8, ndf: 8, blocks: 2, dLayers: 2, dropout: false, lr: 2e-3, iters: ITERS, decayIters: ITERS / 2, seed: 1,
  };
  const model = new CompletionTrainer(cfg, train);
  const t0 = performance.now();
  let firstL1 = Number.NaN;
  let lastL1 = Number.NaN;
  await model.train(train, {
    batchSize: 4,
    onStep: async (iter, l) => {
      if (iter === 10) firstL1 = await l.gL1.item();
      if (iter === ITERS) lastL1 = await l.gL1.item();
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  t.equal(model.iter, ITERS);
  const flair = data.test.modalities.indexOf('flair');
  const r = await evaluateCompletion(model, train, data.test, [flair]);
  const m = r.evaluation.metrics.flair!;
  t.comment(
    `${ITERS} iterations in ${seconds.toFixed(1)} s; flair MAE: completion ${m.completion.mae.toFixed(4)}, mask only ${m.maskOnly.mae.toFixed(4)}, ` +
      `class mean ${m.classMean.mae.toFixed(4)}, class linear ${m.classLinear.mae.toFixed(4)}; PSNR ${m.completion.psnr.toFixed(2)} vs ${m.classMean.psnr.toFixed(2)} dB`,
  );
  t.same(r.evaluation.given, ['t1', 't1c', 't2']);
  t.same(r.evaluation.missing, ['flair']);
  t.ok(lastL1 < firstL1, `training L1 fell (${firstL1.toFixed(3)} -> ${lastL1.toFixed(3)})`);
  t.ok(m.completion.mae < m.classMean.mae, `completion MAE ${m.completion.mae.toFixed(4)} < per-class-mean MAE ${m.classMean.mae.toFixed(4)}`);
  t.ok(m.completion.mae < m.maskOnly.mae, `the given modalities help: ${m.completion.mae.toFixed(4)} < mask only ${m.maskOnly.mae.toFixed(4)}`);
  // The synthesized image is the generator's flair channel for the slice, not a copy of an input.
  const HW = 16 * 16;
  const s0 = data.test.slices[0]!;
  const synth = r.completed.subarray((0 * 4 + flair) * HW, (0 * 4 + flair + 1) * HW);
  t.notSame(Array.from(synth), Array.from(s0.image.subarray(flair * HW, (flair + 1) * HW)), 'not the real flair');
  t.ok(synth.every((v) => v >= -1 && v <= 1), 'in [-1, 1]');
});
