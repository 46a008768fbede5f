/**
 * One AsynDGAN / pix2pix training iteration on this engine, split into its two halves so that
 * tools/profile.ts can profile each and tools/bench.ts can time them:
 *
 *  - generator step: fake = G(mask); loss = BCE(D([mask, fake]), 1) + lambda * L1(fake, real)
 *    with D frozen; backward through D into G; Adam on G;
 *  - discriminator step: loss = 0.5 * (BCE(D([mask, real]), 1) + BCE(D([mask, fake]), 0)) with the
 *    fake detached; backward; Adam on D.
 *
 * Same arithmetic as src/train/gan.ts (written against the op files directly so that it does not
 * depend on what the engine index re-exports). Nothing is read back: callers sync.
 */
import { backward, noGrad } from '../../src/engine/autograd.js';
import { keep, tidy } from '../../src/engine/scope.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { randn, rand } from '../../src/engine/ops/create.js';
import { add, affine } from '../../src/engine/ops/elementwise.js';
import { concat } from '../../src/engine/ops/concat.js';
import { bceWithLogits, l1Loss } from '../../src/engine/ops/loss.js';
import { Adam } from '../../src/engine/optim.js';
import { PatchDiscriminator } from '../../src/models/patch-discriminator.js';
import { ResnetGenerator, type NormKind } from '../../src/models/resnet-generator.js';

export interface GanShape {
  /** Image side (square), a multiple of 4. */
  size: number;
  batch: number;
  /** Condition (mask) channels: the generator's input. */
  inC: number;
  /** Image channels: the generator's output. */
  outC: number;
  ngf: number;
  ndf: number;
  blocks: number;
  layers: number;
  norm: NormKind;
  lambdaL1: number;
  seed: number;
}

export const DEFAULT_GAN: GanShape = {
  size: 64,
  batch: 1,
  inC: 1,
  outC: 3,
  ngf: 16,
  ndf: 16,
  blocks: 9,
  layers: 3,
  norm: 'batch',
  lambdaL1: 100,
  seed: 1,
};

export interface Gan {
  readonly shape: GanShape;
  readonly g: ResnetGenerator;
  readonly d: PatchDiscriminator;
  readonly optG: Adam;
  readonly optD: Adam;
  readonly mask: Tensor;
  readonly real: Tensor;
  /** Parameter counts. */
  readonly gParams: number;
  readonly dParams: number;
  dispose(): void;
}

/** Builds G, D, their Adam optimizers (lr 2e-4, betas 0.5/0.999) and one fixed batch. */
export function makeGan(s: GanShape): Gan {
  const g = new ResnetGenerator(s.inC, s.outC, { ngf: s.ngf, blocks: s.blocks, norm: s.norm, seed: s.seed });
  const d = new PatchDiscriminator(s.inC + s.outC, { ndf: s.ndf, layers: s.layers, norm: s.norm, seed: s.seed + 1 });
  const optG = new Adam(g.parameters(), { lr: 2e-4, betas: [0.5, 0.999] });
  const optD = new Adam(d.parameters(), { lr: 2e-4, betas: [0.5, 0.999] });
  const mask = keep(rand([s.batch, s.inC, s.size, s.size], s.seed + 2));
  const real = keep(tidy(() => affine(rand([s.batch, s.outC, s.size, s.size], s.seed + 3), 2, -1)));
  const count = (ps: Tensor[]) => ps.reduce((n, p) => n + p.size, 0);
  return {
    shape: s,
    g,
    d,
    optG,
    optD,
    mask,
    real,
    gParams: count(g.parameters()),
    dParams: count(d.parameters()),
    dispose() {
      optG.zeroGrad();
      optD.zeroGrad();
      optG.dispose();
      optD.dispose();
      g.dispose();
      d.dispose();
      mask.dispose();
      real.dispose();
    },
  };
}

function setRequiresGrad(ps: Tensor[], on: boolean): void {
  for (const p of ps) p.requiresGrad = on;
}

/** The fake batch G(mask), without a graph (input of a discriminator step). Caller disposes. */
export function makeFake(gan: Gan): Tensor {
  return keep(noGrad(() => tidy(() => gan.g.forward(gan.mask))));
}

/** One generator update (D frozen). */
export function generatorStep(gan: Gan): void {
  const dParams = gan.d.parameters();
  setRequiresGrad(dParams, false);
  try {
    gan.optG.zeroGrad();
    tidy(() => {
      const fake = gan.g.forward(gan.mask);
      const pred = gan.d.forward(concat([gan.mask, fake], 1));
      const loss = add(bceWithLogits(pred, 1), l1Loss(fake, gan.real, { weight: gan.shape.lambdaL1 }));
      backward(loss);
    });
    gan.optG.step();
  } finally {
    setRequiresGrad(dParams, true);
  }
}

/** One discriminator update on (mask, real) vs (mask, fake); `fake` carries no graph. */
export function discriminatorStep(gan: Gan, fake: Tensor): void {
  gan.optD.zeroGrad();
  tidy(() => {
    const dReal = bceWithLogits(gan.d.forward(concat([gan.mask, gan.real], 1)), 1, { weight: 0.5 });
    const dFake = bceWithLogits(gan.d.forward(concat([gan.mask, fake], 1)), 0, { weight: 0.5 });
    backward(add(dReal, dFake));
  });
  gan.optD.step();
}

/** Nominal multiply-add work of one G forward (2 flops per MAC, convolutions only). */
export function generatorForwardFlops(s: GanShape): number {
  const n = s.batch;
  let f = 0;
  const conv = (ci: number, co: number, k: number, oh: number) => 2 * n * ci * co * k * k * oh * oh;
  f += conv(s.inC, s.ngf, 7, s.size);
  f += conv(s.ngf, 2 * s.ngf, 3, s.size / 2);
  f += conv(2 * s.ngf, 4 * s.ngf, 3, s.size / 4);
  f += 2 * s.blocks * conv(4 * s.ngf, 4 * s.ngf, 3, s.size / 4);
  // Transposed convolutions: each input pixel scatters k*k*co values.
  f += conv(4 * s.ngf, 2 * s.ngf, 3, s.size / 4);
  f += conv(2 * s.ngf, s.ngf, 3, s.size / 2);
  f += conv(s.ngf, s.outC, 7, s.size);
  return f;
}

/** Nominal work of one D forward (convolutions only). */
export function discriminatorForwardFlops(s: GanShape): number {
  const n = s.batch;
  let f = 0;
  let side = s.size;
  let c = s.inC + s.outC;
  let mult = 1;
  const out = (h: number, stride: number) => Math.floor((h + 2 - 4) / stride) + 1;
  side = out(side, 2);
  f += 2 * n * c * s.ndf * 16 * side * side;
  c = s.ndf;
  for (let k = 1; k < s.layers; k++) {
    mult = Math.min(2 ** k, 8);
    side = out(side, 2);
    f += 2 * n * c * s.ndf * mult * 16 * side * side;
    c = s.ndf * mult;
  }
  mult = Math.min(2 ** s.layers, 8);
  side = out(side, 1);
  f += 2 * n * c * s.ndf * mult * 16 * side * side;
  c = s.ndf * mult;
  side = out(side, 1);
  f += 2 * n * c * 16 * side * side;
  return f;
}

/**
 * Nominal flops of the two steps: forward + 2x for backward (data and weight gradients).
 * G step = 3 G + 3 D (D's weight gradient is skipped when frozen: counted as 2 D); D step = 2 x 3 D.
 */
export function stepFlops(s: GanShape): { generator: number; discriminator: number } {
  const g = generatorForwardFlops(s);
  const d = discriminatorForwardFlops(s);
  return { generator: 3 * g + 2 * d, discriminator: 6 * d };
}

/** A standard-normal tensor for benchmarks (kept: dispose it). */
export function input(shape: number[], seed: number): Tensor {
  return keep(randn(shape, seed));
}
