/**
 * The segmentation U-Net used to evaluate synthetic images (the reference models/UNet.py), made
 * configurable in depth and width. Names follow the reference, so with depth 4 and width 64 a
 * state dict maps one to one onto its PyTorch UNet:
 *
 *   c1..c<depth>   ConvDownBlock: conv1, conv2 (each `conv` 3x3 p1 -> ReLU -> `norm`), then 2x2 max pool
 *   cu             the bottleneck ConvDownBlock (its pooled output unused), then dropout 0.5
 *   u<depth+1>..u<2 depth>  ConvUpBlock: `up` (ConvTranspose2d k2 s2 halving the channels, or
 *                  bilinear 2x upsampling), concatenation with the skip, conv1, conv2
 *   ce             1x1 Conv2d -> class logits
 *
 * As in the reference, each 3x3 block is conv -> ReLU -> norm, convolutions have biases, and the
 * weights keep PyTorch's default initialization (option `init: 'normal'` for N(0, 0.02)).
 * Widths: c_i has width * 2^(i-1) channels, cu width * 2^depth.
 */
import { ShapeError, concat, relu, type Tensor } from '../engine/index.js';
import {
  Conv2d, ConvTranspose2d, Dropout, MaxPool2d, Upsample2x, type InitOptions, type InitScheme,
} from './layers.js';
import { Module, toRng, type SeedLike } from './module.js';
import { normLayer, type NormKind } from './resnet-generator.js';

/** 3x3 convolution (padding 1), ReLU, normalization: the reference `dilated_conv` (dilation 1). */
export class ConvReluNorm extends Module {
  readonly conv: Conv2d;
  readonly norm: Module;

  constructor(inChannels: number, outChannels: number, norm: NormKind, init: InitOptions) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(inChannels, outChannels, 3, { padding: 1, ...init }));
    this.norm = this.registerModule('norm', normLayer(norm, outChannels, init));
  }

  forward(x: Tensor): Tensor {
    const c = this.conv.forward(x);
    const a = relu(c);
    c.dispose();
    const y = this.norm.forward(a);
    a.dispose();
    return y;
  }
}

/** Two ConvReluNorm blocks and a 2x2 max pool; `features()` gives the block output before pooling. */
export class ConvDownBlock extends Module {
  readonly conv1: ConvReluNorm;
  readonly conv2: ConvReluNorm;
  readonly pool: MaxPool2d;

  constructor(inChannels: number, outChannels: number, norm: NormKind, init: InitOptions) {
    super();
    this.conv1 = this.registerModule('conv1', new ConvReluNorm(inChannels, outChannels, norm, init));
    this.conv2 = this.registerModule('conv2', new ConvReluNorm(outChannels, outChannels, norm, init));
    this.pool = this.registerModule('pool', new MaxPool2d(2));
  }

  /** The features passed to the skip connection. */
  features(x: Tensor): Tensor {
    const a = this.conv1.forward(x);
    const b = this.conv2.forward(a);
    a.dispose();
    return b;
  }

  /** The pooled features (use `features()` for the skip). */
  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const p = this.pool.forward(f);
    f.dispose();
    return p;
  }
}

export type UpsampleKind = 'transposed' | 'bilinear';

/** Upsampling, concatenation with the skip features, two ConvReluNorm blocks. */
export class ConvUpBlock extends Module {
  readonly up: Module;
  readonly conv1: ConvReluNorm;
  readonly conv2: ConvReluNorm;

  constructor(inChannels: number, outChannels: number, norm: NormKind, upsample: UpsampleKind, init: InitOptions) {
    super();
    let upChannels: number;
    if (upsample === 'transposed') {
      upChannels = Math.floor(inChannels / 2);
      this.up = this.registerModule('up', new ConvTranspose2d(inChannels, upChannels, 2, { stride: 2, ...init }));
    } else {
      upChannels = inChannels;
      this.up = this.registerModule('up', new Upsample2x('bilinear'));
    }
    this.conv1 = this.registerModule('conv1', new ConvReluNorm(upChannels + outChannels, outChannels, norm, init));
    this.conv2 = this.registerModule('conv2', new ConvReluNorm(outChannels, outChannels, norm, init));
  }

  forward(x: Tensor, skip?: Tensor): Tensor {
    if (!skip) throw new Error('ConvUpBlock.forward(x, skip): the skip features are required');
    const u = this.up.forward(x);
    if (u.shape[2] !== skip.shape[2] || u.shape[3] !== skip.shape[3]) {
      throw new ShapeError(`ConvUpBlock: upsampled [${u.shape.join(', ')}] and skip [${skip.shape.join(', ')}] differ in size`);
    }
    const cat = concat([u, skip], 1);
    if (u !== x) u.dispose();
    const a = this.conv1.forward(cat);
    cat.dispose();
    const b = this.conv2.forward(a);
    a.dispose();
    return b;
  }
}

export interface UNetOptions {
  /** Number of 2x2 poolings (default 4, as the reference). */
  depth?: number;
  /** Channels of the first block (default 32; the reference uses 64). */
  width?: number;
  /** Normalization (default 'batch', as the reference). */
  norm?: NormKind;
  upsample?: UpsampleKind;
  /** Dropout probability after the bottleneck (default 0.5, as the reference; 0 disables). */
  dropout?: number;
  /** 'pytorch' (default, as the reference U-Net) or 'normal' N(0, 0.02). */
  init?: InitScheme;
  seed?: SeedLike;
}

export class UNet extends Module {
  readonly depth: number;
  readonly width: number;
  private readonly downs: ConvDownBlock[] = [];
  private readonly ups: ConvUpBlock[] = [];
  readonly cu: ConvDownBlock;
  readonly drop: Dropout;
  readonly ce: Conv2d;

  constructor(readonly inChannels: number, readonly numClasses: number, o: UNetOptions = {}) {
    super();
    const depth = (this.depth = o.depth ?? 4);
    const width = (this.width = o.width ?? 32);
    if (!Number.isInteger(depth) || depth < 1) throw new ShapeError(`UNet: depth must be >= 1, got ${depth}`);
    const norm = o.norm ?? 'batch';
    const upsample = o.upsample ?? 'transposed';
    const rng = toRng(o.seed);
    const dropSeed = rng.nextU32();
    const init: InitOptions = { seed: rng, init: o.init ?? 'pytorch' };
    let ch = inChannels;
    for (let i = 0; i < depth; i++) {
      const out = width * 2 ** i;
      this.downs.push(this.registerModule(`c${i + 1}`, new ConvDownBlock(ch, out, norm, init)));
      ch = out;
    }
    this.cu = this.registerModule('cu', new ConvDownBlock(ch, width * 2 ** depth, norm, init));
    ch = width * 2 ** depth;
    for (let i = 0; i < depth; i++) {
      const out = width * 2 ** (depth - 1 - i);
      this.ups.push(this.registerModule(`u${depth + 1 + i}`, new ConvUpBlock(ch, out, norm, upsample, init)));
      ch = out;
    }
    this.ce = this.registerModule('ce', new Conv2d(ch, numClasses, 1, init));
    this.drop = new Dropout(o.dropout ?? 0.5, { seed: dropSeed });
    this.registerModule('drop', this.drop);
    this.nameTensors();
  }

  /** [N, in, H, W] -> logits [N, classes, H, W]; H and W must be multiples of 2^depth. */
  forward(x: Tensor): Tensor {
    const [, c, h, w] = x.shape;
    const f = 2 ** this.depth;
    if (x.shape.length !== 4 || c !== this.inChannels) {
      throw new ShapeError(`UNet: expected input [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    if (h! % f !== 0 || w! % f !== 0) throw new ShapeError(`UNet: H and W must be multiples of ${f} (depth ${this.depth}), got ${h}x${w}`);
    const skips: Tensor[] = [];
    let cur = x;
    for (const down of this.downs) {
      const feat = down.features(cur);
      const pooled = down.pool.forward(feat);
      if (cur !== x) cur.dispose();
      skips.push(feat);
      cur = pooled;
    }
    const bottom = this.cu.features(cur);
    if (cur !== x) cur.dispose();
    cur = this.drop.forward(bottom);
    if (cur !== bottom) bottom.dispose();
    for (const up of this.ups) {
      const skip = skips.pop()!;
      const next = up.forward(cur, skip);
      cur.dispose();
      skip.dispose();
      cur = next;
    }
    const logits = this.ce.forward(cur);
    cur.dispose();
    return logits;
  }
}
