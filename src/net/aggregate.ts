/**
 * How the server combines the nodes' replies into one generator gradient: which late replies
 * are admitted, the weight of each reply (per node and per image channel), the weighted losses,
 * and the defences against a hostile or broken node. Pure functions over plain data (no sockets,
 * no coordinator state), so every rule here is unit-tested on its own (test/net-aggregate.test.ts).
 *
 * The defences (all on by default; `defences: false` restores the undefended rule, for ablations):
 *  - Sample counts come from the masks the server holds for a node, never from the count the node
 *    claims (a claimed 2^53 would otherwise take the whole weight).
 *  - No node's weight exceeds `maxNodeShare` (default 0.5) when at least ceil(1 / maxNodeShare) + 1
 *    replies share a step; the excess is given to the others in proportion to their weights.
 *  - Every reply's L2 norm is bounded by min(`maxReplyNorm`, k x the median per-sample norm of
 *    this round's and recent rounds' replies / sqrt(its batch count)): norm bounding as in Sun et
 *    al. 2019, "Can you really backdoor federated learning?", with the clipping norm set from a
 *    quantile of the observed norms as in Andrew et al. 2021, "Differentially private learning with
 *    adaptive clipping". A reply above its bound is scaled down to it, not dropped. The default,
 *    'clipped-median', uses k = 1: no node pushes harder than the median node. 'mean' uses
 *    k = `normBoundFactor` (default 3), which leaves honest replies untouched (the paper's
 *    weighted mean exactly) but lets a hostile node push up to k times harder: measured in
 *    test/net-hostile.test.ts, x10 replies then cost the honest nodes 11-16% in L1, against
 *    under 10% with 'clipped-median'.
 *  - Norm bounds limit a reply's size, not its direction: a node that sends its gradient flipped
 *    (x(-10)) still pulls the generator away from its data (measured in test/net-hostile.test.ts:
 *    +25% to +125% honest L1 on the mean of four seeds, from none to +500% per run).
 *    'coordinate-median' therefore combines in the generator's parameter space: each reply,
 *    clipped as in 'clipped-median' but unweighted, is a vote; the generator back-propagates every vote on its own and takes the coordinate-wise median of the
 *    parameter gradients (Yin et al. 2018, "Byzantine-robust distributed learning: towards optimal
 *    statistical rates"). With fewer than half of the votes hostile, every coordinate of the step
 *    lies between two honest nodes' values. 'median-trust' goes further: it weighs each vote by
 *    how well it aligns with that median (`medianTrustCoefficients`, after FLTrust), so a vote
 *    pointing away from the others gets no weight at all. Both need 3 or more votes in a step
 *    (the median of two is their mean); with fewer the step falls back to the clipped weighted
 *    mean. Per-channel weights (modalities held by few nodes) do not apply to votes.
 *
 * Why per-sample norms: a reply is the mean over the node's b samples of gradients on disjoint
 * rows, so its norm falls like 1/sqrt(b); `norm * sqrt(b)` is comparable across nodes that were
 * asked for different numbers of samples ('uniform' sampling, nodes with few masks).
 */
import type { Losses, SamplingMode, WeightingMode } from './protocol.js';

// ---- staleness ---------------------------------------------------------------------------

/** Round a late reply answers. */
export interface LateReplyRef {
  round: number;
}

/**
 * Split queued late replies into those joining the step of `round` and those dropped: a reply is
 * admitted when it is at most `maxStaleness` rounds old and its round's batch is still held.
 */
export function admitLateReplies<T extends LateReplyRef>(
  late: readonly T[], round: number, maxStaleness: number, isHeld: (round: number) => boolean,
): { admitted: T[]; dropped: T[] } {
  const admitted: T[] = [];
  const dropped: T[] = [];
  for (const r of late) (round - r.round <= maxStaleness && isHeld(r.round) ? admitted : dropped).push(r);
  return { admitted, dropped };
}

// ---- per-node and per-channel weights ----------------------------------------------------------

/** One reply about to be applied. */
export interface WeightInput {
  /** n_j: the node's sample count (the server derives it from the masks it holds). */
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
  return sum > 0 && Number.isFinite(sum) ? raw.map((r) => r / sum) : inputs.map(() => 1 / inputs.length);
}

/** One reply about to be applied, with the image channels its node holds. */
export interface ChannelWeightInput extends WeightInput {
  /** Channels the node holds (its gradient is zero elsewhere); undefined: all of them. */
  channels?: readonly number[] | undefined;
}

/**
 * Per-channel weights: `out[i][c]` is reply i's weight on image channel c. Each channel is
 * normalized (by `combineWeights`, then `capShares`) over the replies whose node holds it, so a
 * channel held by one node of three gets that node's full weight instead of a third: otherwise
 * modalities held by few nodes would learn with a fraction of the step size. Replies not holding c
 * weigh 0 there; a channel nobody holds gets no gradient. When every node holds every channel this
 * is `combineWeights` on each channel (the same numbers).
 */
export function combineChannelWeights(
  inputs: readonly ChannelWeightInput[], imageChannels: number, weighting: WeightingMode, sampling: SamplingMode, maxShare = 1,
): number[][] {
  const out = inputs.map(() => new Array<number>(imageChannels).fill(0));
  for (let c = 0; c < imageChannels; c++) {
    const holders = inputs.flatMap((x, i) => (x.channels === undefined || x.channels.includes(c) ? [i] : []));
    const w = capShares(combineWeights(holders.map((i) => inputs[i]!), weighting, sampling), maxShare);
    holders.forEach((i, k) => (out[i]![c] = w[k]!));
  }
  return out;
}

/**
 * Cap every weight at `maxShare` and give the excess to the uncapped weights in proportion to
 * their size (water-filling; the result still sums to 1). Only applied when the cap is feasible
 * with room to spare (m > 1 / maxShare): with 2 replies and a cap of 0.5 it would force equal
 * weights, which is 'equal' weighting, not a cap.
 */
export function capShares(weights: readonly number[], maxShare: number): number[] {
  const w = [...weights];
  if (!(maxShare < 1) || w.length * maxShare <= 1) return w;
  const capped = new Set<number>();
  for (let pass = 0; pass < w.length; pass++) {
    const over = w.map((x, i) => (x > maxShare + 1e-12 && !capped.has(i) ? i : -1)).filter((i) => i >= 0);
    if (over.length === 0) break;
    for (const i of over) {
      w[i] = maxShare;
      capped.add(i);
    }
    const free = 1 - capped.size * maxShare;
    const rest = w.reduce((s, x, i) => (capped.has(i) ? s : s + x), 0);
    for (let i = 0; i < w.length; i++) {
      if (!capped.has(i)) w[i] = rest > 0 ? (w[i]! * free) / rest : free / (w.length - capped.size);
    }
  }
  return w;
}

// ---- norm bounds -------------------------------------------------------------------------------

/** L2 norm, accumulated in float64 (a reply of 1e30s has a finite norm there). */
export function l2Norm(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s);
}

/** Lower median (the smaller middle value for an even count); undefined for no values. */
export function lowerMedian(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/**
 * The largest per-sample norm a reply may have: `factor` x the lower median of `perSampleNorms`
 * (this round's and recent rounds' replies), or undefined when there is nothing to compare with
 * (no norms, or a median of 0).
 */
export function relativeNormBound(perSampleNorms: readonly number[], factor: number): number | undefined {
  const med = lowerMedian(perSampleNorms.filter((x) => Number.isFinite(x)));
  return med === undefined || med <= 0 ? undefined : factor * med;
}

/** Factor that brings a reply of norm `norm` down to `bound` (1 when it is within it). */
export function clipScale(norm: number, bound: number): number {
  return norm > bound ? bound / norm : 1;
}

// ---- the whole combination -----------------------------------------------------------------------

/**
 * 'clipped-median': every reply clipped to the median norm, then the weighted mean; 'mean': the
 * weighted mean of replies bounded at normBoundFactor x the median; 'coordinate-median': replies
 * clipped as in 'clipped-median', then the coordinate-wise median of their parameter gradients;
 * 'median-trust': the same votes weighted by their alignment with that median
 * (`medianTrustCoefficients`).
 */
export type AggregationMode = 'mean' | 'clipped-median' | 'coordinate-median' | 'median-trust';
export const AGGREGATION_MODES: readonly AggregationMode[] = ['clipped-median', 'coordinate-median', 'median-trust', 'mean'];

/** Fewest votes in a step for which the vote rules apply (below: the clipped weighted mean). */
export const MIN_MEDIAN_VOTES = 3;

/** The vote modes: replies combined in the generator's parameter space. */
export function isVoteMode(mode: AggregationMode): boolean {
  return mode === 'coordinate-median' || mode === 'median-trust';
}

/**
 * 'median-trust' coefficients, in the manner of FLTrust (Cao et al. 2021, "FLTrust: Byzantine-robust
 * federated learning via trust bootstrapping"), with the coordinate-wise median of the votes as
 * the trusted reference (the server holds no real images to compute one of its own).
 * `alignment` is `voteAlignment`'s output: v_i . r and v_i . v_i per vote, then r . r. Vote i's
 * trust is ReLU(cos(v_i, r)); its coefficient is weight_i x trust_i / sum(weight x trust), times
 * |r| / |v_i| so that no vote counts for more than the reference's length. The step is
 * sum_i coefficient_i v_i. When no vote is trusted the coefficients are undefined: step on the
 * median itself.
 */
export function medianTrustCoefficients(alignment: ArrayLike<number>, weights: readonly number[]): { trust: number[]; coefficients: number[] | undefined } {
  const refNorm = Math.sqrt(Math.max(0, alignment[2 * weights.length]!));
  const norms = weights.map((_, i) => Math.sqrt(Math.max(0, alignment[2 * i + 1]!)));
  const trust = norms.map((norm, i) => {
    const cos = norm > 0 && refNorm > 0 ? alignment[2 * i]! / (norm * refNorm) : 0;
    return Number.isFinite(cos) ? Math.max(0, Math.min(1, cos)) : 0;
  });
  const mass = weights.reduce((s, w, i) => s + w * trust[i]!, 0);
  if (!(mass > 0)) return { trust, coefficients: undefined };
  const coefficients = weights.map((w, i) => (norms[i]! > 0 ? ((w * trust[i]!) / mass) * (refNorm / norms[i]!) : 0));
  return { trust, coefficients };
}

/** Trim of `coordinateTrimmedMean` that makes it the median of `votes` values. */
export function medianTrim(votes: number): number {
  return Math.floor((votes - 1) / 2);
}

/** Limits on what one reply can contribute. */
export interface ReplyBounds {
  /** Default 'clipped-median'. */
  aggregation: AggregationMode;
  /** Absolute cap on a reply's L2 norm. Default 1000 (an honest reply's L1 term has norm <= lambdaL1 / sqrt(C*H*W)). */
  maxReplyNorm: number;
  /** A reply's per-sample norm may be this multiple of the median ('mean' aggregation). Default 3. */
  normBoundFactor: number;
  /** Rounds of earlier replies' norms the median is taken over, besides this round's. Default 4. */
  normHistoryRounds: number;
  /** Largest weight of one node in a step (applied when more than 1/maxNodeShare replies share it). Default 0.5. */
  maxNodeShare: number;
}

export const DEFAULT_REPLY_BOUNDS: Readonly<ReplyBounds> = {
  aggregation: 'clipped-median', maxReplyNorm: 1000, normBoundFactor: 3, normHistoryRounds: 4, maxNodeShare: 0.5,
};

/** Check operator-supplied bounds; throws a RangeError naming the bad setting. */
export function checkReplyBounds(b: ReplyBounds): ReplyBounds {
  if (!AGGREGATION_MODES.includes(b.aggregation)) throw new RangeError(`aggregation must be one of ${AGGREGATION_MODES.join(', ')}, got ${JSON.stringify(b.aggregation)}`);
  if (!(b.maxReplyNorm > 0)) throw new RangeError(`maxReplyNorm must be > 0, got ${b.maxReplyNorm}`);
  if (!(b.normBoundFactor >= 1)) throw new RangeError(`normBoundFactor must be >= 1, got ${b.normBoundFactor}`);
  if (!(Number.isInteger(b.normHistoryRounds) && b.normHistoryRounds >= 0)) throw new RangeError(`normHistoryRounds must be an integer >= 0, got ${b.normHistoryRounds}`);
  if (!(b.maxNodeShare > 0 && b.maxNodeShare <= 1)) throw new RangeError(`maxNodeShare must be in (0, 1], got ${b.maxNodeShare}`);
  return b;
}

/** How replies are combined in this session. */
export interface AggregationPolicy {
  weighting: WeightingMode;
  sampling: SamplingMode;
  imageChannels: number;
  /** height * width of an image. */
  plane: number;
  bounds: ReplyBounds;
  /** false: the undefended rule (claimed sample counts, no norm bound, no share cap). For ablations only. */
  defences: boolean;
}

/** One reply as the aggregation sees it. */
export interface ReplyInput {
  nodeId: string;
  round: number;
  /** d(loss)/d(fakes) of the node's rows, [batchCount, C, H, W]; finite (validated). Not modified. */
  grad: Float32Array;
  losses: Losses;
  /** Masks the server holds for the node: its sample count. */
  heldMasks: number;
  /** Sample count the node claimed (used only when defences are off). */
  claimedSampleCount: number;
  batchCount: number;
  /** First row of the node's part in its round's batch. */
  rowOffset: number;
  /** Rows of that round's whole batch. */
  batchRows: number;
  /** Image channels the node holds; undefined: all. */
  channels: readonly number[] | undefined;
}

/** The combined gradient of one generator step and how each reply entered it. */
export interface Aggregate {
  /** d(loss)/d(fakes) per round whose batch receives gradient, [batchRows, C, H, W]. */
  grads: Map<number, Float32Array>;
  /** Per reply: its weight (losses use it; see channelWeights for the gradient). */
  weights: number[];
  channelWeights: number[][];
  /** Per reply: L2 norm as received. */
  norms: number[];
  /** Per reply: norm * sqrt(batchCount), the value the median is taken over (keep for the history). */
  perSampleNorms: number[];
  /** Per reply: the factor its gradient was scaled by (1: within its bound). */
  scales: number[];
  /** Per-sample norm bound used this step; undefined when none applied. */
  relativeBound: number | undefined;
  /** Weighted mean of the replies' losses; undefined for no replies. */
  losses: Losses | undefined;
  /**
   * A vote mode with at least MIN_MEDIAN_VOTES replies (and defences on): one vote per
   * reply, its clipped gradient unweighted, [rowCount, C, H, W] at rows rowOffset.. of its
   * round's batch; the generator combines them (GeneratorBackend.applyVotes) and `grads` is
   * empty. Otherwise undefined.
   */
  votes?: { round: number; rowOffset: number; rowCount: number; grad: Float32Array }[];
}

/**
 * Combine `replies` into one gradient per round batch. `history` holds the per-sample norms of
 * replies in recent rounds (see `AggregationPolicy.bounds.normHistoryRounds`); this round's are
 * pooled with them for the median.
 */
export function aggregateReplies(replies: readonly ReplyInput[], policy: AggregationPolicy, history: readonly number[] = []): Aggregate {
  const { imageChannels: C, plane, bounds, defences } = policy;
  const img = C * plane;
  const inputs = replies.map((r) => ({
    sampleCount: defences ? r.heldMasks : r.claimedSampleCount, batchCount: r.batchCount, channels: r.channels,
  }));
  const share = defences ? bounds.maxNodeShare : 1;
  const weights = capShares(combineWeights(inputs, policy.weighting, policy.sampling), share);
  const channelWeights = combineChannelWeights(inputs, C, policy.weighting, policy.sampling, share);
  const norms = replies.map((r) => l2Norm(r.grad));
  const perSampleNorms = replies.map((r, i) => norms[i]! * Math.sqrt(Math.max(1, r.batchCount)));
  const factor = bounds.aggregation === 'mean' ? bounds.normBoundFactor : 1;
  const relativeBound = defences ? relativeNormBound([...history, ...perSampleNorms], factor) : undefined;
  const scales = replies.map((r, i) => {
    if (!defences) return 1;
    let bound = bounds.maxReplyNorm;
    if (relativeBound !== undefined) bound = Math.min(bound, relativeBound / Math.sqrt(Math.max(1, r.batchCount)));
    return clipScale(norms[i]!, bound);
  });
  const grads = new Map<number, Float32Array>();
  const voting = defences && isVoteMode(bounds.aggregation) && replies.length >= MIN_MEDIAN_VOTES;
  const votes = voting
    ? replies.map((r, i) => ({ round: r.round, rowOffset: r.rowOffset, rowCount: r.batchCount, grad: r.grad.map((v) => scales[i]! * v) }))
    : undefined;
  let losses: Losses | undefined;
  replies.forEach((r, i) => {
    if (!voting) {
      let g = grads.get(r.round);
      if (!g) {
        g = new Float32Array(r.batchRows * img);
        grads.set(r.round, g);
      }
      const wc = channelWeights[i]!.map((w) => w * scales[i]!);
      const off = r.rowOffset * img;
      for (let j = 0; j < r.grad.length; j++) g[off + j] = g[off + j]! + wc[Math.floor(j / plane) % C]! * r.grad[j]!;
    }
    const w = weights[i]!;
    losses ??= { dReal: 0, dFake: 0, gGan: 0, gL1: 0 };
    losses.dReal += w * r.losses.dReal;
    losses.dFake += w * r.losses.dFake;
    losses.gGan += w * r.losses.gGan;
    losses.gL1 += w * r.losses.gL1;
  });
  return { grads, weights, channelWeights, norms, perSampleNorms, scales, relativeBound, losses, ...(votes ? { votes } : {}) };
}

/** Append one step's per-sample norms to the history, keeping the last `rounds` steps. */
export function pushNormHistory(history: readonly (readonly number[])[], norms: readonly number[], rounds: number): number[][] {
  const next = [...history.map((h) => [...h]), [...norms]];
  return rounds > 0 ? next.slice(-rounds) : [];
}
