/**
 * Layers with PyTorch's parameter names and layouts: Conv2d (weight [out, in, kh, kw], bias [out]),
 * ConvTranspose2d (weight [in, out, kh, kw]), BatchNorm2d (weight, bias, running_mean, running_var,
 * num_batches_tracked), InstanceNorm2d, activations, padding, pooling, resampling, Dropout and
 * Sequential (children named "0", "1", ...).
 */
import {
  ShapeError, batchNorm2d, conv2d, convTranspose2d, dropout, full, instanceNorm2d, leakyRelu, maxPool2d, pad2d, rand, randn,
  add, relu, sigmoid, tanh, upsampleBilinear2x, upsampleNearest2x, type NormEpilogue, type Rng, type Tensor,
  type Conv2dOptions as ConvOpOptions,
} from '../engine/index.js';
import { Counter, Module, toRng, type SeedLike } from './module.js';

/**
 * How weights start:
 * - 'normal': the reference `init_weights(net, 'normal', 0.02)`: conv weights N(0, std), biases 0,
 *   BatchNorm weight N(1, std) and bias 0;
 * - 'pytorch': PyTorch's own defaults (conv weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
 *   BatchNorm weight 1, bias 0), which the reference segmentation U-Net keeps.
 */
export type InitScheme = 'normal' | 'pytorch';

export interface InitOptions {
  /** Seed or shared generator for the initial weights (default 0). */
  seed?: SeedLike;
  init?: InitScheme;
  /** Standard deviation of the 'normal' scheme (default 0.02). */
  std?: number;
}

function positiveInt(layer: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new ShapeError(`${layer}: ${what} must be a positive integer, got ${v}`);
}

function nonNegativeInt(layer: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new ShapeError(`${layer}: ${what} must be a non-negative integer, got ${v}`);
}

function kernelSize(layer: string, k: number | readonly [number, number]): [number, number] {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  positiveInt(layer, 'kernel size', kh);
  positiveInt(layer, 'kernel size', kw);
  return [kh, kw];
}

/** Conv weight and bias, initialized per scheme; `fanIn` is PyTorch's fan-in of the weight tensor. */
function convParams(
  weightShape: number[],
  fanIn: number,
  withBias: boolean,
  biasSize: number,
  o: InitOptions,
): [Tensor, Tensor | null] {
  const rng = toRng(o.seed);
  if ((o.init ?? 'normal') === 'normal') {
    // Each tensor draws its own sub-seed from the layer's generator (the engine's randn / rand).
    const w = randn(weightShape, rng.nextU32(), o.std ?? 0.02);
    return [w, withBias ? full([biasSize], 0) : null];
  }
  const bound = 1 / Math.sqrt(fanIn);
  const w = rand(weightShape, rng.nextU32(), -bound, bound);
  return [w, withBias ? rand([biasSize], rng.nextU32(), -bound, bound) : null];
}

export interface Conv2dOptions extends InitOptions {
  stride?: number;
  /** Zero padding on every side. */
  padding?: number;
  dilation?: number;
  /** Learnable bias (default true, as in PyTorch). */
  bias?: boolean;
}

/** Validated channel counts and geometry, shared by Conv2d and ConvTranspose2d. */
function convSettings(
  layer: string, inChannels: number, outChannels: number, kernel: number | readonly [number, number], o: Conv2dOptions,
): { kernelSize: [number, number]; stride: number; padding: number; dilation: number } {
  positiveInt(layer, 'inChannels', inChannels);
  positiveInt(layer, 'outChannels', outChannels);
  const s = { kernelSize: kernelSize(layer, kernel), stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1 };
  positiveInt(layer, 'stride', s.stride);
  positiveInt(layer, 'dilation', s.dilation);
  nonNegativeInt(layer, 'padding', s.padding);
  return s;
}

/** 2-D convolution, PyTorch `nn.Conv2d` (groups 1, zero padding). */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly dilation: number;
  readonly kernelSize: [number, number];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: number | readonly [number, number],
    o: Conv2dOptions = {},
  ) {
    super();
    const s = convSettings('Conv2d', inChannels, outChannels, kernel, o);
    [this.kernelSize, this.stride, this.padding, this.dilation] = [s.kernelSize, s.stride, s.padding, s.dilation];
    const [kh, kw] = this.kernelSize;
    const [w, b] = convParams([outChannels, inChannels, kh, kw], inChannels * kh * kw, o.bias ?? true, outChannels, o);
    this.weight = this.registerParameter('weight', w)!;
    this.bias = this.registerParameter('bias', b);
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }

  /**
   * This convolution after a padding layer that it absorbs (see Sequential): `padding` [height,
   * width] of `mode` instead of the layer's own (which must be 0).
   */
  forwardPadded(x: Tensor, padding: [number, number], mode: 'zero' | 'reflect', act: ConvEpilogue = {}): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding, dilation: this.dilation, padMode: mode, ...act });
  }

  /** act(this convolution), the activation in the convolution's kernel (see Sequential). */
  forwardWith(x: Tensor, act: ConvEpilogue): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, ...act });
  }
}

/** An activation a Conv2d can apply in its own kernel (conv2d's `activation` option). */
export type ConvEpilogue = Pick<ConvOpOptions, 'activation' | 'negativeSlope'>;

/** The epilogue that runs `layer` (Tanh, or LeakyReLU with slope >= 0), or null. */
function convEpilogueOf(layer: Module | undefined): ConvEpilogue | null {
  if (layer instanceof Tanh) return { activation: 'tanh' };
  if (layer instanceof LeakyReLU && layer.negativeSlope >= 0) return { activation: 'leakyRelu', negativeSlope: layer.negativeSlope };
  return null;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns on the bottom/right of the output (PyTorch `output_padding`). */
  outputPadding?: number;
}

/** Transposed 2-D convolution, PyTorch `nn.ConvTranspose2d`; weight layout [in, out, kh, kw]. */
export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly outputPadding: number;
  readonly dilation: number;
  readonly kernelSize: [number, number];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: number | readonly [number, number],
    o: ConvTranspose2dOptions = {},
  ) {
    super();
    const s = convSettings('ConvTranspose2d', inChannels, outChannels, kernel, o);
    [this.kernelSize, this.stride, this.padding, this.dilation] = [s.kernelSize, s.stride, s.padding, s.dilation];
    this.outputPadding = o.outputPadding ?? 0;
    nonNegativeInt('ConvTranspose2d', 'outputPadding', this.outputPadding);
    if (this.outputPadding >= this.stride && this.outputPadding >= this.dilation) {
      throw new ShapeError(`ConvTranspose2d: outputPadding ${this.outputPadding} must be smaller than stride or dilation`);
    }
    const [kh, kw] = this.kernelSize;
    // PyTorch computes the fan-in of a transposed conv weight [in, out, kh, kw] from dim 1.
    const [w, b] = convParams([inChannels, outChannels, kh, kw], outChannels * kh * kw, o.bias ?? true, outChannels, o);
    this.weight = this.registerParameter('weight', w)!;
    this.bias = this.registerParameter('bias', b);
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      outputPadding: this.outputPadding,
      dilation: this.dilation,
    });
  }
}

export interface BatchNorm2dOptions extends InitOptions {
  eps?: number;
  /** Weight of the new batch statistics in the running averages (PyTorch default 0.1). */
  momentum?: number;
  /** Learnable weight and bias (default true). */
  affine?: boolean;
  /** Keep running statistics for evaluation (default true); without them batch statistics are always used. */
  trackRunningStats?: boolean;
}

/** Batch normalization over N, H, W per channel, PyTorch `nn.BatchNorm2d`. */
export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Counter | null;
  readonly eps: number;
  readonly momentum: number;

  constructor(readonly numFeatures: number, o: BatchNorm2dOptions = {}) {
    super();
    positiveInt('BatchNorm2d', 'numFeatures', numFeatures);
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum ?? 0.1;
    const affine = o.affine ?? true;
    const track = o.trackRunningStats ?? true;
    let w: Tensor | null = null;
    let b: Tensor | null = null;
    if (affine) {
      w = (o.init ?? 'normal') === 'normal'
        ? randn([numFeatures], toRng(o.seed).nextU32(), o.std ?? 0.02, 1)
        : full([numFeatures], 1);
      b = full([numFeatures], 0);
    }
    this.weight = this.registerParameter('weight', w);
    this.bias = this.registerParameter('bias', b);
    if (track) {
      this.runningMean = this.registerBuffer('running_mean', full([numFeatures], 0));
      this.runningVar = this.registerBuffer('running_var', full([numFeatures], 1));
      this.numBatchesTracked = this.registerBuffer('num_batches_tracked', new Counter(0));
    } else {
      this.runningMean = this.runningVar = this.numBatchesTracked = null;
    }
  }

  forward(x: Tensor): Tensor {
    return this.forwardWith(x, {});
  }

  /** act(bn(x) + residual): the epilogue runs in the norm's own kernels (see NormEpilogue). */
  forwardWith(x: Tensor, epilogue: NormEpilogue): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`BatchNorm2d(${this.numFeatures}): expected input [N, ${this.numFeatures}, H, W], got [${x.shape.join(', ')}]`);
    }
    const useBatchStats = this.training || !this.runningMean;
    const y = batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, {
      training: useBatchStats,
      momentum: this.momentum,
      eps: this.eps,
      ...epilogue,
    });
    if (this.training && this.numBatchesTracked) this.numBatchesTracked.value++;
    return y;
  }
}

export interface InstanceNorm2dOptions {
  eps?: number;
  /** Learnable weight (1) and bias (0); default false, as in pix2pix and PyTorch. */
  affine?: boolean;
}

/**
 * Instance normalization (per sample and channel, over H, W), PyTorch `nn.InstanceNorm2d` with
 * track_running_stats=False: the same computation in training and evaluation.
 */
export class InstanceNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(readonly numFeatures: number, o: InstanceNorm2dOptions = {}) {
    super();
    positiveInt('InstanceNorm2d', 'numFeatures', numFeatures);
    this.eps = o.eps ?? 1e-5;
    const affine = o.affine ?? false;
    // The reference init_weights only touches BatchNorm layers: affine InstanceNorm keeps 1 and 0.
    this.weight = this.registerParameter('weight', affine ? full([numFeatures], 1) : null);
    this.bias = this.registerParameter('bias', affine ? full([numFeatures], 0) : null);
  }

  forward(x: Tensor): Tensor {
    return this.forwardWith(x, {});
  }

  /** act(in(x) + residual), fused into the norm's kernels (see NormEpilogue). */
  forwardWith(x: Tensor, epilogue: NormEpilogue): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.numFeatures) {
      throw new ShapeError(`InstanceNorm2d(${this.numFeatures}): expected input [N, ${this.numFeatures}, H, W], got [${x.shape.join(', ')}]`);
    }
    return instanceNorm2d(x, this.weight, this.bias, { eps: this.eps, ...epilogue });
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  forward(x: Tensor): Tensor {
    return leakyRelu(x, this.negativeSlope);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

/** Padding sizes as PyTorch orders them: (left, right, top, bottom). */
export type Padding2d = number | readonly [number, number, number, number];

function checkPadding(layer: string, p: Padding2d): number | [number, number, number, number] {
  const sides = typeof p === 'number' ? [p] : [...p];
  for (const s of sides) nonNegativeInt(layer, 'padding', s);
  return typeof p === 'number' ? p : [p[0], p[1], p[2], p[3]];
}

/** Fixed padding of every image (no parameters); the mode is the subclass's. */
abstract class Pad2dLayer extends Module {
  readonly padding: number | [number, number, number, number];

  protected constructor(layer: string, padding: Padding2d, readonly mode: 'reflect' | 'zero') {
    super();
    this.padding = checkPadding(layer, padding);
  }

  /** [height, width] when the padding is the same on both sides of each dimension, else null. */
  symmetric(): [number, number] | null {
    const p = this.padding;
    if (typeof p === 'number') return [p, p];
    return p[0] === p[1] && p[2] === p[3] ? [p[2], p[0]] : null;
  }

  forward(x: Tensor): Tensor {
    return pad2d(x, this.padding, this.mode);
  }
}

/** Mirror padding without repeating the edge, PyTorch `nn.ReflectionPad2d`. */
export class ReflectionPad2d extends Pad2dLayer {
  constructor(padding: Padding2d) {
    super('ReflectionPad2d', padding, 'reflect');
  }
}

/** Zero padding, PyTorch `nn.ZeroPad2d`. */
export class ZeroPad2d extends Pad2dLayer {
  constructor(padding: Padding2d) {
    super('ZeroPad2d', padding, 'zero');
  }
}

/** 2x2 max pooling with stride 2 (the only size the pool op implements). */
export class MaxPool2d extends Module {
  constructor(readonly kernelSize = 2) {
    super();
    if (kernelSize !== 2) throw new ShapeError(`MaxPool2d: only kernel size 2 is implemented, got ${kernelSize}`);
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x);
  }
}

/** 2x upsampling, nearest or bilinear (PyTorch `nn.Upsample(scale_factor=2, mode=...)`). */
export class Upsample2x extends Module {
  constructor(readonly mode: 'nearest' | 'bilinear' = 'nearest') {
    super();
  }

  forward(x: Tensor): Tensor {
    return this.mode === 'nearest' ? upsampleNearest2x(x) : upsampleBilinear2x(x);
  }
}

/** Returns its input (PyTorch `nn.Identity`). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export interface DropoutOptions {
  /** Seed (or generator) of the mask stream (default 0). */
  seed?: SeedLike;
}

/**
 * Dropout: in training, zeroes elements with probability p and scales the rest by 1/(1-p); in
 * evaluation returns its input. Each training call draws a fresh mask seed from the layer's own
 * generator, so masks differ from step to step and repeat exactly for the same seed.
 */
export class Dropout extends Module {
  private rng: Rng;

  constructor(readonly p = 0.5, o: DropoutOptions = {}) {
    super();
    if (!(p >= 0 && p < 1)) throw new ShapeError(`Dropout: p must be in [0, 1), got ${p}`);
    this.rng = toRng(o.seed);
  }

  /** Restarts the mask stream (e.g. to replay a run from a checkpoint). */
  reseed(seed: SeedLike): void {
    this.rng = toRng(seed);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    return dropout(x, this.p, this.rng.nextU32(), true);
  }
}

/**
 * Runs its children in order; they are named "0", "1", ... as in PyTorch's nn.Sequential.
 * Intermediate results are released as soon as the next layer has consumed them (the autograd
 * graph keeps what backward needs), so a forward pass holds only a few activations at a time.
 */
export class Sequential extends Module {
  private readonly layers: Module[] = [];

  constructor(...layers: Module[]) {
    super();
    for (const l of layers) this.append(l);
  }

  append(layer: Module): this {
    this.registerModule(String(this.layers.length), layer);
    this.layers.push(layer);
    return this;
  }

  get length(): number {
    return this.layers.length;
  }

  /** The i-th layer. */
  at(i: number): Module {
    const l = this.layers[i];
    if (!l) throw new RangeError(`Sequential: no layer ${i} (length ${this.layers.length})`);
    return l;
  }

  /**
   * Runs the layers; with `residual`, returns residual + layers(x). A norm layer followed by ReLU
   * or LeakyReLU (slope >= 0) runs as one fused op, and so does a last norm layer with the residual
   * add; a padding layer (the same on both sides) followed by an unpadded Conv2d runs as one
   * convolution that pads in its index math, and a Conv2d followed by Tanh or LeakyReLU (slope
   * >= 0) applies it in its kernel. The same values as the layers one by one, in fewer
   * kernel launches.
   */
  forward(x: Tensor, residual?: Tensor): Tensor {
    let cur = x;
    let fusedResidual = false;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!;
      const after = this.layers[i + 1];
      let next: Tensor;
      const pad = layer instanceof Pad2dLayer && after instanceof Conv2d && after.padding === 0 ? layer.symmetric() : null;
      if (pad && after instanceof Conv2d && layer instanceof Pad2dLayer) {
        const act = convEpilogueOf(this.layers[i + 2]);
        next = after.forwardPadded(cur, pad, layer.mode, act ?? {});
        i += act ? 2 : 1;
      } else if (layer instanceof Conv2d && convEpilogueOf(after)) {
        next = layer.forwardWith(cur, convEpilogueOf(after)!);
        i++;
      } else if (isNorm(layer) && (after instanceof ReLU || (after instanceof LeakyReLU && after.negativeSlope >= 0))) {
        next = layer.forwardWith(cur, after instanceof ReLU ? { activation: 'relu' } : { activation: 'leakyRelu', negativeSlope: after.negativeSlope });
        i++;
      } else if (residual && isNorm(layer) && after === undefined) {
        next = layer.forwardWith(cur, { residual });
        fusedResidual = true;
      } else {
        next = layer.forward(cur);
      }
      if (cur !== x && cur !== next) cur.dispose();
      cur = next;
    }
    if (!residual || fusedResidual) return cur;
    const out = add(residual, cur);
    if (cur !== x) cur.dispose();
    return out;
  }
}

function isNorm(m: Module): m is BatchNorm2d | InstanceNorm2d {
  return m instanceof BatchNorm2d || m instanceof InstanceNorm2d;
}
