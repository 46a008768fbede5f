/**
 * FedAvg's aggregation, as pure functions on plain Float32Arrays (no engine, no sockets).
 *
 * Federated averaging (McMahan et al., "Communication-Efficient Learning of Deep Networks from
 * Decentralized Data", AISTATS 2017): after E local steps every client k sends its weights w_k; the
 * server's new global model is sum_k (n_k / sum_j n_j) w_k, n_k the client's sample count. The
 * weight-sharing federated GAN (the "FLGAN" row of the DSL comparison, Chang et al., Nature
 * Communications 2023; the same design as Rasouli, Sun and Rajagopal, "FedGAN: Federated Generative
 * Adversarial Networks for Distributed Data", 2020; which exact paper DSL's FLGAN cites was not
 * checked here) applies it to both the generator and the discriminator of every site, which is
 * what the server does with each model separately.
 *
 * Defences, because one hostile site must not poison the average (the AsynDGAN server's
 * equivalents are in src/net/aggregate.ts, whose share cap and median helpers are reused):
 *  - a tensor with NaN/Inf or a wrong shape never reaches here (validate.ts refuses the frame);
 *  - every update is clipped in weight space: its delta d_k = w_k - w_global is scaled down to at
 *    most `normBoundFactor` x the lower median of the round's delta norms, and to at most
 *    `maxRelativeDelta` x ||w_global|| (which also bounds a lone update). Scaling a delta keeps
 *    w' = w_global + s d_k on the segment between the two models, so e.g. batch-norm variances
 *    stay positive;
 *  - no site's share exceeds `maxNodeShare` when enough sites answer (capShares), so an inflated
 *    sample count buys at most that share.
 * Sums are accumulated in float64.
 */
import { capShares, clipScale, lowerMedian } from '../net/aggregate.js';

/** Bounds applied to every round's updates. */
export interface FedAvgPolicy {
  /** An update's delta may be at most this multiple of the round's lower-median delta norm. */
  normBoundFactor: number;
  /** ... and at most this multiple of the global model's norm. */
  maxRelativeDelta: number;
  /** Largest share of one site, applied when more than 1 / maxNodeShare sites answer. */
  maxNodeShare: number;
}

export const DEFAULT_FEDAVG_POLICY: Readonly<FedAvgPolicy> = { normBoundFactor: 3, maxRelativeDelta: 0.5, maxNodeShare: 0.5 };

/** One site's contribution to one model. */
export interface ModelUpdate {
  nodeId: string;
  /** n_k: the site's training samples (> 0). */
  sampleCount: number;
  /** Same tensors, in the same order and sizes, as the global model. */
  tensors: readonly Float32Array[];
}

export interface ModelAggregate {
  tensors: Float32Array[];
  /** Share of each update (sums to 1), in the updates' order. */
  shares: number[];
  /** Factor applied to each update's delta (1: not clipped). */
  scales: number[];
  /** ||w_k - w_global|| of each update, before clipping. */
  deltaNorms: number[];
}

/** The averaging weights n_k / sum n, capped at maxNodeShare (see capShares). */
export function sampleShares(sampleCounts: readonly number[], maxNodeShare: number): number[] {
  if (sampleCounts.length === 0) return [];
  for (const n of sampleCounts) {
    if (!Number.isFinite(n) || n <= 0) throw new RangeError(`sample counts must be positive and finite, got ${n}`);
  }
  const total = sampleCounts.reduce((s, n) => s + n, 0);
  return capShares(sampleCounts.map((n) => n / total), maxNodeShare);
}

/** The plain sample-weighted mean sum_k n_k w_k / sum n (no clipping, no cap): the reference. */
export function weightedMean(tensors: readonly (readonly Float32Array[])[], sampleCounts: readonly number[]): Float32Array[] {
  if (tensors.length === 0) throw new RangeError('weightedMean of no models');
  const total = sampleCounts.reduce((s, n) => s + n, 0);
  return tensors[0]!.map((_, t) => {
    const out = new Float32Array(tensors[0]![t]!.length);
    for (let i = 0; i < out.length; i++) {
      let s = 0;
      for (let k = 0; k < tensors.length; k++) s += sampleCounts[k]! * tensors[k]![t]![i]!;
      out[i] = s / total;
    }
    return out;
  });
}

/** ||a - b|| over all tensors (float64). */
export function deltaNorm(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let s = 0;
  for (let t = 0; t < a.length; t++) {
    const x = a[t]!;
    const y = b[t]!;
    for (let i = 0; i < x.length; i++) {
      const d = x[i]! - y[i]!;
      s += d * d;
    }
  }
  return Math.sqrt(s);
}

function modelNorm(a: readonly Float32Array[]): number {
  let s = 0;
  for (const x of a) for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/** Throws a RangeError naming the first tensor of `u` whose size or values do not fit `global`. */
export function checkUpdate(global: readonly Float32Array[], u: ModelUpdate): void {
  if (u.tensors.length !== global.length) throw new RangeError(`${u.nodeId}: ${u.tensors.length} tensors, the model has ${global.length}`);
  u.tensors.forEach((x, t) => {
    if (x.length !== global[t]!.length) throw new RangeError(`${u.nodeId}: tensor ${t} has ${x.length} values, the model's has ${global[t]!.length}`);
    for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) throw new RangeError(`${u.nodeId}: tensor ${t} value ${i} is ${x[i]}`);
  });
  if (!Number.isFinite(u.sampleCount) || u.sampleCount <= 0) throw new RangeError(`${u.nodeId}: sample count ${u.sampleCount}`);
}

/**
 * The new global model from this round's updates (see the module comment): clip each delta, then
 * w = w_global + sum_k share_k s_k (w_k - w_global). Unclipped and uncapped this is exactly
 * weightedMean. With no updates the global model is returned unchanged (copied).
 */
export function fedAvgModel(global: readonly Float32Array[], updates: readonly ModelUpdate[], policy: FedAvgPolicy = DEFAULT_FEDAVG_POLICY): ModelAggregate {
  for (const u of updates) checkUpdate(global, u);
  if (updates.length === 0) return { tensors: global.map((x) => new Float32Array(x)), shares: [], scales: [], deltaNorms: [] };
  const shares = sampleShares(updates.map((u) => u.sampleCount), policy.maxNodeShare);
  const deltaNorms = updates.map((u) => deltaNorm(u.tensors, global));
  const med = lowerMedian(deltaNorms);
  const absolute = policy.maxRelativeDelta * modelNorm(global);
  const bound = Math.min(absolute, med !== undefined && med > 0 ? policy.normBoundFactor * med : Infinity);
  const scales = deltaNorms.map((n) => clipScale(n, bound));
  const tensors = global.map((g, t) => {
    const out = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) {
      const base = g[i]!;
      let s = 0;
      for (let k = 0; k < updates.length; k++) s += shares[k]! * scales[k]! * (updates[k]!.tensors[t]![i]! - base);
      out[i] = base + s;
    }
    return out;
  });
  return { tensors, shares, scales, deltaNorms };
}
