/**
 * The AsynDGAN / pix2pix generator `resnet_9blocks` (networks.py ResnetGenerator and ResnetBlock),
 * with the reference's module names, so that the state dict maps one to one onto PyTorch:
 *
 *   model.0  ReflectionPad2d(3)          model.1  Conv2d(in, ngf, 7)        model.2  norm   model.3 ReLU
 *   model.4  Conv2d(ngf, 2ngf, 3, s2, p1) model.5 norm  model.6 ReLU
 *   model.7  Conv2d(2ngf, 4ngf, 3, s2, p1) model.8 norm model.9 ReLU
 *   model.10 .. model.(9+blocks)  ResnetBlock(4ngf): conv_block = [ReflectionPad2d(1), Conv2d 3x3,
 *            norm, ReLU, (Dropout 0.5), ReflectionPad2d(1), Conv2d 3x3, norm]; out = x + conv_block(x)
 *   then ConvTranspose2d(4ngf, 2ngf, 3, s2, p1, op1), norm, ReLU, ConvTranspose2d(2ngf, ngf, ...),
 *   norm, ReLU, ReflectionPad2d(3), Conv2d(ngf, out, 7) (always with bias), Tanh.
 *
 * Convolutions before a norm layer have a bias only with instance norm (the reference `use_bias`).
 */
import { Rng, ShapeError, type Tensor } from '../engine/index.js';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, InstanceNorm2d, ReflectionPad2d, ReLU, Sequential, Tanh,
  type InitOptions,
} from './layers.js';
import { Module, toRng, type SeedLike } from './module.js';

/** Normalization layer of the pix2pix networks ('batch': BatchNorm2d, 'instance': InstanceNorm2d without affine). */
export type NormKind = 'batch' | 'instance';

/** The reference `get_norm_layer`: BatchNorm2d(affine, running stats) or InstanceNorm2d(affine=False). */
export function normLayer(kind: NormKind, channels: number, init: InitOptions): Module {
  switch (kind) {
    case 'batch':
      return new BatchNorm2d(channels, init);
    case 'instance':
      return new InstanceNorm2d(channels, { affine: false });
    default:
      throw new Error(`unknown norm '${String(kind)}' (expected 'batch' or 'instance')`);
  }
}

export interface ResnetBlockOptions {
  norm?: NormKind;
  dropout?: boolean;
  /** Conv bias (the reference passes use_bias = norm is instance). */
  bias?: boolean;
  /** 'reflect' (the reference default) or 'zero' (padding inside the convolutions). */
  paddingType?: 'reflect' | 'zero';
  seed?: SeedLike;
  /** Seed stream of the dropout masks (default: drawn from `seed`). */
  dropoutSeed?: SeedLike;
}

/** Residual block: out = x + conv_block(x). */
export class ResnetBlock extends Module {
  readonly conv_block: Sequential;

  constructor(readonly dim: number, o: ResnetBlockOptions = {}) {
    super();
    const rng = toRng(o.seed);
    const norm = o.norm ?? 'batch';
    const bias = o.bias ?? norm === 'instance';
    const reflect = (o.paddingType ?? 'reflect') === 'reflect';
    const init: InitOptions = { seed: rng };
    const block = new Sequential();
    for (let half = 0; half < 2; half++) {
      if (reflect) block.append(new ReflectionPad2d(1));
      block.append(new Conv2d(dim, dim, 3, { padding: reflect ? 0 : 1, bias, ...init }));
      block.append(normLayer(norm, dim, init));
      if (half === 0) {
        block.append(new ReLU());
        if (o.dropout) block.append(new Dropout(0.5, { seed: o.dropoutSeed ?? rng.nextU32() }));
      }
    }
    this.conv_block = this.registerModule('conv_block', block);
  }

  forward(x: Tensor): Tensor {
    return this.conv_block.forward(x, x); // the add is fused into the block's last norm
  }
}

export interface ResnetGeneratorOptions {
  /** Filters of the first convolution (default 64). */
  ngf?: number;
  /** Residual blocks (default 9: resnet_9blocks). */
  blocks?: number;
  norm?: NormKind;
  /** Dropout 0.5 inside the residual blocks (the reference `use_dropout`; AsynDGAN trains with it). */
  dropout?: boolean;
  paddingType?: 'reflect' | 'zero';
  /** Seed (or generator) of the initial weights; dropout masks get their own stream derived from it. */
  seed?: SeedLike;
  /** Standard deviation of the N(0, std) initialization (default 0.02). */
  initStd?: number;
}

/** Number of stride-2 downsamplings (and upsamplings) in the reference generator. */
const N_DOWNSAMPLING = 2;

export class ResnetGenerator extends Module {
  readonly model: Sequential;
  readonly ngf: number;
  readonly blocks: number;
  readonly norm: NormKind;

  constructor(readonly inChannels: number, readonly outChannels: number, o: ResnetGeneratorOptions = {}) {
    super();
    const ngf = (this.ngf = o.ngf ?? 64);
    const blocks = (this.blocks = o.blocks ?? 9);
    const norm = (this.norm = o.norm ?? 'batch');
    if (!Number.isInteger(blocks) || blocks < 0) throw new ShapeError(`ResnetGenerator: blocks must be >= 0, got ${blocks}`);
    const rng = toRng(o.seed);
    // Dropout masks draw from their own stream so the weights do not depend on the dropout flag.
    const dropRng = new Rng(rng.nextU32());
    const init: InitOptions = { seed: rng, std: o.initStd ?? 0.02 };
    const bias = norm === 'instance';
    const reflect = (o.paddingType ?? 'reflect') === 'reflect';
    const m = new Sequential(
      new ReflectionPad2d(3),
      new Conv2d(inChannels, ngf, 7, { bias, ...init }),
      normLayer(norm, ngf, init),
      new ReLU(),
    );
    for (let i = 0; i < N_DOWNSAMPLING; i++) {
      const mult = 2 ** i;
      m.append(new Conv2d(ngf * mult, ngf * mult * 2, 3, { stride: 2, padding: 1, bias, ...init }));
      m.append(normLayer(norm, ngf * mult * 2, init));
      m.append(new ReLU());
    }
    const mult = 2 ** N_DOWNSAMPLING;
    for (let i = 0; i < blocks; i++) {
      m.append(new ResnetBlock(ngf * mult, {
        norm,
        dropout: o.dropout ?? false,
        bias,
        paddingType: reflect ? 'reflect' : 'zero',
        seed: rng,
        dropoutSeed: dropRng.nextU32(),
      }));
    }
    for (let i = 0; i < N_DOWNSAMPLING; i++) {
      const mul = 2 ** (N_DOWNSAMPLING - i);
      m.append(new ConvTranspose2d(ngf * mul, Math.floor((ngf * mul) / 2), 3, {
        stride: 2, padding: 1, outputPadding: 1, bias, ...init,
      }));
      m.append(normLayer(norm, Math.floor((ngf * mul) / 2), init));
      m.append(new ReLU());
    }
    m.append(new ReflectionPad2d(3));
    m.append(new Conv2d(ngf, outChannels, 7, { bias: true, ...init }));
    m.append(new Tanh());
    this.model = this.registerModule('model', m);
    this.nameTensors();
  }

  /** [N, in, H, W] -> [N, out, H, W] in (-1, 1). H and W must be multiples of 4, at least 8. */
  forward(x: Tensor): Tensor {
    const [, c, h, w] = x.shape;
    if (x.shape.length !== 4 || c !== this.inChannels) {
      throw new ShapeError(`ResnetGenerator: expected input [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    const f = 2 ** N_DOWNSAMPLING;
    if (h! % f !== 0 || w! % f !== 0 || h! < 2 * f || w! < 2 * f) {
      throw new ShapeError(`ResnetGenerator: H and W must be multiples of ${f} and at least ${2 * f} (reflection padding of the blocks), got ${h}x${w}`);
    }
    return this.model.forward(x);
  }
}
