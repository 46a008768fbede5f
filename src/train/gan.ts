/**
 * The two halves of one AsynDGAN / pix2pix iteration, written once and used both by the
 * centralized trainer and by the federated discriminator node:
 *
 *  - `discriminatorsStep`: one Adam step of each discriminator on (mask, real) vs (mask, fake);
 *  - `generatorGradients`: the generator's loss on the fakes (GAN BCE-with-logits, averaged over
 *    the discriminators, + lambda x L1) and its gradient with respect to the fake images, which is
 *    all a node ever returns.
 *
 * A node may hold only some modalities (image channels). Each of its discriminators then sees the
 * mask plus a subset of channels (`channels`: one joint D on every held channel, or one D per held
 * modality), and L1 runs on the held channels only, so d(loss)/d(fake) is exactly 0 on the others.
 * `discriminatorStep` and `generatorGradient` are the one-discriminator, all-channels case.
 *
 * The generator side then calls `backward(fake, gradFake)`: centralized training and the
 * federated protocol run the very same arithmetic.
 */
import {
  add, backward, bceWithLogits, concat, detach, l1Loss, scale, slice, tidy, type Adam, type Tensor,
} from '../engine/index.js';
import type { Module } from '../models/module.js';

export interface GanLossOptions {
  /** Weight of the L1 term (pix2pix / AsynDGAN default 100). */
  lambdaL1: number;
  /** Modality channels of the image this node holds, for L1 on a subset (default: all). */
  l1Channels?: readonly number[];
}

/** One discriminator and the image channels it judges. */
export interface DiscriminatorUnit {
  module: Module;
  optimizer: Adam;
  /**
   * Channels (dim 1 of real and fake) this discriminator sees after the mask, in this order;
   * all channels when omitted. Its input has mask channels + channels.length channels.
   */
  channels?: readonly number[];
}

/** Loss values as GPU scalars (read them only when you need them). */
export interface DiscriminatorLosses {
  /** BCE of D on real against 1 (mean over the discriminators). */
  dReal: Tensor;
  /** BCE of D on fake against 0 (mean over the discriminators). */
  dFake: Tensor;
}

export interface GeneratorGradient {
  /** d(loss_G)/d(fake), same shape as the fakes. Owned by the caller (not tracked by scopes): dispose it. */
  gradFake: Tensor;
  /** GAN loss (mean over the discriminators). */
  gGan: Tensor;
  /** L1 (mean over the selected channels), not multiplied by lambda. */
  gL1: Tensor;
}

function setRequiresGrad(module: Module, on: boolean): void {
  for (const p of module.parameters()) p.requiresGrad = on;
}

function isAllChannels(channels: readonly number[], c: number): boolean {
  return channels.length === c && channels.every((ch, i) => ch === i);
}

/**
 * Channels `channels` of x [N, C, ...] along dim 1, in that order, as [N, channels.length, ...]
 * (x itself when `channels` is undefined or 0..C-1). Differentiable: the gradient of a channel
 * that is not selected is exactly 0.
 */
export function selectChannels(x: Tensor, channels: readonly number[] | undefined): Tensor {
  const c = x.shape[1];
  if (c === undefined) throw new Error(`selectChannels: input [${x.shape.join(', ')}] has no channel dim`);
  if (!channels || isAllChannels(channels, c)) return x;
  if (channels.length === 0) throw new Error('selectChannels: empty channel selection');
  for (const ch of channels) {
    if (!Number.isInteger(ch) || ch < 0 || ch >= c) {
      throw new Error(`selectChannels: channel ${ch} out of range for [${x.shape.join(', ')}]`);
    }
  }
  // One slice per run of consecutive channels.
  const parts: Tensor[] = [];
  let start = channels[0]!;
  let end = start + 1;
  for (const ch of channels.slice(1)) {
    if (ch === end) {
      end++;
      continue;
    }
    parts.push(slice(x, 1, start, end));
    start = ch;
    end = ch + 1;
  }
  parts.push(slice(x, 1, start, end));
  return parts.length === 1 ? parts[0]! : concat(parts, 1);
}

/** Mean of scalar losses (the tensor itself for one). */
function meanOf(terms: readonly Tensor[]): Tensor {
  if (terms.length === 1) return terms[0]!;
  let sum = terms[0]!;
  for (const t of terms.slice(1)) sum = add(sum, t);
  return scale(sum, 1 / terms.length);
}

function checkUnits(op: string, units: readonly unknown[]): void {
  if (units.length === 0) throw new Error(`${op}: no discriminators`);
}

/**
 * One update of every discriminator: D_k minimizes 0.5 * (BCE(D_k(m, real_k), 1) + BCE(D_k(m, fake_k), 0)),
 * where x_k is x restricted to D_k's channels; each takes a step with its own optimizer.
 * `real` may hold anything on channels no discriminator sees.
 */
export function discriminatorsStep(
  units: readonly DiscriminatorUnit[],
  mask: Tensor,
  real: Tensor,
  fake: Tensor,
): DiscriminatorLosses {
  checkUnits('discriminatorsStep', units);
  for (const u of units) {
    setRequiresGrad(u.module, true);
    u.optimizer.zeroGrad();
  }
  const losses = tidy(() => {
    const fakeD = detach(fake);
    const reals: Tensor[] = [];
    const fakes: Tensor[] = [];
    let total: Tensor | null = null;
    for (const u of units) {
      const predReal = u.module.forward(concat([mask, selectChannels(real, u.channels)], 1));
      const dReal = bceWithLogits(predReal, 1);
      const predFake = u.module.forward(concat([mask, selectChannels(fakeD, u.channels)], 1));
      const dFake = bceWithLogits(predFake, 0);
      // Parameters are disjoint, so one backward of the sum gives each D its own loss's gradient.
      const own = scale(add(dReal, dFake), 0.5);
      total = total ? add(total, own) : own;
      reals.push(dReal);
      fakes.push(dFake);
    }
    backward(total!);
    return { dReal: detach(meanOf(reals)), dFake: detach(meanOf(fakes)) };
  });
  for (const u of units) u.optimizer.step();
  return losses;
}

/**
 * The generator's loss on `fake` and its gradient with respect to `fake`:
 * mean_k BCE(D_k(m, fake_k), 1) + lambda * L1(fake, real) on `l1Channels` (default all).
 * The discriminators' weights are frozen for this pass (no gradient is computed for them).
 */
export function generatorGradients(
  units: readonly Pick<DiscriminatorUnit, 'module' | 'channels'>[],
  mask: Tensor,
  real: Tensor,
  fake: Tensor,
  options: GanLossOptions,
): GeneratorGradient {
  checkUnits('generatorGradients', units);
  for (const u of units) setRequiresGrad(u.module, false);
  const leaf = detach(fake);
  leaf.requiresGrad = true;
  try {
    const result = tidy(() => {
      const gans = units.map((u) => bceWithLogits(u.module.forward(concat([mask, selectChannels(leaf, u.channels)], 1)), 1));
      const gGan = meanOf(gans);
      const l1 = l1Loss(leaf, real, options.l1Channels ? { channels: options.l1Channels } : undefined);
      backward(add(gGan, scale(l1, options.lambdaL1)));
      return { gGan: detach(gGan), gL1: detach(l1) };
    });
    const gradFake = leaf.grad!;
    leaf.grad = null;
    return { gradFake, ...result };
  } finally {
    for (const u of units) setRequiresGrad(u.module, true);
    leaf.dispose();
  }
}

/** One discriminator update on all channels: loss_D = 0.5 * (BCE(D(m, real), 1) + BCE(D(m, fake), 0)). */
export function discriminatorStep(
  d: Module,
  optimizer: Adam,
  mask: Tensor,
  real: Tensor,
  fake: Tensor,
): DiscriminatorLosses {
  return discriminatorsStep([{ module: d, optimizer }], mask, real, fake);
}

/**
 * The generator's loss on `fake` against one discriminator on all channels and its gradient
 * with respect to `fake` (D's weights are frozen for this pass).
 */
export function generatorGradient(
  d: Module,
  mask: Tensor,
  real: Tensor,
  fake: Tensor,
  options: GanLossOptions,
): GeneratorGradient {
  return generatorGradients([{ module: d }], mask, real, fake, options);
}
