/**
 * Segmentation metrics against hand-computed examples (tiny masks whose Dice, HD95, sensitivity
 * and specificity are worked out in the comments), the exact distance transform against brute
 * force, and the aggregation rules for empty masks.
 */
import t, { type Test } from 'tap';
import {
  boundary, confusion, evaluateSegmentation, hausdorff95, percentile, sliceMetrics, squaredDistanceTransform, stat, summarize,
} from '../src/eval/metrics.js';
import { Rng } from '../src/engine/random.js';

/** Mask from rows of '.' (0) and digits (class id). */
function grid(...rows: string[]): { m: Uint8Array; w: number; h: number } {
  const h = rows.length;
  const w = rows[0]!.length;
  const m = new Uint8Array(w * h);
  rows.forEach((r, y) => [...r].forEach((ch, x) => (m[y * w + x] = ch === '.' ? 0 : Number(ch))));
  return { m, w, h };
}

const close = (t: Test, got: number, want: number, msg: string, tol = 1e-12) =>
  t.ok(Math.abs(got - want) <= tol, `${msg}: got ${got}, want ${want}`);

t.test('two 2x2 squares shifted by one pixel', async (t) => {
  const truth = grid('11..', '11..', '....', '....');
  const pred = grid('.11.', '.11.', '....', '....');
  // TP 2, FP 2, FN 2, TN 10.
  t.same(confusion(pred.m, truth.m, 1), { tp: 2, fp: 2, fn: 2, tn: 10 });
  const [bg, a] = sliceMetrics(pred.m, truth.m, 4, 4, 2);
  close(t, a!.dice, 0.5, 'Dice = 4/8');
  close(t, a!.sensitivity, 0.5, 'sensitivity = 2/4');
  close(t, a!.specificity, 10 / 12, 'specificity = 10/12');
  // Every pixel of a 2x2 square is a boundary pixel; distances both ways are {0, 1, 0, 1}:
  // union sorted [0,0,0,0,1,1,1,1], 95th percentile at 6.65 -> 1.
  close(t, a!.hd95, 1, 'HD95');
  t.equal(a!.present, true);
  // Background: truth 12 px, pred 12 px, overlap 10 -> Dice 20/24.
  close(t, bg!.dice, 20 / 24, 'background Dice');
});

t.test('interpolated percentile: one pixel against two', async (t) => {
  // A 3x1 image: truth {x=0}, pred {x=0, x=2}. All are boundary pixels (image edge).
  // truth -> pred: [0]; pred -> truth: [0, 2]; union [0, 0, 2]; position 0.95*2 = 1.9 -> 0.9*2 = 1.8.
  const truth = Uint8Array.of(1, 0, 0);
  const pred = Uint8Array.of(1, 0, 1);
  close(t, hausdorff95(pred, truth, 3, 1), 1.8, 'HD95');
  close(t, hausdorff95(pred, truth, 3, 1, 100), 2, 'HD (max)');
  close(t, hausdorff95(truth, pred, 3, 1), 1.8, 'symmetric');
  const [, a] = sliceMetrics(pred, truth, 3, 1, 2);
  close(t, a!.dice, 2 / 3, 'Dice = 2/(2+1)');
  close(t, a!.sensitivity, 1, 'sensitivity');
  close(t, a!.specificity, 1 / 2, 'specificity = TN 1 / (TN 1 + FP 1)');
});

t.test('boundary excludes interior pixels; the image edge counts as outside', async (t) => {
  const truth = grid('.....', '.111.', '.111.', '.111.', '.....');
  const full = grid('11111', '11111', '11111', '11111', '11111');
  const bt = boundary(truth.m, 5, 5);
  t.equal(bt.reduce((a, b) => a + b, 0), 8, '3x3 square: 8 boundary pixels');
  t.equal(bt[2 * 5 + 2], 0, 'centre is interior');
  const bf = boundary(full.m, 5, 5);
  t.equal(bf.reduce((a, b) => a + b, 0), 16, 'full image: its 16 edge pixels');
  // truth ring -> nearest edge pixel: 8 x 1. Edge -> ring: 12 x 1 and the 4 corners at sqrt 2.
  // 24 sorted values, 20 ones then 4 x sqrt2; position 0.95*23 = 21.85 lies among the sqrt2 -> sqrt2.
  close(t, hausdorff95(full.m, truth.m, 5, 5), Math.SQRT2, 'HD95 = sqrt 2');
  const [, a] = sliceMetrics(full.m, truth.m, 5, 5, 2);
  close(t, a!.dice, 18 / 34, 'Dice = 18/34');
  close(t, a!.specificity, 0, 'specificity 0/(0+16)');
  close(t, a!.sensitivity, 1, 'sensitivity 1');
});

t.test('far single pixels: distance 5 (3-4-5 triangle)', async (t) => {
  const a = new Uint8Array(25);
  const b = new Uint8Array(25);
  a[0] = 1; // (0, 0)
  b[4 * 5 + 3] = 1; // (3, 4)
  close(t, hausdorff95(a, b, 5, 5), 5, 'HD95');
  const [, m] = sliceMetrics(a, b, 5, 5, 2);
  t.equal(m!.dice, 0);
});

t.test('empty-set cases', async (t) => {
  const empty = new Uint8Array(9);
  const one = new Uint8Array(9);
  one[4] = 1;
  t.equal(hausdorff95(empty, empty, 3, 3), 0, 'both empty -> 0');
  t.ok(Number.isNaN(hausdorff95(one, empty, 3, 3)), 'one empty -> NaN');
  t.ok(Number.isNaN(hausdorff95(empty, one, 3, 3)), 'other empty -> NaN');
  const [, absent] = sliceMetrics(empty, empty, 3, 3, 2);
  t.equal(absent!.present, false);
  t.ok(Number.isNaN(absent!.dice), 'absent: Dice undefined');
  t.equal(absent!.hd95, 0);
  t.ok(Number.isNaN(absent!.sensitivity));
  t.equal(absent!.specificity, 1);
  const [, missed] = sliceMetrics(empty, one, 3, 3, 2); // pred empty, truth not
  t.equal(missed!.dice, 0, 'missed structure: Dice 0');
  t.equal(missed!.sensitivity, 0, 'missed structure: sensitivity 0');
  t.ok(Number.isNaN(missed!.hd95), 'missed structure: HD95 undefined');
  const [, halluc] = sliceMetrics(one, empty, 3, 3, 2); // pred has it, truth not
  t.equal(halluc!.dice, 0, 'false detection: Dice 0');
  t.ok(Number.isNaN(halluc!.sensitivity), 'false detection: sensitivity undefined');
  close(t, halluc!.specificity, 8 / 9, 'false detection: specificity 8/9');
});

t.test('aggregation: means over present slices, undefined HD95 counted', async (t) => {
  // 2x2 slices, classes bg, a (1), b (2).
  const truths = [Uint8Array.of(1, 1, 0, 0), Uint8Array.of(1, 0, 0, 0), Uint8Array.of(0, 0, 0, 0)];
  const preds = [Uint8Array.of(1, 0, 0, 0), Uint8Array.of(0, 0, 0, 0), Uint8Array.of(0, 0, 2, 0)];
  const s = evaluateSegmentation(preds, truths, { width: 2, height: 2, classNames: ['bg', 'a', 'b'] });
  const a = s.classes[1]!;
  const b = s.classes[2]!;
  // a: slice 1 Dice 2/3 (TP 1, FN 1), slice 2 Dice 0 (missed), slice 3 absent.
  t.equal(a.slices, 2);
  close(t, a.dice.mean, 1 / 3, 'a Dice mean');
  close(t, a.dice.std, 1 / 3, 'a Dice std (population)');
  t.equal(a.dice.n, 2);
  close(t, a.sensitivity.mean, 0.25, 'a sensitivity (0.5, 0)');
  // slice 1: truth boundary {(0,0),(1,0)}, pred {(0,0)}: union [0, 1, 0] -> 0.9; slice 2 undefined.
  close(t, a.hd95.mean, 0.9, 'a HD95', 1e-12);
  t.equal(a.hd95.n, 1);
  t.equal(a.hd95Undefined, 1);
  close(t, a.specificity.mean, 1, 'a specificity');
  // b: only slice 3 (a false detection).
  t.equal(b.slices, 1);
  t.equal(b.dice.mean, 0);
  t.equal(b.sensitivity.n, 0);
  t.ok(Number.isNaN(b.sensitivity.mean));
  t.equal(b.hd95.n, 0);
  t.equal(b.hd95Undefined, 1);
  close(t, b.specificity.mean, 0.75, 'b specificity 3/4');
  // Foreground: unweighted mean of class means, undefined ones skipped.
  close(t, s.foreground.dice, 1 / 6, 'fg Dice');
  close(t, s.foreground.hd95, 0.9, 'fg HD95 (b undefined)');
  close(t, s.foreground.sensitivity, 0.25, 'fg sensitivity (b undefined)');
  close(t, s.foreground.specificity, 0.875, 'fg specificity');
  t.equal(s.slices, 3);
  // summarize() on per-slice rows gives the same.
  t.same(summarize(preds.map((p, i) => sliceMetrics(p, truths[i]!, 2, 2, 3)), ['bg', 'a', 'b']), s);
});

t.test('percentile and stat', async (t) => {
  close(t, percentile([3, 1, 2, 4], 50), 2.5, 'median');
  close(t, percentile([10], 95), 10, 'single value');
  t.ok(Number.isNaN(percentile([], 95)));
  t.same(stat([1, NaN, 3]), { mean: 2, std: 1, n: 2 });
});

t.test('distance transform = brute force on random masks (odd sizes)', async (t) => {
  const rng = new Rng(5);
  for (const [w, h, p] of [[7, 11, 0.15], [13, 5, 0.05], [1, 9, 0.3], [16, 16, 0.08], [9, 4, 0.5], [6, 6, 0]] as const) {
    const seeds = new Uint8Array(w * h).map(() => (rng.uniform() < p ? 1 : 0));
    const d = squaredDistanceTransform(seeds, w, h);
    let bad = 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let best = Infinity;
        for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) if (seeds[yy * w + xx]) best = Math.min(best, (x - xx) ** 2 + (y - yy) ** 2);
        if (d[y * w + x] !== best) bad++;
      }
    }
    t.equal(bad, 0, `${w}x${h}, ${seeds.reduce((a, b) => a + b, 0)} seeds`);
  }
});

t.test('HD95 = brute-force percentile of boundary distances on random blobs', async (t) => {
  const rng = new Rng(9);
  const W = 12, H = 9;
  for (let trial = 0; trial < 5; trial++) {
    const blob = () => {
      const cx = rng.uniform() * W, cy = rng.uniform() * H, r = 1 + rng.uniform() * 3;
      return new Uint8Array(W * H).map((_, i) => (Math.hypot((i % W) - cx, Math.floor(i / W) - cy) < r ? 1 : 0));
    };
    const a = blob();
    const b = blob();
    const ba = boundary(a, W, H);
    const bb = boundary(b, W, H);
    const pts = (m: Uint8Array) => [...m].flatMap((v, i) => (v ? [[i % W, Math.floor(i / W)] as const] : []));
    const pa = pts(ba), pb = pts(bb);
    if (pa.length === 0 || pb.length === 0) continue;
    const dists = [
      ...pa.map(([x, y]) => Math.min(...pb.map(([u, v]) => Math.hypot(x - u, y - v)))),
      ...pb.map(([x, y]) => Math.min(...pa.map(([u, v]) => Math.hypot(x - u, y - v)))),
    ].sort((p, q) => p - q);
    const pos = 0.95 * (dists.length - 1);
    const lo = Math.floor(pos);
    const want = dists[lo]! + (dists[Math.min(lo + 1, dists.length - 1)]! - dists[lo]!) * (pos - lo);
    close(t, hausdorff95(a, b, W, H), want, `trial ${trial}`, 1e-9);
  }
});

t.test('size errors', async (t) => {
  t.throws(() => hausdorff95(new Uint8Array(5), new Uint8Array(6), 2, 3), /5 pixels for a 2x3 image/);
  t.throws(() => confusion(new Uint8Array(2), new Uint8Array(3), 1), /prediction has 2 pixels/);
});
