/**
 * Which masks go into a round, and how the node gradients are weighted when combined.
 * Pure functions plus a small seedable RNG whose state is checkpointed, so a resumed
 * server draws the same sequence it would have drawn.
 */
import { Rng } from '../data/rng.js';
import type { SamplingMode, WeightingMode } from './protocol.js';

// The project's seeded generator for CPU-side draws (mulberry32, checkpointable 32-bit state).
export { Rng };

/** A node eligible for this round and the keys of its masks. */
export interface SamplingCandidate {
  nodeId: string;
  keys: readonly string[];
}

/** Draw `k` distinct indices from [0, n) (all of them, shuffled, when k >= n). */
function drawDistinct(n: number, k: number, rng: Rng): number[] {
  const m = Math.min(n, k);
  // Partial Fisher-Yates over a sparse map: O(m) memory and time even for huge n.
  const swapped = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    const j = i + rng.int(n - i);
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out.push(vj);
  }
  return out;
}

/**
 * Pick the keys each node is asked about this round.
 *  - 'balance': `batchSize` masks from every candidate (fewer if it has fewer), as in the
 *    AsynDGAN paper's one-batch-per-node sampling.
 *  - 'uniform': `batchSize` masks from the union of all candidates' masks, so a node's share
 *    is proportional to its mask count; nodes that draw nothing get no request.
 * Returns only nodes with at least one key.
 */
export function sampleRound(mode: SamplingMode, candidates: readonly SamplingCandidate[], batchSize: number, rng: Rng): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (mode === 'balance') {
    for (const c of candidates) {
      if (c.keys.length === 0) continue;
      out.set(c.nodeId, drawDistinct(c.keys.length, batchSize, rng).map((i) => c.keys[i]!));
    }
    return out;
  }
  let total = 0;
  for (const c of candidates) total += c.keys.length;
  const picks = drawDistinct(total, batchSize, rng).sort((a, b) => a - b);
  let base = 0;
  let p = 0;
  for (const c of candidates) {
    const end = base + c.keys.length;
    const keys: string[] = [];
    while (p < picks.length && picks[p]! < end) keys.push(c.keys[picks[p++]! - base]!);
    if (keys.length > 0) out.set(c.nodeId, keys);
    base = end;
  }
  return out;
}

/** One reply about to be applied. */
export interface WeightInput {
  /** n_j announced by the node. */
  sampleCount: number;
  /** Samples of this node in the batch the reply answers. */
  batchCount: number;
}

/**
 * Weights (summing to 1) for the replies applied in one generator step.
 *  - 'equal': 1/m each.
 *  - 'samples' with 'balance' sampling: n_j / sum n over the applied replies (the paper's rule).
 *  - 'samples' with 'uniform' sampling: b_j / sum b, the node's share of the sampled batch,
 *    which is already proportional to n_j in expectation (weighting by n_j again would
 *    double-count it). Since each reply is a mean over its b_j samples, this makes the step
 *    the gradient of the mean loss over the whole batch.
 * Normalizing over the replies actually applied keeps the step size stable when some nodes miss
 * a round.
 */
export function combineWeights(inputs: readonly WeightInput[], weighting: WeightingMode, sampling: SamplingMode): number[] {
  if (inputs.length === 0) return [];
  if (weighting === 'equal') return inputs.map(() => 1 / inputs.length);
  const raw = inputs.map((x) => (sampling === 'balance' ? x.sampleCount : x.batchCount));
  const sum = raw.reduce((a, b) => a + b, 0);
  return sum > 0 ? raw.map((r) => r / sum) : inputs.map(() => 1 / inputs.length);
}

/** One reply about to be applied, with the image channels its node holds. */
export interface ChannelWeightInput extends WeightInput {
  /** Channels the node holds (its gradient is zero elsewhere); undefined: all of them. */
  channels?: readonly number[] | undefined;
}

/**
 * Per-channel weights: `out[i][c]` is reply i's weight on image channel c. Each channel is
 * normalized (by `combineWeights`) over the replies whose node holds it, so a channel held by one
 * node of three gets that node's full weight instead of a third: otherwise modalities held by few
 * nodes would learn with a fraction of the step size. Replies not holding c weigh 0 there; a
 * channel nobody holds gets no gradient. When every node holds every channel this is
 * `combineWeights` on each channel (the same numbers).
 */
export function combineChannelWeights(
  inputs: readonly ChannelWeightInput[], imageChannels: number, weighting: WeightingMode, sampling: SamplingMode,
): number[][] {
  const out = inputs.map(() => new Array<number>(imageChannels).fill(0));
  for (let c = 0; c < imageChannels; c++) {
    const holders = inputs.flatMap((x, i) => (x.channels === undefined || x.channels.includes(c) ? [i] : []));
    const w = combineWeights(holders.map((i) => inputs[i]!), weighting, sampling);
    holders.forEach((i, k) => (out[i]![c] = w[k]!));
  }
  return out;
}
