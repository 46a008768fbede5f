/**
 * Missing-modality completion at one center: a center with e.g. t1, t1c and t2 synthesizes the
 * flair it never acquired, with one network for every pattern of missing modalities.
 *
 * The model is a residual over a per-class linear regression. `ClassLinearModel` fits, on the
 * training data, every missing modality as a per-class affine function of the given ones (pixel by
 * pixel; with nothing given it is the per-class mean). The generator sees
 *
 *   channels 0..C-1        one-hot mask,
 *   channels C..C+M-1      the modalities: the given ones as acquired, the missing ones filled with
 *                          the linear estimate,
 *   channels C+M..C+2M-1   one availability plane per modality (1 where that modality is given),
 *
 * and its output is added, on the missing channels only, to the linear estimate; the given
 * channels are copied from the input. Its last convolution starts at zero, so training starts from
 * the linear baseline exactly and L1 can only move it where the training data says it helps
 * (spatial context: denoising the given modalities, partial volume at edges, tissues that share a
 * label). `residual: false` gives the plain variant (missing channels zero in, network output as
 * the prediction) for comparison.
 *
 * Training: pix2pix loss (BCE GAN term of a PatchGAN on condition + completed image, + lambda L1),
 * where the completed image equals the real one on the given channels, so L1 and the gradient act
 * on the missing channels only. Each sample hides a random non-empty subset of its modalities.
 */
import {
  Adam, add, backward, engine, hashSeed, mul, noGrad, Rng, scale, tensor, tidy, zeros_,
} from '../engine/index.js';
import { conditionTensor, imageTensor, type Dataset, type Slice } from '../data/index.js';
import type { PatchDiscriminator, ResnetGenerator } from '../models/index.js';
import { CompletionRefiner } from './completion-net.js';
import { discriminatorStep, generatorGradient } from './gan.js';
import { learningRateAt, makeDiscriminator, makeGenerator, type GanConfig, type StepLosses } from './pix2pix.js';

/** Input channels of the completion generator: C mask classes + M modalities + M availability planes. */
export function completionChannels(numClasses: number, modalities: number): number {
  return numClasses + 2 * modalities;
}

// ---- the per-class linear model ---------------------------------------------------------------

/**
 * Per-class linear regression between modalities, fitted once on a data set: for every class c,
 * the moments sum f f^T of f = [1, x_0, ..., x_{M-1}] over that class's pixels. Any regression of
 * one modality on any subset of the others is then a small solve (cached per subset).
 */
export class ClassLinearModel {
  private readonly cache = new Map<string, number[][]>();

  /** `moments[c]`: (M+1) x (M+1) row-major. */
  constructor(readonly numClasses: number, readonly modalities: number, readonly moments: readonly Float64Array[]) {
    if (moments.length !== numClasses || moments.some((m) => m.length !== (modalities + 1) ** 2)) {
      throw new Error(`ClassLinearModel: need ${numClasses} moment matrices of ${(modalities + 1) ** 2} values`);
    }
  }

  /** Moments over every pixel of `ds`. */
  static fit(ds: Pick<Dataset, 'numClasses' | 'modalities' | 'height' | 'width' | 'slices'>): ClassLinearModel {
    const M = ds.modalities.length;
    const P = M + 1;
    const HW = ds.height * ds.width;
    const moments = Array.from({ length: ds.numClasses }, () => new Float64Array(P * P));
    const f = new Float64Array(P);
    for (const s of ds.slices) {
      for (let i = 0; i < HW; i++) {
        const A = moments[s.mask[i]!];
        if (!A) throw new Error(`ClassLinearModel: slice '${s.key}' has label ${s.mask[i]} (only ${ds.numClasses} classes)`);
        f[0] = 1;
        for (let m = 0; m < M; m++) f[m + 1] = s.image[m * HW + i]!;
        for (let p = 0; p < P; p++) for (let q = 0; q < P; q++) A[p * P + q]! += f[p]! * f[q]!;
      }
    }
    return new ClassLinearModel(ds.numClasses, M, moments);
  }

  /**
   * Least-squares weights of `target` on `given`, one vector [w_0 (intercept), w_given...] per class
   * (tiny ridge 1e-6 for degenerate classes; zeros for classes with no pixels).
   */
  weights(given: readonly number[], target: number): number[][] {
    const key = `${given.join(',')}>${target}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const P = this.modalities + 1;
    const idx = [0, ...given.map((g) => g + 1)];
    const w = this.moments.map((A) => {
      if (A[0] === 0) return new Array<number>(idx.length).fill(0);
      const sub = new Float64Array(idx.length * idx.length);
      idx.forEach((p, i) => idx.forEach((q, j) => (sub[i * idx.length + j] = A[p * P + q]!)));
      return solveRidge(sub, Float64Array.from(idx, (p) => A[p * P + target + 1]!), idx.length);
    });
    this.cache.set(key, w);
    return w;
  }

  /**
   * The slice's M modalities [M*H*W]: given ones copied, each missing one predicted from the given
   * ones of the same pixel (clamped to [-1, 1]).
   */
  predict(slice: Slice, available: readonly boolean[]): Float32Array {
    const M = this.modalities;
    const HW = slice.mask.length;
    if (available.length !== M) throw new Error(`ClassLinearModel: availability must list ${M} modalities`);
    const out = new Float32Array(M * HW);
    const given = [...Array(M).keys()].filter((m) => available[m]);
    for (const g of given) out.set(slice.image.subarray(g * HW, (g + 1) * HW), g * HW);
    for (let m = 0; m < M; m++) {
      if (available[m]) continue;
      const w = this.weights(given, m);
      for (let i = 0; i < HW; i++) {
        const wc = w[slice.mask[i]!]!;
        let v = wc[0]!;
        for (let k = 0; k < given.length; k++) v += wc[k + 1]! * slice.image[given[k]! * HW + i]!;
        out[m * HW + i] = Math.max(-1, Math.min(1, v));
      }
    }
    return out;
  }

  toJSON(): { numClasses: number; modalities: number; moments: number[][] } {
    return { numClasses: this.numClasses, modalities: this.modalities, moments: this.moments.map((m) => [...m]) };
  }

  static fromJSON(j: { numClasses: number; modalities: number; moments: number[][] }): ClassLinearModel {
    return new ClassLinearModel(j.numClasses, j.modalities, j.moments.map((m) => Float64Array.from(m)));
  }
}

/** Solves (A + 1e-6 I) x = b by Gaussian elimination with partial pivoting (A is P x P, row-major). */
function solveRidge(A: Float64Array, b: Float64Array, P: number): number[] {
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

// ---- the conditioning input -------------------------------------------------------------------

function availabilityOf(available: readonly boolean[] | readonly (readonly boolean[])[], n: number, M: number, count: number): readonly boolean[] {
  const perSlice = Array.isArray(available[0]);
  if (perSlice && available.length !== count) throw new Error(`completion: ${available.length} availability lists for ${count} slices`);
  const a = perSlice ? (available as readonly (readonly boolean[])[])[n] : (available as readonly boolean[]);
  if (!a || a.length !== M) throw new Error(`completion: availability of slice ${n} must list ${M} modalities`);
  return a;
}

/**
 * The conditioning tensor [N, C + 2M, H, W] (layout in the module comment). `available` is one
 * boolean per modality for all slices, or one list per slice. `filled` [N*M*H*W] supplies the
 * values of the missing channels (e.g. `ClassLinearModel.predict`); without it they are zero.
 */
export function completionCondition(
  slices: readonly Slice[],
  numClasses: number,
  available: readonly boolean[] | readonly (readonly boolean[])[],
  filled?: Float32Array,
): Float32Array {
  if (slices.length === 0) return new Float32Array(0);
  const M = slices[0]!.modalities.length;
  const HW = slices[0]!.mask.length;
  if (filled && filled.length !== slices.length * M * HW) throw new Error(`completionCondition: filled has ${filled.length} values, want ${slices.length * M * HW}`);
  const K = completionChannels(numClasses, M);
  const out = new Float32Array(slices.length * K * HW);
  const masks = conditionTensor(slices, numClasses);
  slices.forEach((s, n) => {
    if (s.modalities.length !== M || s.image.length !== M * HW) throw new Error(`completionCondition: slice '${s.key}' has a different layout`);
    const base = n * K * HW;
    out.set(masks.subarray(n * numClasses * HW, (n + 1) * numClasses * HW), base);
    const a = availabilityOf(available, n, M, slices.length);
    for (let m = 0; m < M; m++) {
      const at = base + (numClasses + m) * HW;
      if (a[m]) {
        out.set(s.image.subarray(m * HW, (m + 1) * HW), at);
        out.fill(1, base + (numClasses + M + m) * HW, base + (numClasses + M + m + 1) * HW);
      } else if (filled) {
        out.set(filled.subarray((n * M + m) * HW, (n * M + m + 1) * HW), at);
      }
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

// ---- the trainer ------------------------------------------------------------------------------

export interface CompletionTrainOptions {
  /** Samples per iteration. */
  batchSize: number;
  /** Called after every iteration with the losses (GPU scalars, disposed after the call). */
  onStep?: (iter: number, losses: StepLosses) => void | Promise<void>;
  /** Checked before every iteration: true ends training early (e.g. Ctrl-C, then save). */
  shouldStop?: () => boolean;
  /**
   * Wait for the GPU every this many iterations (default 4). Recording runs ahead of the GPU
   * otherwise, and a few hundred queued iterations crash Dawn on lavapipe (segfault).
   */
  syncEvery?: number;
}

/**
 * The network settings `asyndgan complete` uses over DEFAULT_GAN_CONFIG (a small refiner, no
 * dropout, a high learning rate for short runs); tools/completion-table.ts trains with the same.
 */
export const COMPLETION_GAN_DEFAULTS = { ngf: 16, ndf: 12, blocks: 2, dropout: false, lr: 3e-3 } as const;

export interface CompletionOptions {
  /** Probability that a modality is hidden from a training sample (default 0.5; at least one always is). */
  hideProbability?: number;
  /**
   * The availability pattern the run is for (e.g. everything but flair) and the share of training
   * samples that use it (default: none; every sample draws a random pattern). The rest still
   * draw random patterns, so the model serves every other pattern too.
   */
  focus?: { available: readonly boolean[]; probability: number };
  /** Residual over the per-class linear estimate (default true); false: the network alone. */
  residual?: boolean;
  /** Generator network (default 'refiner'). */
  generator?: CompletionGeneratorKind;
  /** The linear model (default: fitted on the data given to the constructor). */
  linear?: ClassLinearModel;
}

/** Which generator network: the default refiner (completion-net.ts) or the pix2pix ResnetGenerator. */
export type CompletionGeneratorKind = 'refiner' | 'resnet';

/** Completion generator + discriminator, trained centrally on random availabilities. */
export class CompletionTrainer {
  readonly generator: CompletionRefiner | ResnetGenerator;
  readonly discriminator: PatchDiscriminator;
  readonly optimizerG: Adam;
  readonly optimizerD: Adam;
  /** Iterations done. */
  iter = 0;
  readonly numClasses: number;
  readonly modalities: readonly string[];
  readonly height: number;
  readonly width: number;
  readonly hideProbability: number;
  readonly residual: boolean;
  readonly generatorKind: CompletionGeneratorKind;
  readonly linear: ClassLinearModel;
  readonly focus: { available: readonly boolean[]; probability: number } | undefined;

  /**
   * `data`: the training Dataset (its header sizes the networks; its pixels fit the linear model).
   * The refiner takes `config.ngf` filters and `config.blocks` hidden layers; the discriminator is
   * the PatchGAN of `config` on condition + completed image.
   */
  constructor(readonly config: GanConfig, data: Dataset, options: CompletionOptions = {}) {
    this.hideProbability = options.hideProbability ?? 0.5;
    this.residual = options.residual ?? true;
    this.generatorKind = options.generator ?? 'refiner';
    this.numClasses = data.numClasses;
    this.modalities = [...data.modalities];
    this.height = data.height;
    this.width = data.width;
    this.linear = options.linear ?? ClassLinearModel.fit(data);
    this.focus = options.focus;
    const M = this.modalities.length;
    if (this.focus) {
      const { available, probability } = this.focus;
      if (available.length !== M || available.every(Boolean) || !available.some(Boolean)) {
        throw new Error(`completion: the focus pattern must list ${M} modalities, some given and some missing`);
      }
      if (!(probability >= 0 && probability <= 1)) throw new Error(`completion: focus probability ${probability} not in [0, 1]`);
    }
    const K = completionChannels(this.numClasses, M);
    if (this.generatorKind === 'refiner') {
      this.generator = new CompletionRefiner(K, M, { filters: config.ngf, layers: config.blocks, seed: config.seed });
    } else {
      this.generator = makeGenerator(config, K, M);
      if (this.residual) {
        // Its last convolution (before tanh) starts at zero: the initial model IS the linear baseline.
        for (const [name, t] of this.generator.namedParameters().slice(-2)) {
          if (!/\.(weight|bias)$/.test(name) || t.shape[0] !== M) throw new Error(`completion: unexpected last generator parameter ${name}`);
          zeros_(t);
        }
      }
    }
    this.discriminator = makeDiscriminator(config, K + M, config.seed + 1);
    const adam = { lr: config.lr, betas: [config.beta1, 0.999] as [number, number] };
    this.optimizerG = new Adam(this.generator.namedParameters().map(([name, tensor]) => ({ name, tensor })), adam);
    this.optimizerD = new Adam(this.discriminator.namedParameters().map(([name, tensor]) => ({ name, tensor })), adam);
  }

  /** [N*M*H*W] what the network's output is added to: given channels real, missing ones linear (or 0). */
  private baseOf(slices: readonly Slice[], available: readonly boolean[] | readonly (readonly boolean[])[]): Float32Array {
    const M = this.modalities.length;
    const HW = this.height * this.width;
    const out = new Float32Array(slices.length * M * HW);
    slices.forEach((s, n) => {
      const a = availabilityOf(available, n, M, slices.length);
      if (this.residual) out.set(this.linear.predict(s, a), n * M * HW);
      else for (let m = 0; m < M; m++) if (a[m]) out.set(s.image.subarray(m * HW, (m + 1) * HW), (n * M + m) * HW);
    });
    return out;
  }

  /** [N*M*H*W] 1 on the missing channels of each slice, 0 on the given ones. */
  private missingPlanes(count: number, available: readonly boolean[] | readonly (readonly boolean[])[]): Float32Array {
    const M = this.modalities.length;
    const HW = this.height * this.width;
    const out = new Float32Array(count * M * HW);
    for (let n = 0; n < count; n++) {
      const a = availabilityOf(available, n, M, count);
      for (let m = 0; m < M; m++) if (!a[m]) out.fill(1, (n * M + m) * HW, (n * M + m + 1) * HW);
    }
    return out;
  }

  /** One iteration on these slices, each with its own availability. Losses are GPU scalars: dispose them. */
  step(slices: readonly Slice[], available: readonly (readonly boolean[])[]): StepLosses {
    const [H, W] = [this.height, this.width];
    const N = slices.length;
    const M = this.modalities.length;
    const base = this.baseOf(slices, available);
    const condData = completionCondition(slices, this.numClasses, available, this.residual ? base : undefined);
    const missData = this.missingPlanes(N, available);
    let missing = 0;
    for (let i = 0; i < missData.length; i++) missing += missData[i]!;
    const missingShare = missing / missData.length;
    const { generator, discriminator, optimizerG, optimizerD } = this;
    const lr = learningRateAt(this.config, this.iter);
    optimizerG.lr = lr;
    optimizerD.lr = lr;
    const losses = tidy(() => {
      const cond = tensor(condData, [N, completionChannels(this.numClasses, M), H, W]);
      const real = tensor(imageTensor(slices), [N, M, H, W]);
      optimizerG.zeroGrad();
      // Completed image: real on the given channels, base + network output on the missing ones.
      const fake = add(tensor(base, [N, M, H, W]), mul(generator.forward(cond), tensor(missData, [N, M, H, W])));
      const d = discriminatorStep(discriminator, optimizerD, cond, real, fake);
      // The given channels of fake equal real, so L1 over every channel / missing share = L1 over the missing pixels.
      const g = generatorGradient(discriminator, cond, real, fake, { lambdaL1: this.config.lambdaL1 / missingShare });
      backward(fake, g.gradFake);
      g.gradFake.dispose();
      optimizerG.step();
      return { ...d, gGan: g.gGan, gL1: scale(g.gL1, 1 / missingShare) };
    });
    this.iter++;
    return losses;
  }

  /**
   * Trains until `config.iters` (or `shouldStop`): random batches of `train`, each sample hiding a
   * random non-empty subset. The sampling stream depends on the seed and the starting iteration,
   * so a resumed run draws fresh batches.
   */
  async train(train: Dataset, options: CompletionTrainOptions): Promise<void> {
    const M = this.modalities.length;
    if (train.modalities.join(',') !== this.modalities.join(',')) {
      throw new Error(`completion: the data has [${train.modalities.join(', ')}], the generator [${this.modalities.join(', ')}]`);
    }
    const rng = new Rng(hashSeed('completion', this.config.seed, this.iter));
    while (this.iter < this.config.iters && !options.shouldStop?.()) {
      const batch = Array.from({ length: options.batchSize }, () => train.slices[rng.int(train.slices.length)]!);
      const available = batch.map(() =>
        this.focus && rng.bool(this.focus.probability) ? [...this.focus.available] : randomAvailability(rng, M, this.hideProbability));
      const losses = this.step(batch, available);
      try {
        await options.onStep?.(this.iter, losses);
      } finally {
        for (const t of Object.values(losses)) t.dispose();
      }
      if (this.iter % (options.syncEvery ?? 4) === 0) await engine().sync();
    }
    await engine().sync();
  }

  /**
   * All M modalities of each slice, [N*M*H*W]: the given ones copied, the missing ones synthesized
   * (the generator runs in evaluation mode: running batch-norm statistics, no dropout; its mode is
   * restored afterwards). Values clamped to [-1, 1].
   */
  async complete(slices: readonly Slice[], available: readonly boolean[] | readonly (readonly boolean[])[], chunk = 16): Promise<Float32Array> {
    const M = this.modalities.length;
    const [H, W] = [this.height, this.width];
    const HW = H * W;
    const out = new Float32Array(slices.length * M * HW);
    const g = this.generator;
    const wasTraining = g.training;
    g.eval();
    try {
      for (let i = 0; i < slices.length; i += chunk) {
        const part = slices.slice(i, i + chunk);
        const avail = Array.isArray(available[0]) ? (available as readonly (readonly boolean[])[]).slice(i, i + chunk) : available;
        const base = this.baseOf(part, avail);
        const miss = this.missingPlanes(part.length, avail);
        const cond = completionCondition(part, this.numClasses, avail, this.residual ? base : undefined);
        const fake = noGrad(() => tidy(() => g.forward(tensor(cond, [part.length, completionChannels(this.numClasses, M), H, W]))));
        const r = await fake.read();
        fake.dispose();
        for (let j = 0; j < r.length; j++) out[i * M * HW + j] = Math.max(-1, Math.min(1, base[j]! + miss[j]! * r[j]!));
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
 * pixelwise, least squares over every pixel of `ds`. One weight vector [1 + given.length] per class.
 */
export function fitClassLinear(ds: Dataset, given: readonly number[], target: number): number[][] {
  return ClassLinearModel.fit(ds).weights(given, target);
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
    /** The completion model given the other modalities. */
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
 * against the real ones together with the same generator given only the mask and two baselines
 * fitted on `train`: the per-class mean intensity and the per-class linear regression on the
 * given modalities.
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
  const linearModel = ClassLinearModel.fit(train);
  for (const m of missing) {
    const means = classMeanIntensities(train, m);
    const linear = linearModel.weights(given, m);
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
