/**
 * Segmentation metrics on 2-D label maps (class ids, row-major [H*W]) and their aggregation over
 * the slices of a test set: per-class Dice, 95th-percentile Hausdorff distance (HD95),
 * sensitivity and specificity, as the AsynDGAN paper reports them.
 *
 * Definitions, for one slice and one class c (P = predicted pixels of class c, T = ground-truth
 * pixels of class c; TP, FP, FN, TN counted over the slice's pixels):
 *  - Dice = 2 TP / (2 TP + FP + FN).
 *  - sensitivity = TP / (TP + FN)  (recall; undefined, NaN, when T is empty).
 *  - specificity = TN / (TN + FP)  (undefined, NaN, when T is the whole slice).
 *  - HD95: the boundary of a mask is its pixels with at least one 4-neighbour outside the mask;
 *    pixels beyond the image edge count as outside, so a mask touching the edge has its edge
 *    pixels on the boundary (scipy/medpy's erosion with border 0). For every boundary pixel of P
 *    the Euclidean distance (in pixels) to the nearest boundary pixel of T, and the same from T to
 *    P; HD95 is the 95th percentile of the union of both sets, interpolated linearly between order
 *    statistics (numpy.percentile's default, as in medpy.metric.hd95). Distances are exact (an
 *    exact Euclidean distance transform, Felzenszwalb & Huttenlocher 2012).
 *
 * Empty-set cases (the reason most published numbers are hard to compare):
 *  - class c in neither T nor P: the slice says nothing about c. Per-slice values are Dice NaN,
 *    HD95 0, sensitivity NaN, specificity 1, and `present` is false; such slices are left out of
 *    EVERY mean for class c (otherwise absent classes would inflate the scores).
 *  - T empty, P not (a false detection): Dice 0 (counted), sensitivity NaN (not counted),
 *    HD95 NaN (not counted, tallied in `hd95Undefined`).
 *  - T not empty, P empty (a missed structure): Dice 0 and sensitivity 0 (both counted),
 *    HD95 NaN (not counted, tallied in `hd95Undefined`).
 * So a class's mean HD95 is over the slices where both masks are non-empty, and a reader should
 * look at `hd95Undefined` next to it: a method that misses a structure entirely is not rewarded
 * with a small HD95, but it is not given an arbitrary penalty either.
 *
 * Aggregation: for each class and metric, mean and standard deviation (population, ddof 0) over
 * the slices where the class is present and the metric is defined, with that number `n`. The
 * foreground summary is the unweighted mean over classes 1..C-1 (class 0 = background) of those
 * per-class means, over the classes that have a defined mean.
 */

/** Pixel counts of one class in one slice. */
export interface Confusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/** Confusion counts of class `cls` (pred and truth are label maps of equal length). */
export function confusion(pred: ArrayLike<number>, truth: ArrayLike<number>, cls: number): Confusion {
  if (pred.length !== truth.length) throw new Error(`confusion: prediction has ${pred.length} pixels, ground truth ${truth.length}`);
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] === cls;
    const t = truth[i] === cls;
    if (p && t) tp++;
    else if (p) fp++;
    else if (t) fn++;
    else tn++;
  }
  return { tp, fp, fn, tn };
}

/** Dice from counts: 2TP / (2TP + FP + FN); NaN when both masks are empty. */
export function diceFromConfusion(c: Confusion): number {
  const den = 2 * c.tp + c.fp + c.fn;
  return den === 0 ? NaN : (2 * c.tp) / den;
}

/** Boolean mask (1 where `labels[i] === cls`). */
export function classMask(labels: ArrayLike<number>, cls: number): Uint8Array {
  const m = new Uint8Array(labels.length);
  for (let i = 0; i < labels.length; i++) m[i] = labels[i] === cls ? 1 : 0;
  return m;
}

/** Boundary of a binary mask [H*W]: mask pixels with a 4-neighbour outside the mask or the image. */
export function boundary(mask: ArrayLike<number>, width: number, height: number): Uint8Array {
  checkSize('boundary', mask.length, width, height);
  const b = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!mask[i]) continue;
      const edge = x === 0 || y === 0 || x === width - 1 || y === height - 1 ||
        !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width];
      if (edge) b[i] = 1;
    }
  }
  return b;
}

/**
 * Exact squared Euclidean distance from every pixel to the nearest pixel with `seeds[i] != 0`
 * (Felzenszwalb & Huttenlocher's separable lower-envelope algorithm, O(H*W)). Infinity
 * everywhere when there is no seed.
 */
export function squaredDistanceTransform(seeds: ArrayLike<number>, width: number, height: number): Float64Array {
  checkSize('squaredDistanceTransform', seeds.length, width, height);
  const out = new Float64Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = seeds[i] ? 0 : Infinity;
  const n = Math.max(width, height);
  const f = new Float64Array(n);
  const d = new Float64Array(n);
  const v = new Int32Array(n);
  const z = new Float64Array(n + 1);
  // Columns, then rows: the 2-D transform is the 1-D transform along x of the one along y.
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) f[y] = out[y * width + x]!;
    dt1d(f, height, d, v, z);
    for (let y = 0; y < height; y++) out[y * width + x] = d[y]!;
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) f[x] = out[y * width + x]!;
    dt1d(f, width, d, v, z);
    for (let x = 0; x < width; x++) out[y * width + x] = d[x]!;
  }
  return out;
}

/** 1-D squared distance transform of sampled function f[0..n) into d (lower envelope of parabolas). */
function dt1d(f: Float64Array, n: number, d: Float64Array, v: Int32Array, z: Float64Array): void {
  // Skip leading infinite samples: parabolas rooted at +inf never belong to the envelope.
  let k = -1;
  for (let q = 0; q < n; q++) {
    if (f[q] === Infinity) continue;
    if (k < 0) {
      k = 0;
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    let s: number;
    for (;;) {
      const p = v[k]!;
      s = (f[q]! + q * q - (f[p]! + p * p)) / (2 * (q - p));
      if (s <= z[k]! && k > 0) k--;
      else break;
    }
    if (s <= z[k]!) {
      // k === 0 and the new parabola dominates the only one: replace it.
      v[0] = q;
      z[0] = -Infinity;
      z[1] = Infinity;
      continue;
    }
    k++;
    v[k] = q;
    z[k] = s;
    z[k + 1] = Infinity;
  }
  if (k < 0) {
    for (let q = 0; q < n; q++) d[q] = Infinity;
    return;
  }
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (z[j + 1]! < q) j++;
    const p = v[j]!;
    d[q] = (q - p) * (q - p) + f[p]!;
  }
}

/** Linear-interpolation percentile (numpy.percentile's default) of `values`, q in [0, 100]. */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/**
 * Symmetric 95th-percentile Hausdorff distance (pixels) between two binary masks [H*W]
 * (see the module comment): 0 when both are empty, NaN when exactly one is empty.
 * `q` changes the percentile (100 gives the classic Hausdorff distance).
 */
export function hausdorff95(a: ArrayLike<number>, b: ArrayLike<number>, width: number, height: number, q = 95): number {
  checkSize('hausdorff95', a.length, width, height);
  checkSize('hausdorff95', b.length, width, height);
  const ba = boundary(a, width, height);
  const bb = boundary(b, width, height);
  const na = count(ba);
  const nb = count(bb);
  if (na === 0 && nb === 0) return 0;
  if (na === 0 || nb === 0) return NaN;
  const da = squaredDistanceTransform(ba, width, height);
  const db = squaredDistanceTransform(bb, width, height);
  const dist = new Float64Array(na + nb);
  let k = 0;
  for (let i = 0; i < ba.length; i++) {
    if (ba[i]) dist[k++] = Math.sqrt(db[i]!);
    if (bb[i]) dist[k++] = Math.sqrt(da[i]!);
  }
  return percentile(dist, q);
}

/** The metrics of one class in one slice (see the module comment for the empty cases). */
export interface ClassSliceMetrics {
  /** Class c occurs in the ground truth or the prediction (else the slice is left out for c). */
  present: boolean;
  dice: number;
  hd95: number;
  sensitivity: number;
  specificity: number;
  truthPixels: number;
  predPixels: number;
}

/** Metrics of every class 0..numClasses-1 for one predicted label map against its ground truth. */
export function sliceMetrics(pred: ArrayLike<number>, truth: ArrayLike<number>, width: number, height: number, numClasses: number): ClassSliceMetrics[] {
  checkSize('sliceMetrics', pred.length, width, height);
  checkSize('sliceMetrics', truth.length, width, height);
  const out: ClassSliceMetrics[] = [];
  for (let c = 0; c < numClasses; c++) {
    const k = confusion(pred, truth, c);
    const truthPixels = k.tp + k.fn;
    const predPixels = k.tp + k.fp;
    const present = truthPixels > 0 || predPixels > 0;
    out.push({
      present,
      dice: diceFromConfusion(k),
      hd95: present ? hausdorff95(classMask(pred, c), classMask(truth, c), width, height) : 0,
      sensitivity: truthPixels > 0 ? k.tp / truthPixels : NaN,
      specificity: k.tn + k.fp > 0 ? k.tn / (k.tn + k.fp) : NaN,
      truthPixels,
      predPixels,
    });
  }
  return out;
}

/** Mean and population standard deviation of the defined values, and how many there were. */
export interface Stat {
  mean: number;
  std: number;
  n: number;
}

/** Aggregated metrics of one class over the test slices. */
export interface ClassSummary {
  name: string;
  /** Slices in which the class occurs in the ground truth or the prediction. */
  slices: number;
  dice: Stat;
  hd95: Stat;
  sensitivity: Stat;
  specificity: Stat;
  /** Present slices where HD95 is undefined because one of the two masks is empty. */
  hd95Undefined: number;
}

/** Whole-test-set summary: per class, and the unweighted mean over the foreground classes. */
export interface SegmentationSummary {
  slices: number;
  classes: ClassSummary[];
  /** Mean over classes 1..C-1 of the per-class means (classes with no defined value skipped). */
  foreground: { dice: number; hd95: number; sensitivity: number; specificity: number };
}

/** Mean / population std of the finite values. */
export function stat(values: readonly number[]): Stat {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { mean: NaN, std: NaN, n: 0 };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
  return { mean, std: Math.sqrt(variance), n: v.length };
}

/** Aggregates per-slice metrics (one `sliceMetrics` result per slice). */
export function summarize(perSlice: readonly ClassSliceMetrics[][], classNames: readonly string[]): SegmentationSummary {
  const C = classNames.length;
  const classes: ClassSummary[] = [];
  for (let c = 0; c < C; c++) {
    const rows = perSlice.map((s, i) => {
      const m = s[c];
      if (!m) throw new Error(`summarize: slice ${i} has ${s.length} classes, expected ${C}`);
      return m;
    }).filter((m) => m.present);
    classes.push({
      name: classNames[c]!,
      slices: rows.length,
      dice: stat(rows.map((m) => m.dice)),
      hd95: stat(rows.map((m) => m.hd95)),
      sensitivity: stat(rows.map((m) => m.sensitivity)),
      specificity: stat(rows.map((m) => m.specificity)),
      hd95Undefined: rows.filter((m) => Number.isNaN(m.hd95)).length,
    });
  }
  const fg = classes.slice(1);
  const macro = (pick: (s: ClassSummary) => Stat) => stat(fg.map((s) => pick(s).mean)).mean;
  return {
    slices: perSlice.length,
    classes,
    foreground: {
      dice: macro((s) => s.dice),
      hd95: macro((s) => s.hd95),
      sensitivity: macro((s) => s.sensitivity),
      specificity: macro((s) => s.specificity),
    },
  };
}

/** Predicted label maps against ground-truth label maps (same order), all width x height. */
export function evaluateSegmentation(
  preds: readonly ArrayLike<number>[],
  truths: readonly ArrayLike<number>[],
  o: { width: number; height: number; classNames: readonly string[] },
): SegmentationSummary {
  if (preds.length !== truths.length) throw new Error(`evaluateSegmentation: ${preds.length} predictions for ${truths.length} ground truths`);
  const per = preds.map((p, i) => sliceMetrics(p, truths[i]!, o.width, o.height, o.classNames.length));
  return summarize(per, o.classNames);
}

function count(m: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i]!;
  return n;
}

function checkSize(op: string, length: number, width: number, height: number): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || length !== width * height) {
    throw new Error(`${op}: ${length} pixels for a ${width}x${height} image`);
  }
}
