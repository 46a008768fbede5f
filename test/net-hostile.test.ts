/**
 * One hostile hospital among three, with the real engine on both sides: a Coordinator with the
 * real EngineGenerator (tiny ResnetGenerator) and three real EngineDiscriminator nodes, talking in
 * msgpack frames through in-memory connections (no sockets: deterministic and fast).
 *
 * Baseline: the same run (same seeds, same data) with the third node behaving honestly. For each
 * attack the honest nodes' final generator L1 (mean |G(mask) - real| over nodes a and b's data,
 * generator in eval mode) must be within 10% of the baseline, and after the attack stops, honest
 * rounds must still move the generator's weights (not frozen). The same 1e30 run with
 * the defences off (coordinator `defences: false`, optimizer guard off) must break that bound or
 * freeze the generator: the test fails when the defences do nothing.
 */
import t, { type Test } from 'tap';
import { Adam, init, noGrad, tensor, tidy } from '../src/engine/index.js';
import { conditionTensor, imageTensor, makePhantom, type Dataset } from '../src/data/index.js';
import { EngineDiscriminator } from '../src/federation/discriminator-backend.js';
import { EngineGenerator } from '../src/federation/generator-backend.js';
import type { ResnetGenerator } from '../src/models/index.js';
import { decodeFrame, decodeTensor, encodeFrame, encodeTensor } from '../src/net/codec.js';
import type { AggregationMode } from '../src/net/aggregate.js';
import type { GeneratorStep } from '../src/net/backend.js';
import { Coordinator, type ConnHandle, type RoundSummary } from '../src/net/coordinator.js';
import { PROTOCOL_VERSION, type SessionConfig, type WireTensor } from '../src/net/protocol.js';
import { DEFAULT_GAN_CONFIG, makeDiscriminator, makeGenerator, type GanConfig } from '../src/train/pix2pix.js';

await init();
const SIZE = 16;
const ROUNDS = 60;
/** The attacker attacks in rounds 1..ATTACK_UNTIL, then answers honestly. */
const ATTACK_UNTIL = ROUNDS - 10;
const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ngf: 4, blocks: 1, ndf: 4, dLayers: 2, dropout: false, lr: 2e-3, iters: 1000, decayIters: 0, seed: 5 };
const data = makePhantom({ size: SIZE, numNodes: 3, slicesPerNode: [6, 6, 6], testSlices: 1, seed: 21 });
const C = data.test.numClasses;
const M = data.test.modalities.length;
const IDS = ['a', 'b', 'c'] as const;
const token = (id: string) => `token-${id}-0123456789abcdef`;

type Attack = 'none' | 'huge' | 'x10' | 'flip' | 'sampleCount' | 'masks' | 'flood';

/** All node steps share one engine: run them one at a time. */
let engineQueue: Promise<unknown> = Promise.resolve();
function serially<T>(fn: () => Promise<T>): Promise<T> {
  const r = engineQueue.then(fn);
  engineQueue = r.catch(() => {});
  return r;
}

/** A hospital in this process: a real discriminator behind the wire format, optionally hostile. */
class InProcessNode {
  readonly errors: string[] = [];
  private h!: ConnHandle;
  private readonly masks = new Map<string, Float32Array>();
  private readonly images: Map<string, Float32Array>;
  readonly backend: EngineDiscriminator;

  constructor(private readonly coord: Coordinator, readonly id: string, private readonly ds: Dataset, k: number, private readonly attack: Attack, cfg: GanConfig) {
    const d = makeDiscriminator(cfg, C + M, cfg.seed + 1000 + k);
    const opt = new Adam(d.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: cfg.lr, betas: [cfg.beta1, 0.999] });
    this.images = new Map(ds.slices.map((s) => [s.key, s.image]));
    // Flooded keys "<key>#<j>" pair with the real image of <key>.
    this.backend = new EngineDiscriminator(d, opt, { channels: M, height: SIZE, width: SIZE, get: (key) => this.images.get(key.split('#')[0]!) }, cfg);
  }

  connect(): void {
    this.h = this.coord.attach({ send: (b) => this.deliver(b), close: () => {} }, `in-process-${this.id}`);
    this.send({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: this.id, token: token(this.id), capabilities: { dtypes: ['f32'] } });
  }

  private send(msg: Record<string, unknown>): void {
    this.coord.receive(this.h, encodeFrame(msg));
  }

  /** Frames are handled after the coordinator's call returns, as over a socket. */
  private deliver(bytes: Uint8Array): boolean {
    const msg = decodeFrame(bytes.slice(), 1 << 30) as Record<string, unknown>;
    setImmediate(() => void this.onMessage(msg).catch((e) => this.errors.push(`node ${this.id}: ${String(e)}`)));
    return true;
  }

  private async onMessage(msg: Record<string, unknown>): Promise<void> {
    if (msg.type === 'welcome') {
      this.backend.configure(msg.config as SessionConfig);
      this.upload();
    } else if (msg.type === 'roundRequest') {
      await serially(() => this.answer(msg.round as number, msg.keys as string[], msg.fakes as WireTensor));
    } else if (msg.type === 'error') {
      this.errors.push(String(msg.message));
    }
  }

  private upload(): void {
    const keys = this.ds.slices.map((s) => s.key);
    const data = conditionTensor(this.ds.slices, C);
    const per = C * SIZE * SIZE;
    if (this.attack === 'masks') {
      // Crafted values in three uploads (each refused), then the real masks.
      for (const [i, v] of [1e30, -1e6, 255].entries()) {
        const bad = data.slice(0, per);
        bad[17 + i] = v;
        this.send({ type: 'maskUpload', keys: [`evil-${i}`], masks: encodeTensor(bad, [1, C, SIZE, SIZE]), sampleCount: 1 });
      }
    }
    if (this.attack === 'flood') {
      // 50 copies of every mask under new keys: 306 masks held against 6 + 6 honest ones.
      const copies = 50;
      const fk = [...keys];
      const fd = new Float32Array(keys.length * (copies + 1) * per);
      fd.set(data);
      for (let j = 1; j <= copies; j++) {
        keys.forEach((k) => fk.push(`${k}#${j}`));
        fd.set(data, j * data.length);
      }
      fk.forEach((k, i) => this.masks.set(k, fd.subarray(i * per, (i + 1) * per)));
      this.send({ type: 'maskUpload', keys: fk, masks: encodeTensor(fd, [fk.length, C, SIZE, SIZE]), sampleCount: fk.length });
      return;
    }
    keys.forEach((k, i) => this.masks.set(k, data.subarray(i * per, (i + 1) * per)));
    this.send({ type: 'maskUpload', keys, masks: encodeTensor(data, [keys.length, C, SIZE, SIZE]), sampleCount: this.attack === 'sampleCount' ? 1e9 : keys.length });
  }

  private async answer(round: number, keys: string[], fakesWire: WireTensor): Promise<void> {
    const n = keys.length;
    const per = C * SIZE * SIZE;
    const masks = new Float32Array(n * per);
    keys.forEach((k, i) => masks.set(this.masks.get(k)!, i * per));
    const out = await this.backend.step({ round, keys, masks, fakes: decodeTensor(fakesWire), fakeShape: [n, M, SIZE, SIZE], aug: undefined });
    let grad = out.gradFakes;
    if (round <= ATTACK_UNTIL && this.attack === 'huge') grad = grad.map((v) => (v < 0 ? -1e30 : 1e30));
    if (round <= ATTACK_UNTIL && this.attack === 'x10') grad = grad.map((v) => 10 * v);
    if (round <= ATTACK_UNTIL && this.attack === 'flip') grad = grad.map((v) => -10 * v);
    this.send({ type: 'gradientReply', round, keys, grad: encodeTensor(grad, [n, M, SIZE, SIZE]), losses: out.losses });
  }
}

interface RunResult {
  l1: number;
  /** Largest |change| of any generator weight over the honest rounds after the attack. */
  movedAfterAttack: number;
  summaries: RoundSummary[];
  errors: string[];
  coord: Coordinator;
}

/** The generator's trainable parameters (not the batch-norm running statistics, which move with every forward). */
async function flatWeights(g: ResnetGenerator): Promise<Float32Array[]> {
  return Promise.all(g.namedParameters().map(([, p]) => p.read()));
}

/** Mean |G(mask) - real| over the honest nodes' slices, G in eval mode (running statistics). */
async function honestL1(g: ResnetGenerator): Promise<number> {
  const slices = [...data.nodes[0]!.slices, ...data.nodes[1]!.slices];
  g.eval();
  const fake = noGrad(() => tidy(() => g.forward(tensor(conditionTensor(slices, C), [slices.length, C, SIZE, SIZE]))));
  const f = await fake.read();
  fake.dispose();
  g.train();
  const real = imageTensor(slices);
  let s = 0;
  for (let i = 0; i < f.length; i++) s += Math.abs(f[i]! - real[i]!);
  return s / f.length;
}

/** One 60-round run; `seed` replaces the models' seed (generator and discriminators). */
async function run(attack: Attack, defences = true, aggregation?: AggregationMode, seed = cfg.seed): Promise<RunResult> {
  const rc: GanConfig = { ...cfg, seed };
  const g = makeGenerator(rc, C, M);
  const opt = new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: rc.lr, betas: [rc.beta1, 0.999] });
  const backend = new EngineGenerator(g, opt, rc, 2, defences);
  const summaries: RoundSummary[] = [];
  let atAttackEnd: Float32Array[] | undefined;
  // Snapshot inside the step call: the coordinator waits for it before the next forward.
  const snapshotAfter = async <T>(steps: readonly GeneratorStep[], step: () => Promise<T>): Promise<T> => {
    try {
      return await step();
    } finally {
      if (Math.max(...steps.map((s) => s.batch.round)) === ATTACK_UNTIL) atAttackEnd = await flatWeights(g);
    }
  };
  const coord = new Coordinator({
    generator: {
      generate: (b) => backend.generate(b),
      applyGradients: (steps) => snapshotAfter(steps, () => backend.applyGradients(steps)),
      applyVotes: (votes, rule) => snapshotAfter(votes, () => backend.applyVotes(votes, rule)),
      saveState: () => backend.saveState(),
      loadState: (b) => backend.loadState(b),
    },
    tokens: Object.fromEntries(IDS.map((id) => [id, token(id)])),
    session: { maskChannels: C, imageChannels: M, height: SIZE, width: SIZE, batchSize: 2, lambdaL1: cfg.lambdaL1 },
    roundTimeoutMs: 600_000,
    seed: 17,
    maxRounds: ROUNDS,
    checkpointEvery: 0,
    defences,
    ...(aggregation ? { replyBounds: { aggregation } } : {}),
    onRound: (s) => summaries.push(s),
  });
  const nodes = IDS.map((id, k) => new InProcessNode(coord, id, data.nodes[k]!, k, id === 'c' ? attack : 'none', rc));
  // Every node has uploaded before round 1 (the round loop starts as soon as one node has masks).
  for (const n of nodes) n.connect();
  const t0 = Date.now();
  while (coord.metrics().nodes.filter((n) => n.masks > 0).length < 3) {
    if (Date.now() - t0 > 10_000) throw new Error(`masks not uploaded: ${nodes.flatMap((n) => n.errors).join('; ')}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  await coord.start();
  await coord.waitForRound(ROUNDS, 300_000);
  const before = atAttackEnd!;
  const after = await flatWeights(g);
  let moved = 0;
  before.forEach((w, i) => w.forEach((x, j) => (moved = Math.max(moved, Math.abs(x - after[i]![j]!)))));
  const l1 = await honestL1(g);
  await coord.stop({ graceMs: 0, checkpoint: false });
  return { l1, movedAfterAttack: Number.isNaN(moved) ? 0 : moved, summaries, errors: nodes.flatMap((n) => n.errors), coord };
}

// Baselines: the same runs with node c honest. The defended runs compare with the defended
// baseline, the undefended ones with the undefended baseline (which is the paper's plain rule).
const baseline = await run('none');
const baselineOff = await run('none', false);
const within = (l1: number, base = baseline.l1) => Number.isFinite(l1) && Math.abs(l1 - base) <= 0.1 * base;
const initialL1 = await honestL1(makeGenerator(cfg, C, M));

// Model seeds (generator and discriminator initializations) for the checks whose one-run outcome
// depends on the seed and on rounding (see the flip tests below): those compare means over SEEDS.
const SEEDS = [cfg.seed, 6, 7, 8];
const baseRuns = new Map<number, Promise<RunResult>>([[cfg.seed, Promise.resolve(baseline)]]);
const baseAt = (seed: number) => baseRuns.get(seed) ?? baseRuns.set(seed, run('none', true, undefined, seed)).get(seed)!;
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const meanL1 = (rs: readonly RunResult[]) => mean(rs.map((r) => r.l1));
const l1s = (rs: readonly RunResult[]) => rs.map((r) => r.l1.toFixed(3)).join(', ');
/** The run at every seed (the first one given), and the mean honest L1 of the baselines at those seeds. */
async function overSeeds(first: RunResult, attack: Attack, aggregation?: AggregationMode): Promise<{ runs: RunResult[]; base: number }> {
  const runs = [first];
  for (const seed of SEEDS.slice(1)) runs.push(await run(attack, true, aggregation, seed));
  const bases: RunResult[] = [];
  for (const seed of SEEDS) bases.push(await baseAt(seed));
  return { runs, base: meanL1(bases) };
}

t.test('baseline: three honest nodes train the generator', async (t) => {
  t.ok(baseline.summaries.every((s) => s.stepped && s.onTime.length === 3), 'every round stepped with all three replies');
  t.same(baseline.errors, [], 'no frame refused');
  const clipped = baseline.summaries.reduce((n, s) => n + Object.keys(s.clipped).length, 0);
  t.ok(clipped < baseline.summaries.length * 3, `clipped-median scales down only replies above the median (${clipped} of ${baseline.summaries.length * 3})`);
  t.ok(baseline.l1 < 0.5 * initialL1, `L1 fell: ${initialL1.toFixed(4)} at init -> ${baseline.l1.toFixed(4)}`);
  t.ok(baselineOff.summaries.every((s) => Object.keys(s.clipped).length === 0), 'defences off: nothing clipped');
  t.ok(within(baselineOff.l1), `the defences cost honest nodes under 10% (undefended baseline ${baselineOff.l1.toFixed(4)})`);
  t.ok(baseline.movedAfterAttack > 1e-4, 'weights move');
});

// `seedMeanBound`: the allowed excess L1 on the mean over SEEDS (without one: 10% on this seed's
// run). The flood's is 20%: capped at half the weight (not the third an honest node has), the
// flooding node's data pull the generator that much further from the honest nodes' (measured
// 2026-12-02: -2% to +19% per seed in three summation orders, +8% to +12% on average).
const cases: { attack: Attack; what: string; check?: (t: Test, r: RunResult) => void; seedMeanBound?: number }[] = [
  {
    attack: 'huge', what: 'replies of 1e30',
    check: (t, r) => t.ok(r.summaries.slice(0, ATTACK_UNTIL).every((s) => s.clipped[`c@${s.round}`]! < 1e-20), 'every hostile reply scaled down'),
  },
  { attack: 'x10', what: 'replies x10', check: (t, r) => t.ok(r.summaries.slice(0, ATTACK_UNTIL).every((s) => `c@${s.round}` in s.clipped), 'every x10 reply scaled down') },
  {
    attack: 'sampleCount', what: 'sampleCount 1e9',
    check: (t, r) => {
      t.ok(r.summaries.every((s) => Math.abs(s.weights[`c@${s.round}`]! - 1 / 3) < 1e-9), 'weight from the 6 masks held, not the claim');
      t.equal(r.coord.metrics().nodes.find((n) => n.id === 'c')!.sampleCount, 1e9, 'the claim is kept for metrics');
    },
  },
  {
    attack: 'masks', what: 'crafted masks (1e30, -1e6, 255)',
    check: (t, r) => {
      t.equal(r.errors.length, 3, 'three uploads refused');
      t.match(r.errors[0], /maskUpload: masks: element 17 \[0, 0, 1, 1\] is 1\.0000000150474662e\+30; mask values must be 0 or 1/);
      t.match(r.errors[1], /element 18 .* is -1000000/);
      t.match(r.errors[2], /element 19 .* is 255/);
      t.equal(r.coord.metrics().nodes.find((n) => n.id === 'c')!.masks, 6, 'only the real masks held');
    },
  },
  {
    attack: 'flood', what: 'mask flood (306 masks)', seedMeanBound: 0.2,
    check: (t, r) => t.ok(r.summaries.every((s) => Math.abs(s.weights[`c@${s.round}`]! - 0.5) < 1e-9), 'the flood is capped at half the weight'),
  },
];

const figures: Record<string, { l1: number; moved: number }> = {
  baseline: { l1: baseline.l1, moved: baseline.movedAfterAttack }, 'baseline (defences off)': { l1: baselineOff.l1, moved: baselineOff.movedAfterAttack },
};
for (const c of cases) {
  t.test(`defended: ${c.what}`, async (t) => {
    const r = await run(c.attack);
    figures[c.attack] = { l1: r.l1, moved: r.movedAfterAttack };
    if (c.seedMeanBound === undefined) {
      t.ok(within(r.l1), `honest L1 ${r.l1.toFixed(4)} within 10% of the baseline ${baseline.l1.toFixed(4)}`);
    } else {
      const { runs, base } = await overSeeds(r, c.attack);
      const m = meanL1(runs);
      figures[`${c.attack} (mean of seeds ${SEEDS.join(', ')})`] = { l1: m, moved: NaN };
      t.ok(Math.abs(m - base) <= c.seedMeanBound * base, `mean honest L1 ${m.toFixed(4)} (per seed ${l1s(runs)}) within ${100 * c.seedMeanBound}% of the baselines' ${base.toFixed(4)}`);
      t.ok(runs.every((x) => x.summaries.every((s) => s.stepped)), 'every round stepped at every seed');
    }
    t.ok(r.movedAfterAttack > 1e-4, `honest rounds after the attack move the weights (max change ${r.movedAfterAttack.toExponential(2)})`);
    t.ok(r.summaries.every((s) => s.stepped), 'every round stepped');
    c.check?.(t, r);
  });
}

t.test('undefended: a crafted mask that reached the generator would corrupt its batch-norm statistics', async (t) => {
  const g = makeGenerator(cfg, C, M);
  const opt = new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: cfg.lr, betas: [cfg.beta1, 0.999] });
  const backend = new EngineGenerator(g, opt, cfg);
  const mask = conditionTensor(data.nodes[2]!.slices.slice(0, 1), C);
  mask[17] = 1e30; // what validation refuses above
  await backend.generate({ round: 1, masks: mask, shape: [1, C, SIZE, SIZE] });
  const stats = Object.entries(await g.stateDict()).filter(([k]) => k.endsWith('running_var') || k.endsWith('running_mean'));
  const bad = stats.filter(([, v]) => (v.data as Float32Array).some((x) => !Number.isFinite(x) || Math.abs(x) > 1e20)).map(([k]) => k);
  t.ok(bad.length > 0, `one forward in training mode: ${bad.length} of ${stats.length} running statistics non-finite or > 1e20 (${bad[0]})`);
});

// Only 1e30 has a damaging undefended control: x10 replies without the defences stay within 10%
// here (Adam's per-weight scaling absorbs most of a uniform scale), so the x10 case above is a
// regression check of the clipping (every x10 reply scaled down), not evidence that it is needed.
for (const attack of ['huge'] as const) {
  t.test(`undefended: ${attack} damages the generator (the test above can fail)`, async (t) => {
    const r = await run(attack, false);
    figures[`${attack} (defences off)`] = { l1: r.l1, moved: r.movedAfterAttack };
    const frozen = r.movedAfterAttack <= 1e-4;
    t.ok(!within(r.l1, baselineOff.l1) || frozen, `honest L1 ${r.l1.toFixed(4)} vs the undefended baseline ${baselineOff.l1.toFixed(4)}; max weight change after the attack ${r.movedAfterAttack.toExponential(2)}`);
  });
}

// Replies with their direction flipped (x(-10)): norm clipping bounds a reply's size, not its
// direction, so 'clipped-median' lets the node pull the generator away from its data (the
// control: it must break the bound, or the attack proves nothing). 'coordinate-median' takes the
// median of the three nodes' parameter gradients, which stays between the two honest ones;
// 'median-trust' weighs each vote by its alignment with that median (after FLTrust).
//
// One run's outcome is chaotic: measured 2026-12-02 at model seeds 5-13, each with the weight
// gradients summed in two orders (18 runs per rule), the control's excess honest L1 ranged from
// none (-5%) to +500% (a generator that diverged), coordinate-median's from -11% to +28% and
// median-trust's from +3% to +33%. One run proves little either way: the earlier version of this
// test (seed 5 only) stopped failing its control when a kernel's summation order changed. So the
// flip runs repeat over SEEDS and the means are compared: the control must break the 10% bound
// on average and coordinate-median must remove at least half of the mean damage (measured 69-92%
// in three summation orders). median-trust removed 15-86% (its excess includes its own cost with
// every node honest, +5% on the mean): asserted only to do better than the control, and to trust
// the flipped replies less than the honest ones.
interface FlipRuns { base: RunResult[]; control: RunResult[]; median: RunResult[]; trust: RunResult[] }
let flipRuns: Promise<FlipRuns> | undefined;
function flips(): Promise<FlipRuns> {
  flipRuns ??= (async () => {
    const out: FlipRuns = { base: [], control: [], median: [], trust: [] };
    for (const seed of SEEDS) {
      out.base.push(await baseAt(seed));
      out.control.push(await run('flip', true, 'clipped-median', seed));
      out.median.push(await run('flip', true, 'coordinate-median', seed));
      out.trust.push(await run('flip', true, 'median-trust', seed));
    }
    for (const [k, rs] of Object.entries(out)) figures[`flip runs: ${k} (mean of seeds ${SEEDS.join(', ')})`] = { l1: meanL1(rs), moved: NaN };
    console.log(`# flip per seed ${SEEDS.join(', ')}: ${Object.entries(out).map(([k, rs]) => `${k} ${l1s(rs)}`).join('; ')}`);
    return out;
  })();
  return flipRuns;
}

t.test("'coordinate-median' against replies with their direction flipped", async (t) => {
  const honest = await overSeeds(await run('none', true, 'coordinate-median'), 'none', 'coordinate-median');
  figures["baseline ('coordinate-median', mean of seeds)"] = { l1: meanL1(honest.runs), moved: NaN };
  t.ok(within(meanL1(honest.runs), honest.base), `three honest nodes: coordinate-median costs under 10% on average (L1 ${meanL1(honest.runs).toFixed(4)}, per seed ${l1s(honest.runs)}, against ${honest.base.toFixed(4)})`);
  const f = await flips();
  const base = meanL1(f.base);
  t.ok(f.median.every((r) => r.summaries.every((s) => s.stepped)), 'every round stepped');
  t.ok(!within(meanL1(f.control), base), `control: with 'clipped-median' the attack breaks the 10% bound on average (honest L1 ${meanL1(f.control).toFixed(4)} against ${base.toFixed(4)}; per seed ${l1s(f.control)})`);
  const damage = meanL1(f.median) - base;
  const undefended = meanL1(f.control) - base;
  t.ok(damage <= undefended / 2, `mean excess honest L1 ${damage.toFixed(4)} with coordinate-median (per seed ${l1s(f.median)}), ${undefended.toFixed(4)} with clipped-median`);
  t.ok(f.median.every((r) => r.movedAfterAttack > 1e-4), 'honest rounds after the attack move the weights');
});

t.test("'median-trust' against replies with their direction flipped", async (t) => {
  const honest = await overSeeds(await run('none', true, 'median-trust'), 'none', 'median-trust');
  figures["baseline ('median-trust', mean of seeds)"] = { l1: meanL1(honest.runs), moved: NaN };
  t.ok(within(meanL1(honest.runs), honest.base), `three honest nodes: median-trust costs under 10% on average (L1 ${meanL1(honest.runs).toFixed(4)}, per seed ${l1s(honest.runs)}, against ${honest.base.toFixed(4)})`);
  const f = await flips();
  const base = meanL1(f.base);
  const damage = meanL1(f.trust) - base;
  const undefended = meanL1(f.control) - base;
  t.ok(damage < undefended, `mean excess honest L1 ${damage.toFixed(4)} with median-trust (per seed ${l1s(f.trust)}), ${undefended.toFixed(4)} with clipped-median`);
  const meanTrust = (ids: string[]) =>
    mean(f.trust.flatMap((r) => r.summaries.slice(0, ATTACK_UNTIL).flatMap((s) => ids.map((id) => s.trust?.[`${id}@${s.round}`] ?? NaN))));
  const hostileTrust = meanTrust(['c']);
  const honestTrust = meanTrust(['a', 'b']);
  t.ok(hostileTrust < 0.75 * honestTrust, `the flipped replies are trusted less: mean trust ${hostileTrust.toFixed(2)} against ${honestTrust.toFixed(2)} for the honest ones`);
  t.ok(f.trust.every((r) => r.movedAfterAttack > 1e-4), 'honest rounds after the attack move the weights');
});

// 'mean' aggregation (3x the median) for comparison, with ASYNDGAN_HOSTILE_MEAN=1 (three more runs):
// recorded for docs/PROTOCOL.md, asserted only not to freeze G.
for (const attack of process.env.ASYNDGAN_HOSTILE_MEAN === '1' ? (['huge', 'x10'] as const) : []) {
  t.test(`'mean' aggregation: ${attack} (recorded for docs/PROTOCOL.md)`, async (t) => {
    const base = figures["baseline ('mean')"] ??= { l1: (await run('none', true, 'mean')).l1, moved: NaN };
    const r = await run(attack, true, 'mean');
    figures[`${attack} ('mean')`] = { l1: r.l1, moved: r.movedAfterAttack };
    t.ok(r.movedAfterAttack > 1e-4 && Number.isFinite(r.l1), `not frozen; L1 ${r.l1.toFixed(4)} vs ${base.l1.toFixed(4)} without the attacker`);
  });
}

t.teardown(() => console.log(`# honest L1 per run: ${JSON.stringify(figures)}`));
