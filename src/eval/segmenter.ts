/**
 * The evaluation segmenter: a U-Net (src/models/unet.ts) trained on (image, label map) pairs with
 * Adam on softmax cross-entropy + soft Dice (foreground classes), for a fixed number of
 * iterations with seeded batch sampling, then used to predict label maps (argmax) of test images.
 *
 * Everything that decides the result is in `SegmenterConfig` (architecture, optimizer, iterations,
 * seed), so two segmenters built from the same config and trained on two data sets differ only
 * by their data: the basis of the real-vs-synthetic comparison in experiment.ts.
 *
 * Sampling: the training slices are shuffled with the seed, taken `batchSize` at a time, and
 * reshuffled when exhausted (epochs without replacement), so a small set is covered evenly.
 *
 * Default size, measured on the 2-vCPU lavapipe machine (busy with other jobs): depth 3, width 8
 * (121,664 parameters for 4 -> 8 classes), batch 4 at 64x64 takes ~0.4 s per iteration, so 300
 * iterations take ~2 minutes; width 16 was 3.7x slower. At 32x32 with depth 2, width 4: ~0.07 s.
 */
import {
  Adam, add, backward, noGrad, scale, softDice, softmaxCrossEntropy, tensor, tidy, type Tensor,
} from '../engine/index.js';
import { Rng, hashSeed } from '../engine/index.js';
import { imageTensor, type Dataset, type Slice } from '../data/index.js';
import { UNet, type NormKind } from '../models/index.js';
import { Progress, type ProgressStream } from '../cli/progress.js';

export interface SegmenterConfig {
  /** U-Net poolings (the image size must be a multiple of 2^depth). */
  depth: number;
  /** Channels of the first U-Net block. */
  width: number;
  norm: NormKind;
  /** Dropout after the bottleneck (the reference uses 0.5; 0 trains faster in few iterations). */
  dropout: number;
  iters: number;
  batchSize: number;
  /** Adam learning rate (betas 0.9, 0.999). */
  lr: number;
  /** Weight of the soft Dice term (foreground classes) added to the cross-entropy. */
  diceWeight: number;
  /** Seed of the weights, the dropout masks and the batch order. */
  seed: number;
}

export const DEFAULT_SEGMENTER_CONFIG: SegmenterConfig = {
  depth: 3,
  width: 8,
  norm: 'batch',
  dropout: 0,
  iters: 300,
  batchSize: 4,
  lr: 2e-3,
  diceWeight: 1,
  seed: 1,
};

/** How training reports progress. */
export interface FitOptions {
  /** Progress bar label (default 'segmenter'). */
  label?: string;
  /** Where the bar goes (default stderr); false: no bar. */
  progress?: ProgressStream | false;
  /**
   * Read the loss back every this many iterations (default 10). A readback waits for the GPU, so
   * it also bounds how much work is queued.
   */
  logEvery?: number;
}

export interface FitResult {
  iters: number;
  seconds: number;
  /** Losses read back during training (iteration, CE + w * Dice loss). */
  losses: { iter: number; loss: number }[];
}

export class Segmenter {
  readonly config: SegmenterConfig;
  readonly unet: UNet;
  private readonly optimizer: Adam;

  constructor(readonly inChannels: number, readonly numClasses: number, config: Partial<SegmenterConfig> = {}) {
    this.config = { ...DEFAULT_SEGMENTER_CONFIG, ...config };
    const c = this.config;
    this.unet = new UNet(inChannels, numClasses, { depth: c.depth, width: c.width, norm: c.norm, dropout: c.dropout, seed: c.seed });
    this.optimizer = new Adam(this.unet.namedParameters().map(([name, t]) => ({ name, tensor: t })), { lr: c.lr, betas: [0.9, 0.999] });
  }

  /** Trains for `config.iters` iterations on the data set's slices. */
  async fit(data: Dataset, opts: FitOptions = {}): Promise<FitResult> {
    const c = this.config;
    const n = data.slices.length;
    if (n === 0) throw new Error('Segmenter.fit: no training slices');
    this.checkData(data);
    const { height: H, width: W } = data;
    const M = data.modalities.length;
    const B = c.batchSize;
    const order = new BatchOrder(n, c.seed);
    const logEvery = Math.max(1, opts.logEvery ?? 10);
    const bar = opts.progress === false ? null : new Progress({ total: c.iters, label: opts.label ?? 'segmenter', ...(opts.progress ? { stream: opts.progress } : {}) });
    const losses: FitResult['losses'] = [];
    const t0 = performance.now();
    const labels = new Float32Array(B * H * W);
    this.unet.train();
    for (let it = 1; it <= c.iters; it++) {
      const batch = order.next(B).map((i) => data.slices[i]!);
      batch.forEach((s, b) => {
        for (let i = 0; i < H * W; i++) labels[b * H * W + i] = s.mask[i]!;
      });
      const loss = tidy(() => {
        this.optimizer.zeroGrad();
        const x = tensor(imageTensor(batch), [B, M, H, W]);
        const y = tensor(labels, [B, H, W]);
        const logits = this.unet.forward(x);
        const ce = softmaxCrossEntropy(logits, y);
        const total = c.diceWeight > 0 ? add(ce, scale(softDice(logits, y, { ignoreBackground: true }), c.diceWeight)) : ce;
        backward(total);
        this.optimizer.step();
        return total;
      });
      if (it % logEvery === 0 || it === c.iters) {
        const v = await loss.item();
        losses.push({ iter: it, loss: v });
        bar?.update(it, { loss: v.toFixed(4) });
      } else {
        bar?.update(it);
      }
      loss.dispose();
    }
    this.optimizer.zeroGrad();
    bar?.finish();
    return { iters: c.iters, seconds: (performance.now() - t0) / 1000, losses };
  }

  /** Label maps (argmax over classes, evaluation mode) for the data set's images, in slice order. */
  async predict(data: Dataset | readonly Slice[], batchSize = 8): Promise<Uint8Array[]> {
    const slices = Array.isArray(data) ? (data as readonly Slice[]) : (data as Dataset).slices;
    if (slices.length === 0) return [];
    const first = slices[0]!;
    const M = first.modalities.length;
    const HW = first.mask.length;
    const H = Array.isArray(data) ? Math.round(Math.sqrt(HW)) : (data as Dataset).height;
    const W = HW / H;
    if (!Number.isInteger(W)) throw new Error('Segmenter.predict: pass a Dataset for non-square slices');
    if (M !== this.inChannels) throw new Error(`Segmenter.predict: slices have ${M} modalities, the U-Net takes ${this.inChannels}`);
    this.unet.eval();
    const out: Uint8Array[] = [];
    for (let s = 0; s < slices.length; s += batchSize) {
      const part = slices.slice(s, s + batchSize);
      const logits: Tensor = noGrad(() => tidy(() => this.unet.forward(tensor(imageTensor(part), [part.length, M, H, W]))));
      const values = await logits.read();
      logits.dispose();
      out.push(...argmaxClasses(values, part.length, this.numClasses, HW));
    }
    this.unet.train();
    return out;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.unet.dispose();
  }

  private checkData(data: Dataset): void {
    if (data.modalities.length !== this.inChannels) {
      throw new Error(`Segmenter: data has ${data.modalities.length} modalities, the U-Net takes ${this.inChannels}`);
    }
    if (data.numClasses !== this.numClasses) throw new Error(`Segmenter: data has ${data.numClasses} classes, the U-Net predicts ${this.numClasses}`);
    const f = 2 ** this.config.depth;
    if (data.height % f !== 0 || data.width % f !== 0) {
      throw new Error(`Segmenter: ${data.height}x${data.width} slices; a depth-${this.config.depth} U-Net needs multiples of ${f}`);
    }
  }
}

/** Per-pixel argmax over classes of logits [N, C, HW] (ties: the lowest class id). */
export function argmaxClasses(logits: Float32Array, n: number, numClasses: number, hw: number): Uint8Array[] {
  if (logits.length !== n * numClasses * hw) throw new Error(`argmaxClasses: ${logits.length} values for [${n}, ${numClasses}, ${hw}]`);
  const out: Uint8Array[] = [];
  for (let b = 0; b < n; b++) {
    const base = b * numClasses * hw;
    const best = new Float32Array(hw).fill(-Infinity);
    const arg = new Uint8Array(hw);
    for (let c = 0; c < numClasses; c++) {
      const off = base + c * hw;
      for (let i = 0; i < hw; i++) {
        const v = logits[off + i]!;
        if (v > best[i]!) {
          best[i] = v;
          arg[i] = c;
        }
      }
    }
    out.push(arg);
  }
  return out;
}

/** Seeded batch indices: shuffled epochs without replacement. */
export class BatchOrder {
  private readonly rng: Rng;
  private perm: number[] = [];
  private pos = 0;

  constructor(private readonly n: number, seed: number) {
    this.rng = new Rng(hashSeed(seed, 'segmenter-batches'));
  }

  next(batchSize: number): number[] {
    const out: number[] = [];
    while (out.length < batchSize) {
      if (this.pos >= this.perm.length) {
        this.perm = this.rng.shuffle(Array.from({ length: this.n }, (_, i) => i));
        this.pos = 0;
      }
      out.push(this.perm[this.pos++]!);
    }
    return out;
  }
}
