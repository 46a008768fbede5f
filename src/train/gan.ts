/**
 * The two halves of one AsynDGAN / pix2pix iteration, written once and used both by the
 * centralized trainer and by the federated discriminator node:
 *
 *  - `discriminatorStep`: one Adam step of D on (mask, real) vs (mask, fake);
 *  - `generatorGradient`: the generator's loss on the fakes (GAN BCE-with-logits + lambda x L1)
 *    and its gradient with respect to the fake images, which is all a node ever returns.
 *
 * The generator side then calls `backward(fake, gradFake)`: centralized training and the
 * federated protocol run the very same arithmetic.
 */
import {
  add, backward, bceWithLogits, concat, detach, l1Loss, scale, tidy, type Tensor,
} from '../engine/index.js';
import type { Adam } from '../engine/optim.js';
import type { Module } from '../models/module.js';

export interface GanLossOptions {
  /** Weight of the L1 term (pix2pix / AsynDGAN default 100). */
  lambdaL1: number;
  /** Modality channels of the image this node holds, for L1 on a subset (default: all). */
  l1Channels?: number[];
}

/** Loss values as GPU scalars (read them only when you need them). */
export interface DiscriminatorLosses {
  dReal: Tensor;
  dFake: Tensor;
}

export interface GeneratorGradient {
  /** d(loss_G)/d(fake), same shape as the fakes. Owned by the caller (not tracked by scopes): dispose it. */
  gradFake: Tensor;
  gGan: Tensor;
  gL1: Tensor;
}

function setRequiresGrad(module: Module, on: boolean): void {
  for (const p of module.parameters()) p.requiresGrad = on;
}

/** One discriminator update: loss_D = 0.5 * (BCE(D(m, real), 1) + BCE(D(m, fake), 0)). */
export function discriminatorStep(
  d: Module,
  optimizer: Adam,
  mask: Tensor,
  real: Tensor,
  fake: Tensor,
): DiscriminatorLosses {
  setRequiresGrad(d, true);
  optimizer.zeroGrad();
  const losses = tidy(() => {
    const predReal = d.forward(concat([mask, real], 1));
    const dReal = bceWithLogits(predReal, 1);
    const predFake = d.forward(concat([mask, detach(fake)], 1));
    const dFake = bceWithLogits(predFake, 0);
    backward(scale(add(dReal, dFake), 0.5));
    return { dReal: detach(dReal), dFake: detach(dFake) };
  });
  optimizer.step();
  return losses;
}

/**
 * The generator's loss on `fake` and its gradient with respect to `fake` (D's weights are
 * frozen for this pass, so no discriminator gradient is computed).
 */
export function generatorGradient(
  d: Module,
  mask: Tensor,
  real: Tensor,
  fake: Tensor,
  options: GanLossOptions,
): GeneratorGradient {
  setRequiresGrad(d, false);
  const leaf = detach(fake);
  leaf.requiresGrad = true;
  const result = tidy(() => {
    const pred = d.forward(concat([mask, leaf], 1));
    const gGan = bceWithLogits(pred, 1);
    const l1 = l1Loss(leaf, real, options.l1Channels ? { channels: options.l1Channels } : undefined);
    backward(add(gGan, scale(l1, options.lambdaL1)));
    return { gGan: detach(gGan), gL1: detach(l1) };
  });
  setRequiresGrad(d, true);
  const gradFake = leaf.grad!;
  leaf.grad = null;
  leaf.dispose();
  return { gradFake, ...result };
}
