/**
 * Multi-modality bookkeeping for nodes that hold only some of the generator's modalities.
 *
 * The generator always produces all M modalities (image channels, in the server's order). A node
 * holding a subset builds either ONE joint discriminator on (mask + its channels) or, per-modality,
 * one discriminator per held channel on (mask + that channel), each with its own Adam; gan.ts then
 * averages their GAN losses and restricts L1 to the held channels.
 */
import { Adam } from '../engine/index.js';
import type { DiscriminatorUnit } from './gan.js';
import { makeDiscriminator, type GanConfig } from './pix2pix.js';

/**
 * Channel indices (ascending) of the named modalities within `all` (e.g. the server's / data set's
 * modality list). `names` is a list or a comma-separated string; names are matched case-insensitively.
 * Throws on an unknown, duplicate or empty selection.
 */
export function modalityChannels(all: readonly string[], names: readonly string[] | string): number[] {
  const list = (typeof names === 'string' ? names.split(',') : [...names]).map((s) => s.trim()).filter((s) => s.length > 0);
  if (list.length === 0) throw new Error(`no modality named (choose from ${all.join(', ')})`);
  const lower = all.map((m) => m.toLowerCase());
  const seen = new Set<number>();
  for (const name of list) {
    const i = lower.indexOf(name.toLowerCase());
    if (i < 0) throw new Error(`unknown modality "${name}" (the modalities are ${all.join(', ')})`);
    if (seen.has(i)) throw new Error(`modality "${name}" is named twice`);
    seen.add(i);
  }
  return [...seen].sort((a, b) => a - b);
}

/** Modality names of `channels`. */
export function modalityNames(all: readonly string[], channels: readonly number[]): string[] {
  return channels.map((c) => {
    const m = all[c];
    if (m === undefined) throw new Error(`channel ${c} out of range for modalities [${all.join(', ')}]`);
    return m;
  });
}

export interface DiscriminatorLayout {
  /** Channels of the mask (condition) every discriminator sees first. */
  maskChannels: number;
  /** Image channels of the generator output (M). */
  imageChannels: number;
  /** Channels this node holds, ascending; default all. */
  held?: readonly number[];
  /** One discriminator per held channel instead of one joint discriminator. */
  perModality?: boolean;
  /** Seed of the (first) discriminator's weights; per-modality Ds use seed + 7919 * k. */
  seed: number;
}

/**
 * The discriminators of a node, each with its own Adam (lr, beta1 from `cfg`). With every channel
 * held and one joint D this is exactly one `makeDiscriminator(cfg, mask + M, seed)` seeing all
 * channels (`channels` left undefined): the default AsynDGAN node.
 */
export function makeDiscriminatorUnits(cfg: GanConfig, layout: DiscriminatorLayout): DiscriminatorUnit[] {
  const all = [...Array(layout.imageChannels).keys()];
  const held = layout.held ? [...layout.held] : all;
  if (held.length === 0) throw new Error('a node must hold at least one modality');
  held.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c >= layout.imageChannels) {
      throw new Error(`held channel ${c} out of range (the generator makes ${layout.imageChannels})`);
    }
    if (i > 0 && c <= held[i - 1]!) throw new Error(`held channels must be ascending and unique, got [${held.join(', ')}]`);
  });
  const adam = (module: DiscriminatorUnit['module']) =>
    new Adam(module.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: cfg.lr, betas: [cfg.beta1, 0.999] });
  if (!layout.perModality) {
    const module = makeDiscriminator(cfg, layout.maskChannels + held.length, layout.seed);
    const everything = held.length === layout.imageChannels;
    return [{ module, optimizer: adam(module), ...(everything ? {} : { channels: held }) }];
  }
  return held.map((c, k) => {
    const module = makeDiscriminator(cfg, layout.maskChannels + 1, layout.seed + 7919 * k);
    return { module, optimizer: adam(module), channels: [c] };
  });
}
