/**
 * aggregate.ts: the pure rules by which the server combines replies, and its defences against a
 * hostile node. Each defence is shown to matter: the same input with `defences: false` gives the
 * attacker what it asked for.
 */
import t from 'tap';
import {
  DEFAULT_REPLY_BOUNDS, admitLateReplies, aggregateReplies, capShares, checkReplyBounds, clipScale, l2Norm, lowerMedian, medianTrustCoefficients,
  pushNormHistory, relativeNormBound, type AggregationPolicy, type ReplyInput,
} from '../src/net/aggregate.js';

const PLANE = 4; // 2x2 images
/** 'mean' aggregation (bound 3x the median), unless a test says otherwise. */
const MEAN = { ...DEFAULT_REPLY_BOUNDS, aggregation: 'mean' as const };
const policy = (over: Partial<AggregationPolicy> = {}): AggregationPolicy => ({
  weighting: 'samples', sampling: 'balance', imageChannels: 1, plane: PLANE, bounds: MEAN, defences: true, ...over,
});
const losses = { dReal: 1, dFake: 1, gGan: 1, gL1: 1 };

/** A reply of `rows` samples whose every value is `value`, placed at `row` of a batch of `batchRows`. */
function reply(nodeId: string, value: number, over: Partial<ReplyInput> = {}): ReplyInput {
  const rows = over.batchCount ?? 2;
  return {
    nodeId, round: 1, grad: new Float32Array(rows * PLANE).fill(value), losses, heldMasks: 10, claimedSampleCount: 10,
    batchCount: rows, rowOffset: 0, batchRows: rows, channels: undefined, ...over,
  };
}

/** Three nodes, rows 0-1, 2-3, 4-5 of one batch of 6. */
function three(values: [number, number, number], over: Partial<ReplyInput>[] = []): ReplyInput[] {
  return ['a', 'b', 'c'].map((id, i) => reply(id, values[i]!, { rowOffset: 2 * i, batchRows: 6, ...over[i] }));
}

t.test('admitLateReplies: staleness and held rounds', async (t) => {
  const late = [{ round: 4, id: 'x' }, { round: 3, id: 'y' }, { round: 5, id: 'z' }];
  const { admitted, dropped } = admitLateReplies(late, 5, 1, (r) => r !== 5);
  t.same(admitted.map((r) => r.id), ['x'], 'round 4 is 1 old and held');
  t.same(dropped.map((r) => r.id), ['y', 'z'], 'round 3 is 2 old; round 5 is no longer held');
});

t.test('capShares caps one node and renormalizes', async (t) => {
  const w = capShares([0.9, 0.05, 0.05], 0.5);
  t.ok(Math.abs(w[0]! - 0.5) < 1e-12 && Math.abs(w[1]! - 0.25) < 1e-12 && Math.abs(w[2]! - 0.25) < 1e-12, `[${w.join(', ')}]`);
  t.ok(Math.abs(w.reduce((a, b) => a + b) - 1) < 1e-12, 'sums to 1');
  t.same(capShares([0.2, 0.3, 0.5], 0.5), [0.2, 0.3, 0.5], 'at the cap: unchanged');
  t.same(capShares([0.9, 0.1], 0.5), [0.9, 0.1], 'two replies: no cap (it would force equal weights)');
  const c = capShares([0.6, 0.3, 0.05, 0.05], 0.3);
  t.ok(c.every((x) => x <= 0.3 + 1e-12) && Math.abs(c.reduce((a, b) => a + b) - 1) < 1e-12, `cascading cap: [${c.map((x) => x.toFixed(3)).join(', ')}]`);
});

t.test('norm helpers', async (t) => {
  t.equal(l2Norm(Float32Array.of(3, 4)), 5);
  t.ok(Math.abs(l2Norm(new Float32Array(4).fill(1e30)) / 2e30 - 1) < 1e-6, 'accumulates in float64: 1e30s have a finite norm');
  t.equal(lowerMedian([3, 1, 2]), 2);
  t.equal(lowerMedian([4, 1, 3, 2]), 2, 'even count: the lower middle value');
  t.equal(lowerMedian([]), undefined);
  t.equal(relativeNormBound([1, 1, 1e30], 3), 3, 'one huge norm does not move the median');
  t.equal(relativeNormBound([0, 0], 3), undefined, 'a median of 0 gives no relative bound');
  t.equal(clipScale(10, 5), 0.5);
  t.equal(clipScale(4, 5), 1);
  t.throws(() => checkReplyBounds({ ...DEFAULT_REPLY_BOUNDS, maxNodeShare: 0 }), /maxNodeShare/);
  t.throws(() => checkReplyBounds({ ...DEFAULT_REPLY_BOUNDS, aggregation: 'krum' as never }), /aggregation/);
  t.same(pushNormHistory([[1], [2]], [3, 4], 2), [[2], [3, 4]], 'keeps the last rounds');
  t.same(pushNormHistory([[1]], [3], 0), [], 'history off');
});

t.test('honest replies pass untouched: weights n_j / sum n, gradients weighted', async (t) => {
  const rs = three([0.1, 0.2, 0.3], [{ heldMasks: 10 }, { heldMasks: 20 }, { heldMasks: 30 }]);
  const agg = aggregateReplies(rs, policy());
  t.same(agg.scales, [1, 1, 1], 'no reply clipped');
  t.same(agg.weights.map((w) => +w.toFixed(12)), [1 / 6, 2 / 6, 3 / 6].map((w) => +w.toFixed(12)));
  const g = agg.grads.get(1)!;
  t.equal(g.length, 6 * PLANE);
  t.ok(Math.abs(g[0]! - 0.1 / 6) < 1e-8 && Math.abs(g[2 * PLANE]! - 0.4 / 6) < 1e-8 && Math.abs(g[4 * PLANE]! - 0.9 / 6) < 1e-8, 'each row block weighted');
  t.equal(agg.losses!.gL1, 1, 'weighted losses');
  t.same(aggregateReplies([], policy()).grads.size, 0, 'no replies: no gradient');
});

t.test('1e30 reply: scaled down to the median-based bound, not dropped', async (t) => {
  const rs = three([0.1, 0.1, 1e30]);
  const agg = aggregateReplies(rs, policy());
  const honest = l2Norm(rs[0]!.grad);
  t.equal(agg.scales[0], 1);
  t.ok(agg.scales[2]! < 1e-29, `scale ${agg.scales[2]}`);
  const contributed = agg.scales[2]! * agg.norms[2]!;
  t.ok(Math.abs(contributed - 3 * honest) / honest < 1e-6, `bounded to 3x the median norm (${contributed} vs ${honest})`);
  t.ok(agg.grads.get(1)!.every((x) => Number.isFinite(x) && Math.abs(x) < 1), 'combined gradient finite and small');
  const off = aggregateReplies(rs, policy({ defences: false }));
  t.ok(Math.max(...off.grads.get(1)!) > 1e29, 'defences off: the 1e30 reaches the generator');
});

t.test('the absolute cap binds when the median itself is hostile (2 of 2 replies huge)', async (t) => {
  const agg = aggregateReplies([reply('a', 1e6), reply('b', 1e6, { rowOffset: 2, batchRows: 4 })].map((r) => ({ ...r, batchRows: 4 })), policy());
  agg.scales.forEach((s, i) => t.ok(Math.abs(s * agg.norms[i]! - DEFAULT_REPLY_BOUNDS.maxReplyNorm) < 1e-6, `reply ${i} at maxReplyNorm`));
});

t.test('x10 reply: bounded to 3x (mean) or 1x (clipped-median) the median', async (t) => {
  const rs = three([0.1, 0.1, 1]);
  const honest = l2Norm(rs[0]!.grad);
  const mean = aggregateReplies(rs, policy());
  t.ok(Math.abs(mean.scales[2]! * mean.norms[2]! - 3 * honest) < 1e-6, 'mean: 3x');
  const med = aggregateReplies(rs, policy({ bounds: DEFAULT_REPLY_BOUNDS }));
  t.equal(DEFAULT_REPLY_BOUNDS.aggregation, 'clipped-median', 'the default');
  t.ok(Math.abs(med.scales[2]! * med.norms[2]! - honest) < 1e-6, 'clipped-median: 1x');
  const mixed = aggregateReplies(three([0.1, 0.12, 0.2]), policy({ bounds: DEFAULT_REPLY_BOUNDS }));
  t.same(mixed.scales.slice(0, 2), [1, 1], 'clipped-median: replies at or below the median untouched');
  t.ok(Math.abs(mixed.scales[2]! - 0.6) < 1e-6, 'the one above is scaled to the median');
  t.same(aggregateReplies(rs, policy({ defences: false })).scales, [1, 1, 1], 'defences off: unbounded');
});

t.test('the history keeps the median honest in a round where most replies are hostile', async (t) => {
  const rs = three([0.1, 10, 10]);
  const alone = aggregateReplies(rs, policy());
  t.same(alone.scales.slice(1), [1, 1], 'this round alone: the median is hostile, nothing clipped below maxReplyNorm');
  const h = alone.perSampleNorms[0]!;
  const withHistory = aggregateReplies(rs, policy(), [h, h, h, h, h, h]);
  for (const i of [1, 2]) t.ok(Math.abs(withHistory.scales[i]! * withHistory.norms[i]! - 3 * alone.norms[0]!) < 1e-6, `reply ${i} bounded by the history's median`);
});

t.test('norms are compared per sample: a node asked for fewer samples is not clipped for it', async (t) => {
  // An honest mean over b samples has norm ~ 1/sqrt(b): values 1/b on b rows.
  const rs = [1, 4, 16].map((b, i) => reply(`n${i}`, 1 / b, { batchCount: b, grad: new Float32Array(b * PLANE).fill(1 / b), rowOffset: [0, 1, 5][i]!, batchRows: 21 }));
  const agg = aggregateReplies(rs, policy({ sampling: 'uniform' }));
  t.same(agg.scales, [1, 1, 1], `per-sample norms ${agg.perSampleNorms.map((x) => x.toFixed(3)).join(', ')}`);
});

t.test('inflated sampleCount: weight follows the masks held, not the claim', async (t) => {
  const rs = three([0.1, 0.1, 0.1], [{}, {}, { claimedSampleCount: 1e9, heldMasks: 10 }]);
  const agg = aggregateReplies(rs, policy());
  t.ok(agg.weights.every((w) => Math.abs(w - 1 / 3) < 1e-12), `weights [${agg.weights.join(', ')}]`);
  const off = aggregateReplies(rs, policy({ defences: false }));
  t.ok(off.weights[2]! > 0.9999999, `defences off: the claim takes ${off.weights[2]}`);
});

t.test('mask flood: many held masks are capped at maxNodeShare', async (t) => {
  const rs = three([0.1, 0.1, 0.1], [{}, {}, { heldMasks: 100_000, claimedSampleCount: 100_000 }]);
  const agg = aggregateReplies(rs, policy());
  t.ok(Math.abs(agg.weights[2]! - 0.5) < 1e-12 && Math.abs(agg.weights[0]! - 0.25) < 1e-12, `weights [${agg.weights.join(', ')}]`);
  t.ok(Math.abs(agg.channelWeights[2]![0]! - 0.5) < 1e-12, 'channel weights capped too');
  const off = aggregateReplies(rs, policy({ defences: false }));
  t.ok(off.weights[2]! > 0.999, 'defences off: the flood takes the weight');
});

t.test('per-channel weights with modality subsets keep the cap per channel', async (t) => {
  const rs = three([0.1, 0.1, 0.1], [{ channels: [0] }, {}, { heldMasks: 1000 }]).map((r) => ({ ...r, grad: new Float32Array(2 * 2 * PLANE).fill(0.1) }));
  const agg = aggregateReplies(rs, policy({ imageChannels: 2 }));
  t.ok(Math.abs(agg.channelWeights[2]![0]! - 0.5) < 1e-12, 'channel 0 (3 holders): capped at 0.5');
  t.ok(agg.channelWeights[2]![1]! > 0.9, 'channel 1 (2 holders): no cap is feasible');
  t.equal(agg.channelWeights[0]![1], 0, 'a node not holding a channel weighs 0 there');
});

t.test("coordinate-median: one unweighted, clipped vote per reply with its rows; below 3 replies the weighted mean", async (t) => {
  const MEDIAN = policy({ bounds: { ...DEFAULT_REPLY_BOUNDS, aggregation: 'coordinate-median' } });
  const replies = three([1, 2, -50], [{ heldMasks: 30 }]);
  const agg = aggregateReplies(replies, MEDIAN);
  t.equal(agg.grads.size, 0, 'no fake-space sum: the generator combines the votes');
  t.equal(agg.votes?.length, 3, 'a vote per reply');
  const norm = 2 * Math.sqrt(2 * PLANE); // the median reply (all 2s) has this norm; the bound is per sample
  t.ok(agg.scales[2]! < 1 && Math.abs(l2Norm(replies[2]!.grad) * agg.scales[2]! - norm) < 1e-9, 'the -50 reply is clipped to the median norm, as in clipped-median');
  t.same(agg.votes!.map((v) => [v.round, v.rowOffset, v.rowCount]), [[1, 0, 2], [1, 2, 2], [1, 4, 2]], 'each vote at its node\'s rows');
  t.same([...agg.votes![0]!.grad], Array(2 * PLANE).fill(1), 'vote 0 unweighted (the 30 masks do not scale it)');
  t.same([...agg.votes![2]!.grad].map((v) => Math.round(v * 1e6) / 1e6), Array(2 * PLANE).fill(-2), 'vote 2 clipped to -2');
  t.same([...replies[2]!.grad], Array(2 * PLANE).fill(-50), 'the reply itself is not modified');
  t.ok(Math.abs(agg.weights.reduce((a, b) => a + b, 0) - 1) < 1e-12 && agg.losses !== undefined, 'weights and losses still reported');
  const two = aggregateReplies(replies.slice(0, 2), MEDIAN);
  t.equal(two.votes, undefined, 'two replies: no median (it would be their mean)');
  t.equal(two.grads.size, 1, 'the clipped weighted mean instead');
  t.equal(aggregateReplies(replies, { ...MEDIAN, defences: false }).votes, undefined, 'defences off: the undefended weighted mean');
  t.throws(() => checkReplyBounds({ ...DEFAULT_REPLY_BOUNDS, aggregation: 'median' as never }), /aggregation must be one of clipped-median, coordinate-median, median-trust, mean, got "median"/);
});

t.test('medianTrustCoefficients: trust is ReLU(cos) with the median; weights by trust, lengths capped at the median\'s', async (t) => {
  // |r| = 2. v0 along r, |v0| = 4 (dot 8); v1 at 60 degrees, |v1| = 2 (dot 2); v2 opposite, |v2| = 2 (dot -4).
  const alignment = [8, 16, 2, 4, -4, 4, 4];
  const { trust, coefficients } = medianTrustCoefficients(alignment, [0.5, 0.25, 0.25]);
  t.same(trust, [1, 0.5, 0], 'ReLU(cos)');
  const mass = 0.5 * 1 + 0.25 * 0.5;
  t.ok(Math.abs(coefficients![0]! - (0.5 / mass) * (2 / 4)) < 1e-12, 'v0: its share, scaled to the median\'s length');
  t.ok(Math.abs(coefficients![1]! - (0.125 / mass) * 1) < 1e-12, 'v1: its share');
  t.equal(coefficients![2], 0, 'the opposite vote gets nothing');
  t.equal(medianTrustCoefficients([-1, 1, -1, 1, -1, 1, 1], [1 / 3, 1 / 3, 1 / 3]).coefficients, undefined, 'nobody trusted: no coefficients (step on the median)');
});
