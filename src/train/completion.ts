/**
 * Missing-modality completion at one center: a generator conditioned on the mask AND on the
 * modalities a center has, producing all M modalities, so that a center with e.g. t1, t1c and t2
 * can synthesize the flair it never acquired.
 *
 * Input of the generator, [N, C + 2M, H, W]:
 *   channels 0..C-1        one-hot mask (as in the mask-only generator),
 *   channels C..C+M-1      the M modalities, each zeroed when not given,
 *   channels C+M..C+2M-1   one availability plane per modality: 1 where that modality is given.
 *
 * Training is centralized pix2pix (Pix2pixTrainer: the same discriminator step and generator
 * gradient as everywhere, gan.ts) with the condition above in place of the mask; each sample
 * hides a random non-empty subset of its modalities (seeded), so one network serves every
 * pattern of missing modalities, including "only the mask" (which is then the mask-only baseline).
 */
import { engine, hashSeed, noGrad, Rng, tensor, tidy } from '../engine/index.js';
import { conditionTensor, imageTensor, type Dataset, type Slice } from '../data/index.js';
import { Pix2pixTrainer, type GanConfig, type StepLosses } from './pix2pix.js';

/** Input channels of the completion generator: C mask classes + M modalities + M availability planes. */
export function completionChannels(numClasses: number, modalities: number): number {
  return numClasses + 2 * modalities;
}

/**
 * The conditioning tensor [N, C + 2M, H, W] (layout in the module comment). `available` is one
 * boolean per modality for all slices, or one such list per slice.
 */
export function completionCondition(
  slices: readonly Slice[],
  numClasses: number,
  available: readonly boolean[] | readonly (readonly boolean[])[],
): Float32Array {
  if (slices.length === 0) return new Float32Array(0);
  const M = slices[0]!.modalities.length;
  const HW = slices[0]!.mask.length;
  const perSlice = (i: number): readonly boolean[] => {
    const a = Array.isArray(available[0]) ? (available as readonly (readonly boolean[])[])[i] : (available as readonly boolean[]);
    if (!a || a.length !== M) throw new Error(`completionCondition: availability of slice ${i} must list ${M} modalities`);
    return a;
  };
  if (Array.isArray(available[0]) && available.length !== slices.length) {
    throw new Error(`completionCondition: ${available.length} availability lists for ${slices.length} slices`);
  }
  const K = completionChannels(numClasses, M);
  const out = new Float32Array(slices.length * K * HW);
  const masks = conditionTensor(slices, numClasses);
  slices.forEach((s, n) => {
    if (s.modalities.length !== M || s.image.length !== M * HW) throw new Error(`completionCondition: slice '${s.key}' has a different layout`);
    const base = n * K * HW;
    out.set(masks.subarray(n * numClasses * HW, (n + 1) * numClasses * HW), base);
    const a = perSlice(n);
    for (let m = 0; m < M; m++) {
      if (!a[m]) continue;
      out.set(s.image.subarray(m * HW, (m + 1) * HW), base + (numClasses + m) * HW);
      out.fill(1, base + (numClasses + M + m) * HW, base + (numClasses + M + m + 1) * HW);
    }
  });
  return out;
}

/** Availability with `missing` modalities hidden and every other one given. */
export function availabilityWithout(modalities: number, missing: readonly number[]): boolean[] {
  return Array.from({ length: modalities }, (_, m) => !missing.includes(m));
}

/**
 * A random availability pattern with at least one modality hidden: each modality is hidden with
 * probability `hide` (default 1/2: uniform over the 2^M - 1 patterns that hide at least one),
 * redrawn while none is.
 */
export function randomAvailability(rng: Rng, modalities: number, hide = 0.5): boolean[] {
  if (!(hide > 0 && hide <= 1)) throw new Error(`randomAvailability: hide probability ${hide} not in (0, 1]`);
  for (;;) {
    const a = Array.from({ length: modalities }, () => !rng.bool(hide));
    if (a.some((x) => !x)) return a;
  }
}

export interface CompletionTrainOptions {
  /** Samples per iteration. */
  batchSize: number;
  /** Called after every iteration with the losses (GPU scalars, disposed after the call). */
  onStep?: (iter: number, losses: StepLosses) => void | Promise<void>;
  /**
   * Wait for the GPU every this many iterations (default 4). Recording runs ahead of the GPU
   * otherwise, and a few hundred queued iterations crash Dawn on lavapipe (segfault).
   */
  syncEvery?: number;
}

/** Completion generator + discriminator, trained centrally (Pix2pixTrainer) on random availabilities. */
export class CompletionTrainer {
  readonly trainer: Pix2pixTrainer;
  readonly numClasses: number;
  readonly modalities: readonly string[];
  readonly height: number;
  readonly width: number;
  /** Probability that a modality is hidden from a training sample (at least one always is). */
  readonly hideProbability: number;
  private readonly rng: Rng;

  /** `header`: the data set's classes, modalities and slice size (e.g. the training Dataset). */
  constructor(
    readonly config: GanConfig,
    header: Pick<Dataset, 'numClasses' | 'modalities' | 'height' | 'width'>,
    options: { hideProbability?: number } = {},
  ) {
    this.hideProbability = options.hideProbability ?? 0.5;
    this.numClasses = header.numClasses;
    this.modalities = [...header.modalities];
    this.height = header.height;
    this.width = header.width;
    this.trainer = new Pix2pixTrainer(config, completionChannels(this.numClasses, this.modalities.length), this.modalities.length);
    this.rng = new Rng(hashSeed('completion', config.seed));
  }

  get generator() {
    return this.trainer.generator;
  }

  get iter(): number {
    return this.trainer.iter;
  }

  /** One iteration on these slices, each with its own availability. Losses are GPU scalars: dispose them. */
  step(slices: readonly Slice[], available: readonly (readonly boolean[])[]): StepLosses {
    const [H, W] = [this.height, this.width];
    const N = slices.length;
    const M = this.modalities.length;
    return tidy(() => {
      const cond = tensor(completionCondition(slices, this.numClasses, available), [N, completionChannels(this.numClasses, M), H, W]);
      const real = tensor(imageTensor(slices), [N, M, H, W]);
      return this.trainer.step(cond, real);
    });
  }

  /** Trains until `config.iters`: random batches of `train`, each sample hiding a random non-empty subset. */
  async train(train: Dataset, options: CompletionTrainOptions): Promise<void> {
    const M = this.modalities.length;
    if (train.modalities.join(',') !== this.modalities.join(',')) {
      throw new Error(`completion: the data has [${train.modalities.join(', ')}], the generator [${this.modalities.join(', ')}]`);
    }
    while (this.trainer.iter < this.config.iters) {
      const batch = Array.from({ length: options.batchSize }, () => train.slices[this.rng.int(train.slices.length)]!);
      const available = batch.map(() => randomAvailability(this.rng, M, this.hideProbability));
      const losses = this.step(batch, available);
      try {
        await options.onStep?.(this.trainer.iter, losses);
      } finally {
        for (const t of Object.values(losses)) t.dispose();
      }
      if (this.trainer.iter % (options.syncEvery ?? 4) === 0) await engine().sync();
    }
  }

  /**
   * All M modalities synthesized from the given ones, [N*M*H*W] (the generator runs in evaluation
   * mode: running batch-norm statistics, no dropout; its mode is restored afterwards).
   */
  async complete(slices: readonly Slice[], available: readonly boolean[] | readonly (readonly boolean[])[], chunk = 16): Promise<Float32Array> {
    const M = this.modalities.length;
    const [H, W] = [this.height, this.width];
    const HW = H * W;
    const out = new Float32Array(slices.length * M * HW);
    const g = this.trainer.generator;
    const wasTraining = g.training;
    g.eval();
    try {
      for (let i = 0; i < slices.length; i += chunk) {
        const part = slices.slice(i, i + chunk);
        const avail = Array.isArray(available[0]) ? (available as readonly (readonly boolean[])[]).slice(i, i + chunk) : available;
        const cond = completionCondition(part, this.numClasses, avail as readonly boolean[]);
        const fake = noGrad(() => tidy(() => g.forward(tensor(cond, [part.length, completionChannels(this.numClasses, M), H, W]))));
        out.set(await fake.read(), i * M * HW);
        fake.dispose();
      }
    } finally {
      g.train(wasTraining);
    }
    return out;
  }
}

// ---- baselines and metrics -----------------------------------------------------------------------

/** Mean intensity of modality `channel` per class over every pixel of `ds` (NaN for absent classes). */
export function classMeanIntensities(ds: Dataset, channel: number): number[] {
  const sum = new Float64Array(ds.numClasses);
  const count = new Float64Array(ds.numClasses);
  const HW = ds.height * ds.width;
  for (const s of ds.slices) {
    const img = s.image.subarray(channel * HW, (channel + 1) * HW);
    for (let i = 0; i < HW; i++) {
      sum[s.mask[i]!]! += img[i]!;
      count[s.mask[i]!]!++;
    }
  }
  return [...sum].map((v, c) => (count[c]! > 0 ? v / count[c]! : Number.NaN));
}

/** The per-class-mean baseline image of one slice: every pixel gets its class's mean ([H*W]). */
export function classMeanImage(mask: Uint8Array, means: readonly number[]): Float32Array {
  const out = new Float32Array(mask.length);
  for (let i = 0; i < mask.length; i++) {
    const v = means[mask[i]!]!;
    out[i] = Number.isNaN(v) ? -1 : v;
  }
  return out;
}

/**
 * Per-class linear regression baseline: for each class c, target ~ w_c0 + sum_k w_ck * given_k
 * pixelwise, least squares over every pixel of `ds` (tiny ridge 1e-6 for classes whose features
 * are degenerate). Returns one weight vector [1 + given.length] per class (zeros for absent classes).
 */
export function fitClassLinear(ds: Dataset, given: readonly number[], target: number): number[][] {
  const P = 1 + given.length;
  const HW = ds.height * ds.width;
  const A = Array.from({ length: ds.numClasses }, () => new Float64Array(P * P));
  const b = Array.from({ length: ds.numClasses }, () => new Float64Array(P));
  const f = new Float64Array(P);
  for (const s of ds.slices) {
    for (let i = 0; i < HW; i++) {
      const c = s.mask[i]!;
      f[0] = 1;
      given.forEach((g, k) => (f[k + 1] = s.image[g * HW + i]!));
      const y = s.image[target * HW + i]!;
      const Ac = A[c]!;
      const bc = b[c]!;
      for (let p = 0; p < P; p++) {
        bc[p]! += f[p]! * y;
        for (let q = 0; q < P; q++) Ac[p * P + q]! += f[p]! * f[q]!;
      }
    }
  }
  return A.map((Ac, c) => (Ac[0] === 0 ? new Array<number>(P).fill(0) : solveSymmetric(Ac, b[c]!, P)));
}

/** Solves (A + 1e-6 I) x = b by Gaussian elimination with partial pivoting (A is P x P, row-major). */
function solveSymmetric(A: Float64Array, b: Float64Array, P: number): number[] {
  const m = Array.from({ length: P }, (_, i) => [...A.subarray(i * P, (i + 1) * P), b[i]!]);
  for (let i = 0; i < P; i++) m[i]![i]! += 1e-6;
  for (let i = 0; i < P; i++) {
    let piv = i;
    for (let r = i + 1; r < P; r++) if (Math.abs(m[r]![i]!) > Math.abs(m[piv]![i]!)) piv = r;
    [m[i], m[piv]] = [m[piv]!, m[i]!];
    for (let r = 0; r < P; r++) {
      if (r === i) continue;
      const k = m[r]![i]! / m[i]![i]!;
      for (let q = i; q <= P; q++) m[r]![q]! -= k * m[i]![q]!;
    }
  }
  return m.map((row, i) => row[P]! / row[i]!);
}

/** The per-class linear baseline image of one slice ([H*W], clamped to [-1, 1]). */
export function classLinearImage(slice: Slice, given: readonly number[], weights: readonly (readonly number[])[]): Float32Array {
  const HW = slice.mask.length;
  const out = new Float32Array(HW);
  for (let i = 0; i < HW; i++) {
    const w = weights[slice.mask[i]!]!;
    let v = w[0]!;
    given.forEach((g, k) => (v += w[k + 1]! * slice.image[g * HW + i]!));
    out[i] = Math.max(-1, Math.min(1, v));
  }
  return out;
}

/** Image-quality numbers of a prediction against the real image (intensities in [-1, 1]). */
export interface ImageMetrics {
  /** Mean absolute error over every pixel. */
  mae: number;
  /** Mean absolute error over pixels whose class is not 0 (background). */
  maeForeground: number;
  /** 10 log10(2^2 / MSE): PSNR for the data range [-1, 1], over every pixel pooled. */
  psnr: number;
}

/** Accumulates absolute and squared errors over many slices. */
export class ErrorAccumulator {
  private abs = 0;
  private sq = 0;
  private n = 0;
  private absFg = 0;
  private nFg = 0;

  add(pred: ArrayLike<number>, real: ArrayLike<number>, mask: ArrayLike<number>): void {
    if (pred.length !== real.length || mask.length !== real.length) throw new Error('ErrorAccumulator: sizes differ');
    for (let i = 0; i < real.length; i++) {
      const d = pred[i]! - real[i]!;
      this.abs += Math.abs(d);
      this.sq += d * d;
      this.n++;
      if (mask[i] !== 0) {
        this.absFg += Math.abs(d);
        this.nFg++;
      }
    }
  }

  result(): ImageMetrics {
    const mse = this.sq / Math.max(this.n, 1);
    return {
      mae: this.abs / Math.max(this.n, 1),
      maeForeground: this.absFg / Math.max(this.nFg, 1),
      psnr: mse > 0 ? 10 * Math.log10(4 / mse) : Number.POSITIVE_INFINITY,
    };
  }
}

/** Per missing modality: the completion model and the baselines, measured on the same slices. */
export interface CompletionEvaluation {
  /** Modalities hidden from the generator and scored. */
  missing: string[];
  /** Modalities given to the generator. */
  given: string[];
  slices: number;
  metrics: Record<string, {
    /** The completion generator given the other modalities. */
    completion: ImageMetrics;
    /** The same generator given only the mask (every modality hidden). */
    maskOnly: ImageMetrics;
    /** Each pixel = mean intensity of its class in the training data. */
    classMean: ImageMetrics;
    /**
     * Per-class linear regression on the given modalities' pixel values, fit on the training
     * data (no spatial context, not a GAN): a simple reference for how much the given modalities tell.
     */
    classLinear: ImageMetrics;
  }>;
}

export interface CompletionResult {
  evaluation: CompletionEvaluation;
  /** [N*M*H*W] generator output given the non-missing modalities. */
  completed: Float32Array;
  /** [N*M*H*W] generator output given only the mask. */
  maskOnly: Float32Array;
  /** Per missing modality (in `missing` order), the class-mean baseline: [N*H*W]. */
  classMean: Float32Array[];
  /** Per missing modality, the per-class linear baseline: [N*H*W]. */
  classLinear: Float32Array[];
}

/**
 * Synthesizes the `missing` modalities of every `test` slice from the others, and scores them
 * against the real ones together with two baselines (mask-only generator output, per-class mean
 * intensity of `train`).
 */
export async function evaluateCompletion(
  model: CompletionTrainer,
  train: Dataset,
  test: Dataset,
  missing: readonly number[],
): Promise<CompletionResult> {
  const M = model.modalities.length;
  if (missing.length === 0 || missing.some((m) => !Number.isInteger(m) || m < 0 || m >= M) || new Set(missing).size !== missing.length) {
    throw new Error(`evaluateCompletion: missing channels [${missing.join(', ')}] must be distinct, in 0..${M - 1}`);
  }
  const given = [...Array(M).keys()].filter((m) => !missing.includes(m));
  const HW = test.height * test.width;
  const completed = await model.complete(test.slices, availabilityWithout(M, missing));
  const maskOnly = await model.complete(test.slices, new Array<boolean>(M).fill(false));
  const metrics: CompletionEvaluation['metrics'] = {};
  const classMean: Float32Array[] = [];
  const classLinear: Float32Array[] = [];
  for (const m of missing) {
    const means = classMeanIntensities(train, m);
    const linear = fitClassLinear(train, given, m);
    const acc = {
      completion: new ErrorAccumulator(), maskOnly: new ErrorAccumulator(), classMean: new ErrorAccumulator(), classLinear: new ErrorAccumulator(),
    };
    const baseline = new Float32Array(test.slices.length * HW);
    const lin = new Float32Array(test.slices.length * HW);
    test.slices.forEach((s, n) => {
      const real = s.image.subarray(m * HW, (m + 1) * HW);
      const at = (n * M + m) * HW;
      acc.completion.add(completed.subarray(at, at + HW), real, s.mask);
      acc.maskOnly.add(maskOnly.subarray(at, at + HW), real, s.mask);
      const cm = classMeanImage(s.mask, means);
      baseline.set(cm, n * HW);
      acc.classMean.add(cm, real, s.mask);
      const cl = classLinearImage(s, given, linear);
      lin.set(cl, n * HW);
      acc.classLinear.add(cl, real, s.mask);
    });
    classMean.push(baseline);
    classLinear.push(lin);
    metrics[model.modalities[m]!] = {
      completion: acc.completion.result(),
      maskOnly: acc.maskOnly.result(),
      classMean: acc.classMean.result(),
      classLinear: acc.classLinear.result(),
    };
  }
  return {
    evaluation: {
      missing: missing.map((m) => model.modalities[m]!),
      given: given.map((m) => model.modalities[m]!),
      slices: test.slices.length,
      metrics,
    },
    completed,
    maskOnly,
    classMean,
    classLinear,
  };
}
