/**
 * The PatchGAN discriminator (networks.py NLayerDiscriminator), with the reference's names:
 *
 *   model.0  Conv2d(in, ndf, 4, s2, p1) (bias)         model.1 LeakyReLU(0.2)
 *   for n in 1..layers-1:  Conv2d(ndf*m', ndf*m, 4, s2, p1), norm, LeakyReLU(0.2)   (m = min(2^n, 8))
 *   Conv2d(ndf*m', ndf*min(2^layers, 8), 4, s1, p1), norm, LeakyReLU(0.2)
 *   Conv2d(ndf*min(2^layers, 8), 1, 4, s1, p1) (bias)  -> one logit per patch
 *
 * With 3 layers, a 256x256 input gives a 30x30 map (each logit sees a 70x70 patch). Convolutions
 * followed by a norm have a bias only with instance norm (the reference `use_bias`).
 */
import { ShapeError, type Tensor } from '../engine/index.js';
import { Conv2d, LeakyReLU, Sequential, type InitOptions } from './layers.js';
import { Module, toRng, type SeedLike } from './module.js';
import { normLayer, type NormKind } from './resnet-generator.js';

export interface PatchDiscriminatorOptions {
  /** Filters of the first convolution (default 64). */
  ndf?: number;
  /** Stride-2 convolutions (default 3). */
  layers?: number;
  norm?: NormKind;
  seed?: SeedLike;
  /** Standard deviation of the N(0, std) initialization (default 0.02). */
  initStd?: number;
}

const KW = 4;
const PADW = 1;
const SLOPE = 0.2;

/** Output side of the PatchGAN for an input side `n`. */
export function patchOutputSize(n: number, layers = 3): number {
  let s = n;
  for (let i = 0; i < layers; i++) s = Math.floor((s + 2 * PADW - KW) / 2) + 1;
  for (let i = 0; i < 2; i++) s = s + 2 * PADW - KW + 1;
  return s;
}

export class PatchDiscriminator extends Module {
  readonly model: Sequential;
  readonly ndf: number;
  readonly layers: number;
  readonly norm: NormKind;

  constructor(readonly inChannels: number, o: PatchDiscriminatorOptions = {}) {
    super();
    const ndf = (this.ndf = o.ndf ?? 64);
    const layers = (this.layers = o.layers ?? 3);
    const norm = (this.norm = o.norm ?? 'batch');
    if (!Number.isInteger(layers) || layers < 1) throw new ShapeError(`PatchDiscriminator: layers must be >= 1, got ${layers}`);
    const init: InitOptions = { seed: toRng(o.seed), std: o.initStd ?? 0.02 };
    const bias = norm === 'instance';
    const m = new Sequential(
      new Conv2d(inChannels, ndf, KW, { stride: 2, padding: PADW, ...init }),
      new LeakyReLU(SLOPE),
    );
    let mult = 1;
    for (let n = 1; n < layers; n++) {
      const prev = mult;
      mult = Math.min(2 ** n, 8);
      m.append(new Conv2d(ndf * prev, ndf * mult, KW, { stride: 2, padding: PADW, bias, ...init }));
      m.append(normLayer(norm, ndf * mult, init));
      m.append(new LeakyReLU(SLOPE));
    }
    const prev = mult;
    mult = Math.min(2 ** layers, 8);
    m.append(new Conv2d(ndf * prev, ndf * mult, KW, { stride: 1, padding: PADW, bias, ...init }));
    m.append(normLayer(norm, ndf * mult, init));
    m.append(new LeakyReLU(SLOPE));
    m.append(new Conv2d(ndf * mult, 1, KW, { stride: 1, padding: PADW, ...init }));
    this.model = this.registerModule('model', m);
    this.nameTensors();
  }

  /** [N, in, H, W] -> logits [N, 1, h, w] (h = patchOutputSize(H)). */
  forward(x: Tensor): Tensor {
    const [, c, h, w] = x.shape;
    if (x.shape.length !== 4 || c !== this.inChannels) {
      throw new ShapeError(`PatchDiscriminator: expected input [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`);
    }
    if (patchOutputSize(h!, this.layers) < 1 || patchOutputSize(w!, this.layers) < 1) {
      throw new ShapeError(`PatchDiscriminator: input ${h}x${w} is too small for ${this.layers} layers`);
    }
    return this.model.forward(x);
  }
}
