/**
 * Losses, each reduced to a scalar (shape []) by a mean:
 * - `bceWithLogits(logits, target)`: max(x, 0) - x t + log(1 + exp(-|x|)) (stable for any x);
 * - `l1Loss(pred, target, { channels })` and `mseLoss(...)`, optionally over some channels only;
 * - `softmaxCrossEntropy(logits [N, C, ...], labels [N, ...])` with optional class weights;
 * - `softDice(logits [N, C, ...], labels [N, ...])`.
 *
 * Kernels live in shaders/loss.wgsl: a fused per-element (or per-pixel) pass that writes one
 * partial sum per workgroup, a one-workgroup pass that finishes the sum, and one elementwise
 * pass for the gradient, which reads the upstream gradient from the GPU (no readback).
 */
import { record } from '../autograd.js';
import { engine } from '../engine.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { fmtShape, launch1d, sameShape, WG } from './launch.js';

const FILE = 'loss.wgsl';
/**
 * Most workgroups a reducing forward pass uses (each writes one partial sum). Kept small: on
 * llvmpipe a workgroup that synchronizes costs ~0.05-0.15 ms, so 768 partials made an L1 loss over
 * 786k elements take ~100 ms, against ~3 ms with 32; 32 x 256 threads still fill a real GPU well
 * enough for a loss.
 */
const MAX_PARTIALS = 32;
/** Elements per thread aimed at by the forward passes before more workgroups are added. */
const PER_THREAD = 4;
/** Channels a channel mask can address (4 u32 words in the uniform block). */
const MAX_MASK_CHANNELS = 128;
/** Classes that can carry a weight (16 vec4 in the uniform block). */
const MAX_WEIGHTED_CLASSES = 64;

const LOSS_ID = { bce: 0, l1: 1, mse: 2 } as const;
type PointLoss = keyof typeof LOSS_ID;

export interface ChannelOptions {
  /**
   * Only these indices of dim 1 take part (e.g. the modalities a node holds); the mean runs over
   * the selected elements and the gradient is 0 elsewhere. Default: all channels.
   */
  channels?: readonly number[];
}

export interface WeightOptions {
  /**
   * The loss is multiplied by this (e.g. pix2pix's lambda = 100 on L1), in the loss's own
   * kernels: no separate scaling launch forward or backward. Default 1.
   */
  weight?: number;
}

export type PointLossOptions = ChannelOptions & WeightOptions;

function partialGroups(work: number): number {
  return Math.min(MAX_PARTIALS, Math.max(1, Math.ceil(work / (WG * PER_THREAD))));
}

/** Sums `count` partial records of `stride` floats into a new scalar (times `scale`). */
function finish(parts: Tensor, count: number, stride: number, scale: number): Tensor {
  const out = Tensor.empty([]);
  engine().launch({
    file: FILE,
    entry: 'finish',
    params: new Params().u32(count, stride).f32(scale).data(),
    buffers: [parts.binding(), out.binding()],
    workgroups: [1],
    cost: { flops: count, bytes: 4 * (count * stride + 1) },
  });
  return out;
}

/** Channel bit mask words and the number of selected elements, validating `channels`. */
function channelMask(op: string, x: Tensor, channels: readonly number[] | undefined) {
  if (channels === undefined) return { masked: false, words: [0, 0, 0, 0], count: x.size, inner: 1, c: 1 };
  if (x.shape.length < 2) {
    throw new ShapeError(`${op}: channels need an input with a channel dim (dim 1), got ${fmtShape(x.shape)}`);
  }
  const c = x.shape[1]!;
  const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
  if (c > MAX_MASK_CHANNELS) {
    throw new ShapeError(`${op}: channel selection supports at most ${MAX_MASK_CHANNELS} channels, got ${fmtShape(x.shape)}`);
  }
  const words = [0, 0, 0, 0];
  const seen = new Set<number>();
  for (const ch of channels) {
    if (!Number.isInteger(ch) || ch < 0 || ch >= c) {
      throw new ShapeError(`${op}: channel ${ch} out of range for input ${fmtShape(x.shape)} (dim 1 has ${c})`);
    }
    if (seen.has(ch)) continue;
    seen.add(ch);
    words[ch >> 5] = (words[ch >> 5]! | (1 << (ch & 31))) >>> 0;
  }
  if (seen.size === 0) throw new ShapeError(`${op}: empty channel selection`);
  return { masked: true, words, count: (x.size / c) * seen.size, inner, c };
}

function pointLoss(op: string, kind: PointLoss, pred: Tensor, target: Tensor | number, opts: PointLossOptions): Tensor {
  const { channels, weight = 1 } = opts;
  if (!Number.isFinite(weight)) throw new ShapeError(`${op}: weight must be a finite number, got ${weight}`);
  const tConst = typeof target === 'number';
  if (!tConst) sameShape(op, pred, target);
  if (pred.size === 0) throw new ShapeError(`${op}: empty input ${fmtShape(pred.shape)}`);
  const mask = channelMask(op, pred, channels);
  const n = pred.size;
  const params = new Params()
    .u32(n, mask.inner, mask.c)
    .f32(tConst ? target : 0, weight / mask.count)
    .u32(...mask.words)
    .data();
  const constants = { LOSS: LOSS_ID[kind], T_CONST: tConst ? 1 : 0, MASKED: mask.masked ? 1 : 0 };
  const tBinding = tConst ? pred.binding() : target.binding();
  const groups = partialGroups(n);
  const parts = Tensor.empty([groups]);
  engine().launch({
    file: FILE,
    entry: 'point_partial',
    constants,
    params,
    buffers: [pred.binding(), tBinding, parts.binding()],
    workgroups: [groups],
    cost: { flops: (kind === 'bce' ? 8 : 3) * n, bytes: (tConst ? 4 : 8) * n },
  });
  const out = finish(parts, groups, 1, weight / mask.count);
  parts.dispose();

  const targetTensor = tConst ? null : target;
  const saved = targetTensor ? [pred, targetTensor] : [pred];
  return record(op, out, [pred, targetTensor], saved, (g, [sp, st]) => {
    const grad = (entry: string) => {
      const gx = Tensor.empty(pred.shape);
      launch1d(n, {
        file: FILE,
        entry,
        constants,
        params,
        buffers: [sp!.binding(), (st ?? sp)!.binding(), g.binding(), gx.binding()],
        cost: { flops: (kind === 'bce' ? 8 : 4) * n, bytes: (tConst ? 8 : 12) * n },
      });
      return gx;
    };
    return [
      pred.requiresGrad ? grad('point_grad_pred') : null,
      targetTensor?.requiresGrad ? grad('point_grad_target') : null,
    ];
  });
}

/**
 * Mean binary cross-entropy on logits: mean(max(x, 0) - x t + log(1 + exp(-|x|))). `target` is a
 * tensor of x's shape (values in [0, 1]) or a constant such as 0 or 1 (GAN labels).
 */
export function bceWithLogits(logits: Tensor, target: Tensor | number, opts: WeightOptions = {}): Tensor {
  return pointLoss('bceWithLogits', 'bce', logits, target, opts);
}

/** Mean absolute error, optionally over some channels (dim 1) only, times `weight`. */
export function l1Loss(pred: Tensor, target: Tensor, opts: PointLossOptions = {}): Tensor {
  return pointLoss('l1Loss', 'l1', pred, target, opts);
}

/** Mean squared error, optionally over some channels (dim 1) only, times `weight`. */
export function mseLoss(pred: Tensor, target: Tensor, opts: PointLossOptions = {}): Tensor {
  return pointLoss('mseLoss', 'mse', pred, target, opts);
}

/** Checks logits [N, C, ...] against labels [N, ...] (or [N, 1, ...]); returns C, S and N*S. */
function segShapes(op: string, logits: Tensor, labels: Tensor) {
  const ls = logits.shape;
  if (ls.length < 2) throw new ShapeError(`${op}: logits must be [N, C, ...], got ${fmtShape(ls)}`);
  const spatial = ls.slice(2);
  const ys = labels.shape;
  const plain = ys.length === ls.length - 1 && ys[0] === ls[0] && spatial.every((d, i) => ys[i + 1] === d);
  const withChannel =
    ys.length === ls.length && ys[0] === ls[0] && ys[1] === 1 && spatial.every((d, i) => ys[i + 2] === d);
  if (!plain && !withChannel) {
    throw new ShapeError(
      `${op}: labels ${fmtShape(ys)} do not match logits ${fmtShape(ls)} (expected [${[ls[0], ...spatial].join(', ')}])`,
    );
  }
  const classes = ls[1]!;
  const hw = spatial.reduce((a, b) => a * b, 1);
  const pixels = ls[0]! * hw;
  if (classes === 0 || pixels === 0) throw new ShapeError(`${op}: empty input ${fmtShape(ls)}`);
  return { classes, hw, pixels };
}

export interface CrossEntropyOptions {
  /** Per-class weights (length C, at most 64 classes): a pixel of class y counts weights[y] times. */
  weights?: readonly number[];
  /**
   * Divisor of the weighted sum: 'pixels' (default) = number of pixels with a valid label;
   * 'weights' = sum of the weights of those pixels (PyTorch's `CrossEntropyLoss(weight=...)`).
   * Both agree when there are no weights.
   */
  normalize?: 'pixels' | 'weights';
}

/**
 * Per-pixel softmax cross-entropy over dim 1, averaged over pixels. logits [N, C, ...spatial],
 * labels [N, ...spatial] holding class ids as f32. Labels outside [0, C) are ignored (no loss, no
 * gradient, not counted); if every label is ignored the result is NaN, as in PyTorch.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'softmaxCrossEntropy';
  const { classes, hw, pixels } = segShapes(op, logits, labels);
  const weights = opts.weights;
  if (weights) {
    if (weights.length !== classes) {
      throw new ShapeError(`${op}: ${weights.length} class weights for ${classes} classes (logits ${fmtShape(logits.shape)})`);
    }
    if (classes > MAX_WEIGHTED_CLASSES) throw new ShapeError(`${op}: class weights support at most ${MAX_WEIGHTED_CLASSES} classes, got ${classes}`);
  }
  const w = new Float32Array(4 * 16);
  if (weights) w.set(weights);
  const params = new Params(4 + w.length).u32(pixels, hw, classes, 0).f32(...w).data();
  const constants = { HAS_W: weights ? 1 : 0, NORM_W: weights && opts.normalize === 'weights' ? 1 : 0 };
  const groups = partialGroups(pixels);
  const parts = Tensor.empty([groups, 2]);
  engine().launch({
    file: FILE,
    entry: 'ce_partial',
    constants,
    params,
    buffers: [logits.binding(), labels.binding(), parts.binding()],
    workgroups: [groups],
    cost: { flops: 5 * logits.size, bytes: 4 * (2 * logits.size + pixels) },
  });
  const out = Tensor.empty([]);
  const den = Tensor.empty([1]);
  engine().launch({
    file: FILE,
    entry: 'finish_ratio',
    params: new Params().u32(groups, 2).f32(1).data(),
    buffers: [parts.binding(), out.binding(), den.binding()],
    workgroups: [1],
    cost: { flops: 2 * groups, bytes: 8 * groups },
  });
  parts.dispose();
  const result = record(op, out, [logits], [logits, labels, den], (g, [sx, sy, sd]) => {
    const gx = Tensor.empty(logits.shape);
    launch1d(pixels, {
      file: FILE,
      entry: 'ce_grad',
      constants,
      params,
      buffers: [sx!.binding(), sy!.binding(), g.binding(), sd!.binding(), gx.binding()],
      cost: { flops: 8 * logits.size, bytes: 4 * (3 * logits.size + pixels) },
    });
    return [gx];
  });
  den.dispose();
  return result;
}

export interface DiceOptions {
  /** Added to numerator and denominator of every class's Dice (default 1e-5). */
  eps?: number;
  /** Leave class 0 out of the mean over classes (default false). */
  ignoreBackground?: boolean;
}

/**
 * Soft Dice loss: with p = softmax over dim 1 of logits [N, C, ...spatial] and one-hot labels
 * [N, ...spatial], per class c (sums over every pixel of the batch):
 * dice_c = (2 sum(p_c y_c) + eps) / (sum p_c + sum y_c + eps); loss = 1 - mean_c dice_c.
 * Pixels whose label is outside [0, C) are left out of every sum.
 */
export function softDice(logits: Tensor, labels: Tensor, opts: DiceOptions = {}): Tensor {
  const op = 'softDice';
  const { classes, hw, pixels } = segShapes(op, logits, labels);
  const c0 = opts.ignoreBackground ? 1 : 0;
  if (classes - c0 < 1) throw new ShapeError(`${op}: ignoreBackground needs at least 2 classes, logits ${fmtShape(logits.shape)}`);
  const eps = opts.eps ?? 1e-5;
  // (pixel chunks) x (classes) workgroups, about MAX_PARTIALS in all.
  const groups = Math.min(Math.max(1, Math.ceil(MAX_PARTIALS / classes)), Math.ceil(pixels / (WG * PER_THREAD)));
  const params = new Params().u32(pixels, hw, classes, groups, c0).f32(eps, 1 / (classes - c0)).data();
  const probs = Tensor.empty(logits.shape);
  launch1d(pixels, {
    file: FILE,
    entry: 'softmax_probs',
    params,
    buffers: [logits.binding(), probs.binding()],
    cost: { flops: 4 * logits.size, bytes: 12 * logits.size },
  });
  const parts = Tensor.empty([classes, groups, 3]);
  engine().launch({
    file: FILE,
    entry: 'dice_partial',
    params,
    buffers: [probs.binding(), labels.binding(), parts.binding()],
    workgroups: [groups, classes],
    cost: { flops: 4 * logits.size, bytes: 4 * (logits.size + classes * pixels) },
  });
  const stats = Tensor.empty([classes, 2]);
  const out = Tensor.empty([]);
  engine().launch({
    file: FILE,
    entry: 'dice_finish',
    params,
    buffers: [parts.binding(), stats.binding(), out.binding()],
    workgroups: [1],
    cost: { flops: 3 * classes * groups, bytes: 12 * classes * groups },
  });
  parts.dispose();
  const result = record(op, out, [logits], [probs, labels, stats], (g, [sp, sy, ss]) => {
    const gx = Tensor.empty(logits.shape);
    launch1d(pixels, {
      file: FILE,
      entry: 'dice_grad',
      params,
      buffers: [sp!.binding(), sy!.binding(), ss!.binding(), g.binding(), gx.binding()],
      cost: { flops: 10 * logits.size, bytes: 8 * logits.size + 4 * pixels },
    });
    return [gx];
  });
  probs.dispose();
  stats.dispose();
  return result;
}
