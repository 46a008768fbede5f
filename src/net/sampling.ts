/**
 * Which masks go into a round (how the replies are then combined is aggregate.ts).
 * Pure functions plus a small seedable RNG whose state is checkpointed, so a resumed
 * server draws the same sequence it would have drawn.
 */
import { Rng } from '../engine/index.js';
import type { SamplingMode } from './protocol.js';

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
