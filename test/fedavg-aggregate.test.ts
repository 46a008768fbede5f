/**
 * FedAvg-GAN's pure pieces: the sample-weighted mean, the defences against a hostile site (delta
 * clipping, share cap), and the refusal of bad tensors in frames (wrong shape, dtype, NaN) and in
 * the coordinator (a hostile fedUpdate changes nothing but its sender's error count; with a
 * control showing the same update WOULD poison an undefended average).
 */
import t from 'tap';
import { decodeFrame, encodeFrame, encodeTensor } from '../src/net/codec.js';
import { PROTOCOL_VERSION, ProtocolError } from '../src/net/protocol.js';
import {
  DEFAULT_FEDAVG_POLICY, FedAvgCoordinator, checkFedUpdate, checkUpdate, decodeModel, deltaNorm, fedAvgModel, sampleShares, weightedMean, wireModel,
  type ModelLayout,
} from '../src/fedavg/index.js';

function model(seed: number, sizes: readonly number[], scale = 1): Float32Array[] {
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return (s / 2 ** 31 - 0.5) * scale;
  };
  return sizes.map((n) => Float32Array.from({ length: n }, next));
}

function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let m = 0;
  a.forEach((x, t) => x.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[t]![i]!)))));
  return m;
}

const SIZES = [7, 3, 12];

t.test('weightedMean is sum n_k w_k / sum n', async (t) => {
  const a = [Float32Array.of(1, 2), Float32Array.of(10)];
  const b = [Float32Array.of(4, -1), Float32Array.of(0)];
  const m = weightedMean([a, b], [1, 3]);
  t.same([...m[0]!], [(1 + 12) / 4, (2 - 3) / 4]);
  t.same([...m[1]!], [10 / 4]);
});

t.test('fedAvgModel without clipping equals the weighted mean of what the sites sent', async (t) => {
  const global = model(1, SIZES);
  const ups = [2, 3, 4].map((seed, k) => ({ nodeId: `n${k}`, sampleCount: [10, 30, 60][k]!, tensors: global.map((g, i) => g.map((v, j) => v + model(seed, SIZES, 0.1)[i]![j]!)) }));
  const agg = fedAvgModel(global, ups, { ...DEFAULT_FEDAVG_POLICY, maxNodeShare: 1 });
  t.same(agg.scales, [1, 1, 1], 'honest updates of similar size are not clipped');
  t.same(agg.shares.map((x) => +x.toFixed(12)), [0.1, 0.3, 0.6], 'shares n_k / sum n');
  const ref = weightedMean(ups.map((u) => u.tensors), ups.map((u) => u.sampleCount));
  t.ok(maxAbsDiff(agg.tensors, ref) < 1e-6, `equal to the weighted mean (max diff ${maxAbsDiff(agg.tensors, ref)})`);
  t.ok(maxAbsDiff(agg.tensors, global) > 1e-3, 'and different from the global model');
  t.same(fedAvgModel(global, []).tensors, global, 'no update: the global model, unchanged');
});

t.test('sample shares: validated, and capped when enough sites answer', async (t) => {
  t.same(sampleShares([1, 1, 2], 1), [0.25, 0.25, 0.5]);
  const capped = sampleShares([1, 1, 1000], 0.5);
  t.ok(Math.abs(capped[2]! - 0.5) < 1e-12, `an inflated count buys at most the cap (got ${capped[2]})`);
  t.ok(Math.abs(capped.reduce((s, x) => s + x, 0) - 1) < 1e-12, 'shares sum to 1');
  t.same(sampleShares([1, 1000], 0.5), [1 / 1001, 1000 / 1001], 'two sites: a cap of 0.5 would force equal weights, so it is not applied');
  t.throws(() => sampleShares([1, 0], 0.5), /positive/);
  t.throws(() => sampleShares([1, NaN], 0.5), /positive/);
});

t.test('bad updates are refused by name', async (t) => {
  const global = model(1, SIZES);
  t.throws(() => checkUpdate(global, { nodeId: 'x', sampleCount: 1, tensors: global.slice(1) }), /x: 2 tensors, the model has 3/);
  t.throws(() => checkUpdate(global, { nodeId: 'x', sampleCount: 1, tensors: [global[0]!, new Float32Array(2), global[2]!] }), /tensor 1 has 2 values/);
  const nan = global.map((x) => new Float32Array(x));
  nan[2]![5] = NaN;
  t.throws(() => checkUpdate(global, { nodeId: 'x', sampleCount: 1, tensors: nan }), /tensor 2 value 5 is NaN/);
  t.throws(() => fedAvgModel(global, [{ nodeId: 'x', sampleCount: 1, tensors: nan }]), /NaN/, 'fedAvgModel checks too');
});

t.test('a huge update is clipped to the median change; undefended it would poison the average', async (t) => {
  const global = model(1, SIZES);
  const honest = [2, 3].map((seed, k) => ({ nodeId: `h${k}`, sampleCount: 50, tensors: global.map((g, i) => g.map((v, j) => v + model(seed, SIZES, 0.01)[i]![j]!)) }));
  const hostile = { nodeId: 'evil', sampleCount: 50, tensors: global.map((g) => g.map(() => 1e6)) };
  const defended = fedAvgModel(global, [...honest, hostile]);
  const undefended = fedAvgModel(global, [...honest, hostile], { normBoundFactor: Infinity, maxRelativeDelta: Infinity, maxNodeShare: 1 });
  const honestMean = weightedMean(honest.map((u) => u.tensors), [50, 50]);
  t.ok(defended.scales[2]! < 1e-6, `hostile delta scaled by ${defended.scales[2]}`);
  const bound = 3 * Math.min(...defended.deltaNorms.slice(0, 2).sort((a, b) => a - b).slice(0, 1));
  t.ok(deltaNorm(defended.tensors, global) <= bound + 1e-9, 'the new model moved at most the bound');
  t.ok(maxAbsDiff(defended.tensors, honestMean) < 0.05, `defended: close to the honest mean (max diff ${maxAbsDiff(defended.tensors, honestMean).toExponential(2)})`);
  t.ok(maxAbsDiff(undefended.tensors, honestMean) > 1e5, 'control: without the bounds the average is poisoned');
  // A lone site is bounded by the global model's norm.
  const lone = fedAvgModel(global, [hostile]);
  t.ok(deltaNorm(lone.tensors, global) <= 0.5 * Math.hypot(...global.flatMap((x) => [...x])) * (1 + 1e-5), 'a lone hostile update moves the model at most maxRelativeDelta x its norm');
});

t.test('frames: wrong shape, wrong dtype, NaN and wrong tensor count are refused with their codes', async (t) => {
  const layout: ModelLayout = [[2, 3], [4]];
  const good = [new Float32Array(6).fill(1), new Float32Array(4).fill(2)];
  t.same(decodeModel('fedUpdate', 'models.G', wireModel(good, layout), layout).map((x) => [...x]), good.map((x) => [...x]), 'a good model decodes');
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      return e instanceof ProtocolError ? `${e.code}: ${e.message}` : `not a ProtocolError: ${String(e)}`;
    }
    return undefined;
  };
  t.match(code(() => decodeModel('fedUpdate', 'models.G', [encodeTensor(new Float32Array(6), [3, 2]), encodeTensor(good[1]!, [4])], layout)), /^shape_mismatch: fedUpdate: models.G\[0\].shape: \[3, 2\], expected \[2, 3\]/);
  t.match(code(() => decodeModel('fedUpdate', 'models.G', [encodeTensor(good[0]!, [2, 3], 'f16'), encodeTensor(good[1]!, [4])], layout)), /^invalid_field: .*dtype/);
  t.match(code(() => decodeModel('fedUpdate', 'models.G', wireModel([good[0]!], [[2, 3]]), layout)), /^shape_mismatch: .*1 tensors, the model has 2/);
  const nan = [good[0]!, Float32Array.of(0, Infinity, 0, 0)];
  t.match(code(() => decodeModel('fedUpdate', 'models.G', wireModel(nan, layout), layout)), /^non_finite: fedUpdate: models.G\[1\]: element 1 is Infinity/);
  const raw = decodeFrame(encodeFrame({ type: 'fedUpdate', round: 1, sampleCount: 0, steps: 1, models: { G: wireModel(good, layout), D: wireModel(good, layout) }, losses: { dReal: 0, dFake: 0, gGan: 0, gL1: 0 } }), 1e9);
  t.match(code(() => checkFedUpdate(raw, { G: layout, D: layout })), /^invalid_field: fedUpdate: sampleCount/);
});

/** A coordinator driven frame by frame through fake connections (no sockets). */
t.test('coordinator: a hostile fedUpdate (NaN, wrong shape, huge) never reaches the average', async (t) => {
  const layout: ModelLayout = [[4], [2, 2]];
  const initial = { G: [new Float32Array(4).fill(1), new Float32Array(4).fill(-1)], D: [new Float32Array(4).fill(0.5), new Float32Array(4).fill(0.25)] };
  const logs: string[] = [];
  const coord = new FedAvgCoordinator({
    tokens: { a: 'tok-a', evil: 'tok-evil' }, initial, layouts: { G: layout, D: layout },
    session: { localSteps: 2, batchSize: 1, lambdaL1: 100, lr: 2e-4, beta1: 0.5, totalSteps: 20, decaySteps: 0 },
    roundTimeoutMs: 5000, maxRounds: 1, minNodes: 2, checkpointEvery: 0,
    log: (level, message, data) => logs.push(`${level} ${message} ${JSON.stringify(data)}`),
  });
  const sent = new Map<string, Record<string, unknown>[]>();
  const connect = (id: string): ReturnType<FedAvgCoordinator['attach']> => {
    sent.set(id, []);
    const h = coord.attach({ send: (b) => (sent.get(id)!.push(decodeFrame(b, 1e9)), true), close: () => coord.detach(h) }, '127.0.0.1', id);
    coord.receive(h, encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: id, token: `tok-${id}`, capabilities: { dtypes: ['f32'] } }));
    return h;
  };
  await coord.start();
  const ha = connect('a');
  const he = connect('evil');
  await new Promise((r) => setTimeout(r, 50));
  const model = (id: string) => sent.get(id)!.find((m) => m.type === 'fedModel');
  t.ok(model('a') && model('evil'), 'both nodes got the round-1 model');
  const update = (G: Float32Array[], D: Float32Array[], extra: Record<string, unknown> = {}) => encodeFrame({
    type: 'fedUpdate', round: 1, sampleCount: 10, steps: 2, models: { G: wireModel(G, layout), D: wireModel(D, layout) }, losses: { dReal: 0.7, dFake: 0.7, gGan: 0.7, gL1: 0.3 }, ...extra,
  });
  const plus = (m: Float32Array[], d: number) => m.map((x) => x.map((v) => v + d));
  const nanG = plus(initial.G, 0);
  nanG[1]![3] = NaN;
  t.equal(coord.receive(he, update(nanG, initial.D)), 'rejected', 'NaN refused');
  t.equal(coord.receive(he, encodeFrame({ type: 'fedUpdate', round: 1, sampleCount: 10, steps: 2, models: { G: [encodeTensor(new Float32Array(4), [4]), encodeTensor(new Float32Array(4), [4])], D: wireModel(initial.D, layout) }, losses: { dReal: 0, dFake: 0, gGan: 0, gL1: 0 } })), 'rejected', 'wrong shape refused');
  t.equal(coord.receive(he, update(plus(initial.G, 0.01), initial.D, { steps: 1 })), 'rejected', 'wrong step count refused');
  const errs = sent.get('evil')!.filter((m) => m.type === 'error').map((m) => m.code);
  t.same(errs, ['non_finite', 'shape_mismatch', 'invalid_field'], 'each answered with an error frame naming the problem');
  t.equal(logs.filter((l) => l.startsWith('warn frame rejected')).length, 3, 'one warn line per refusal');
  // Now the real answers: an honest one and a huge one.
  t.equal(coord.receive(ha, update(plus(initial.G, 0.01), plus(initial.D, 0.01))), 'accepted');
  t.equal(coord.receive(he, update(plus(initial.G, 1e6), plus(initial.D, 1e6), { sampleCount: 1e6 })), 'accepted', 'a huge (finite) update is accepted, then clipped');
  await coord.waitForRound(1, 5000);
  const w = coord.weights();
  const moved = Math.max(...w.G.flatMap((x, i) => [...x].map((v, j) => Math.abs(v - initial.G[i]![j]!))));
  t.ok(moved < 0.1, `the huge update was clipped: the global G moved at most ${moved.toExponential(2)}`);
  t.ok(w.G.every((x) => x.every(Number.isFinite)), 'the global model is finite');
  t.ok(logs.some((l) => l.startsWith('warn update scaled down') && l.includes('"nodeId":"evil"')), 'the clipping is logged, naming the node');
  t.equal(coord.metrics().nodes.find((n) => n.id === 'evil')!.stats.framesRejected, 3);
  await coord.stop({ graceMs: 0 });
});
