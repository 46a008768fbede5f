/**
 * Centralized pix2pix training (the baseline AsynDGAN is compared with): one generator and one
 * discriminator in one process. The iteration is built from the same two halves the federated
 * node uses (gan.ts), so the two systems compute the same thing.
 */
import { Adam, backward, tidy, type Tensor } from '../engine/index.js';
import { PatchDiscriminator, ResnetGenerator, type NormKind } from '../models/index.js';
import { discriminatorStep, generatorGradient } from './gan.js';

export interface GanConfig {
  /** Generator filters (reference 64) and residual blocks (reference 9). */
  ngf: number;
  blocks: number;
  /** Discriminator filters (reference 64) and stride-2 layers (reference 3). */
  ndf: number;
  dLayers: number;
  norm: NormKind;
  dropout: boolean;
  lambdaL1: number;
  lr: number;
  beta1: number;
  /** Total iterations, the last `decayIters` of which decay the learning rate linearly to 0. */
  iters: number;
  decayIters: number;
  seed: number;
}

export const DEFAULT_GAN_CONFIG: GanConfig = {
  ngf: 64,
  blocks: 9,
  ndf: 64,
  dLayers: 3,
  norm: 'batch',
  dropout: true,
  lambdaL1: 100,
  lr: 2e-4,
  beta1: 0.5,
  iters: 200,
  decayIters: 100,
  seed: 1,
};

/** Learning rate at iteration `iter` (0-based): constant, then linear decay to 0 (pix2pix 'linear'). */
export function learningRateAt(cfg: Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>, iter: number): number {
  const constant = cfg.iters - cfg.decayIters;
  if (iter < constant) return cfg.lr;
  return cfg.lr * Math.max(0, 1 - (iter - constant + 1) / (cfg.decayIters + 1));
}

export function makeGenerator(cfg: GanConfig, inChannels: number, outChannels: number): ResnetGenerator {
  return new ResnetGenerator(inChannels, outChannels, {
    ngf: cfg.ngf,
    blocks: cfg.blocks,
    norm: cfg.norm,
    dropout: cfg.dropout,
    seed: cfg.seed,
  });
}

export function makeDiscriminator(cfg: GanConfig, inChannels: number, seed: number): PatchDiscriminator {
  return new PatchDiscriminator(inChannels, { ndf: cfg.ndf, layers: cfg.dLayers, norm: cfg.norm, seed });
}

export interface StepLosses {
  dReal: Tensor;
  dFake: Tensor;
  gGan: Tensor;
  gL1: Tensor;
}

export class Pix2pixTrainer {
  readonly generator: ResnetGenerator;
  readonly discriminator: PatchDiscriminator;
  readonly optimizerG: Adam;
  readonly optimizerD: Adam;
  iter = 0;

  constructor(
    readonly config: GanConfig,
    readonly conditionChannels: number,
    readonly imageChannels: number,
  ) {
    this.generator = makeGenerator(config, conditionChannels, imageChannels);
    this.discriminator = makeDiscriminator(config, conditionChannels + imageChannels, config.seed + 1);
    const adam = { lr: config.lr, betas: [config.beta1, 0.999] as [number, number] };
    this.optimizerG = new Adam(this.generator.namedParameters().map(([name, tensor]) => ({ name, tensor })), adam);
    this.optimizerD = new Adam(this.discriminator.namedParameters().map(([name, tensor]) => ({ name, tensor })), adam);
  }

  /** One iteration on a batch; returns the losses as GPU scalars (nothing is read back). */
  step(mask: Tensor, real: Tensor): StepLosses {
    const lr = learningRateAt(this.config, this.iter);
    this.optimizerG.lr = lr;
    this.optimizerD.lr = lr;
    const losses = tidy(() => {
      this.optimizerG.zeroGrad();
      const fake = this.generator.forward(mask);
      const d = discriminatorStep(this.discriminator, this.optimizerD, mask, real, fake);
      const g = generatorGradient(this.discriminator, mask, real, fake, { lambdaL1: this.config.lambdaL1 });
      backward(fake, g.gradFake);
      g.gradFake.dispose();
      this.optimizerG.step();
      return { ...d, gGan: g.gGan, gL1: g.gL1 };
    });
    this.iter++;
    return losses;
  }
}
