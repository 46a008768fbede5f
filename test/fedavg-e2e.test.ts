/**
 * FedAvg-GAN over real sockets (uWebSockets.js server, `ws` clients, msgpack frames): two sites
 * with a deterministic CPU stand-in for the GAN (so the arithmetic can be checked exactly), then
 * one round with the real engine GAN. Checks: the global model after a round equals the
 * sample-weighted mean of the weights the sites sent (decoded from the frames themselves); bytes
 * counted equal the sum of the frame sizes, on the server and at the nodes; a site that leaves is
 * not waited for, and when it rejoins it trains from the current global model; the checkpoint
 * restores round and weights.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFrame } from '../src/net/codec.js';
import type { Losses } from '../src/net/protocol.js';
import {
  EngineLocalGan, FedAvgCoordinator, FedAvgNode, FedAvgServer, decodeModels, weightedMean,
  type FedRoundSummary, type FedSessionConfig, type LocalGan, type ModelLayout,
} from '../src/fedavg/index.js';
import { FileCheckpointStore } from '../src/net/checkpoint.js';

const TOKENS = { a: 'tok-a-0123456789', b: 'tok-b-0123456789' };
const LAYOUTS: { G: ModelLayout; D: ModelLayout } = { G: [[3], [2, 2]], D: [[5]] };

/** "Training": every step adds `rate` x (step index + 1) to every weight. Deterministic, CPU only. */
class FakeGan implements LocalGan {
  readonly layouts = LAYOUTS;
  w: { G: Float32Array[]; D: Float32Array[] } = { G: [new Float32Array(3), new Float32Array(4)], D: [new Float32Array(5)] };
  loads: { G: Float32Array[]; D: Float32Array[] }[] = [];
  constructor(readonly sampleCount: number, private readonly rate: number) {}
  load(m: { G: Float32Array[]; D: Float32Array[] }): void {
    this.loads.push(m);
    this.w = { G: m.G.map((x) => new Float32Array(x)), D: m.D.map((x) => new Float32Array(x)) };
  }
  async train(steps: number, first: number, _s: FedSessionConfig): Promise<Losses> {
    await new Promise((r) => setTimeout(r, 30));
    for (let k = 0; k < steps; k++) for (const x of [...this.w.G, ...this.w.D]) for (let i = 0; i < x.length; i++) x[i]! += this.rate * (first + k + 1) * 1e-3;
    return { dReal: 0.6, dFake: 0.7, gGan: 0.8, gL1: this.rate };
  }
  async read(): Promise<{ G: Float32Array[]; D: Float32Array[] }> {
    return { G: this.w.G.map((x) => new Float32Array(x)), D: this.w.D.map((x) => new Float32Array(x)) };
  }
  async saveState(): Promise<Uint8Array> {
    return new Uint8Array(0);
  }
  async loadState(): Promise<void> {}
}

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Rec { direction: 'in' | 'out'; nodeId: string | undefined; bytes: Uint8Array }

t.test('two sites over real sockets: weighted mean, counted bytes, leave and rejoin, checkpoint', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedavg-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const initial = { G: [Float32Array.of(1, 2, 3), Float32Array.of(-1, -2, 0.5, 0.25)], D: [Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5)] };
  const frames: Rec[] = [];
  const rounds: FedRoundSummary[] = [];
  const E = 3;
  const session = { localSteps: E, batchSize: 2, lambdaL1: 100, lr: 2e-4, beta1: 0.5, totalSteps: 100, decaySteps: 0 };
  const server = await FedAvgServer.start({
    tokens: TOKENS, port: 0, initial, layouts: LAYOUTS, session, roundTimeoutMs: 5000, maxRounds: 8, checkpointDir: dir, checkpointEvery: 1,
    shutdownGraceMs: 500, onFrame: (f) => frames.push({ ...f, bytes: new Uint8Array(f.bytes) }), onRound: (s) => rounds.push(s),
  });
  const nodeFrames = new Map<string, Rec[]>();
  const mkNode = (id: 'a' | 'b', gan: FakeGan): FedAvgNode => {
    nodeFrames.set(id, []);
    return new FedAvgNode({ url: server.url, nodeId: id, token: TOKENS[id], gan, reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, onFrame: (f) => nodeFrames.get(id)!.push({ ...f, bytes: new Uint8Array(f.bytes) }) });
  };
  const ganA = new FakeGan(10, 1);
  const ganB = new FakeGan(30, 2);
  const a = mkNode('a', ganA);
  let b = mkNode('b', ganB);
  await Promise.all([a.start(), b.start()]);
  await waitFor(() => rounds.some((r) => r.onTime.length === 2), 10000, 'a round both sites answered');

  // 1. The next global model is the sample-weighted mean of what the two sites sent.
  const both = rounds.find((r) => r.onTime.length === 2)!;
  await server.coordinator.waitForRound(both.round + 1, 10000);
  const decoded = frames.map((f) => ({ ...f, msg: decodeFrame(f.bytes, 1e9) }));
  const updates = ['a', 'b'].map((id) => decoded.find((f) => f.direction === 'in' && f.nodeId === id && f.msg.type === 'fedUpdate' && f.msg.round === both.round)!);
  const next = decoded.find((f) => f.direction === 'out' && f.msg.type === 'fedModel' && f.msg.round === both.round + 1)!;
  t.ok(updates.every(Boolean) && next, 'the two updates and the next global model are on the wire');
  const sentModels = updates.map((u) => decodeModels('fedUpdate', u.msg.models, LAYOUTS));
  const global = decodeModels('fedModel', next.msg.models, LAYOUTS);
  t.same(updates.map((u) => u.msg.sampleCount), [10, 30], 'sample counts as claimed');
  t.same(updates.map((u) => u.msg.steps), [E, E], `E = ${E} local steps each`);
  for (const k of ['G', 'D'] as const) {
    const ref = weightedMean(sentModels.map((m) => m[k]), [10, 30]);
    const diff = Math.max(...ref.flatMap((x, i) => [...x].map((v, j) => Math.abs(v - global[k][i]![j]!))));
    t.ok(diff < 1e-6, `${k}: global = (10 w_a + 30 w_b) / 40 (max diff ${diff.toExponential(1)})`);
  }
  t.same(both.shares, { a: 0.25, b: 0.75 }, 'shares in the round summary');
  t.ok(Math.abs(global.G[0]![0]! - initial.G[0]![0]!) > 1e-4, 'the weights changed');

  // 2. A site leaves: the rounds go on without waiting for it.
  const killedAt = server.round;
  b.kill();
  await waitFor(() => rounds.some((r) => r.round > killedAt + 1 && r.onTime.join() === 'a'), 10000, 'a round answered by a alone');
  t.pass(`after b left at round ${killedAt}, rounds continue with a alone`);

  // 3. It rejoins (a fresh process: zero weights) and trains from the current global model.
  const fresh = new FakeGan(30, 2);
  const rejoinAt = server.round;
  b = mkNode('b', fresh);
  await b.start();
  await waitFor(() => fresh.loads.length > 0, 10000, 'the rejoined site to get a model');
  const firstModelIn = nodeFrames.get('b')!.map((f) => decodeFrame(f.bytes, 1e9)).find((m) => m.type === 'fedModel')!;
  await waitFor(() => frames.some((f) => f.direction === 'out' && f.nodeId === 'a' && decodeFrame(f.bytes, 1e9).round === firstModelIn.round), 5000, 'the same round sent to a');
  const toA = frames.find((f) => f.direction === 'out' && f.nodeId === 'a' && (decodeFrame(f.bytes, 1e9) as { type: string; round: number }).type === 'fedModel' && decodeFrame(f.bytes, 1e9).round === firstModelIn.round)!;
  const toB = frames.find((f) => f.direction === 'out' && f.nodeId === 'b' && (decodeFrame(f.bytes, 1e9) as { type: string }).type === 'fedModel' && decodeFrame(f.bytes, 1e9).round === firstModelIn.round)!;
  t.ok(Buffer.from(toA.bytes).equals(Buffer.from(toB.bytes)), `round ${firstModelIn.round as number}: the rejoined site got the very global model the others got`);
  t.ok((firstModelIn.round as number) > rejoinAt, 'a model of the current round, not of the one it left in');
  t.ok(Math.abs(fresh.loads[0]!.G[0]![0]! - 0) > 0.5, 'it trains from the global weights, not from its fresh initialization');
  await waitFor(() => rounds.some((r) => r.round > rejoinAt && r.onTime.length === 2), 10000, 'a round with both again');

  // 4. Bytes: counted = sum of frame sizes, both directions, and what the nodes counted.
  await server.coordinator.waitForRound(8, 20000);
  await waitFor(() => a.stats.updatesSent > 0 && server.metrics().nodesConnected === 0 || server.round >= 8, 5000, 'the end');
  await server.stop();
  const m = server.metrics();
  const sum = (d: 'in' | 'out') => frames.filter((f) => f.direction === d).reduce((s, f) => s + f.bytes.byteLength, 0);
  t.ok(m.totals.bytesIn > 0 && m.totals.bytesOut > 0, `bytes counted: in ${m.totals.bytesIn}, out ${m.totals.bytesOut}`);
  t.equal(m.totals.bytesIn, sum('in'), 'server bytes in = sum of the sizes of the frames it received');
  t.equal(m.totals.bytesOut, sum('out'), 'server bytes out = sum of the sizes of the frames it sent');
  const perRound = rounds.reduce((s, r) => s + r.bytesIn + r.bytesOut, 0);
  t.ok(perRound > 0 && perRound <= m.totals.bytesIn + m.totals.bytesOut, 'per-round bytes add up to at most the total (handshakes are outside rounds)');
  const modelBytes = (LAYOUTS.G.flat().reduce((s, n) => s + n, 0) + 0) * 4;
  t.ok(both.bytesOut >= 2 * modelBytes && both.bytesIn >= 2 * modelBytes, 'a round with two sites carries at least the weights of two models each way');
  const nodeOut = (id: string) => nodeFrames.get(id)!.filter((f) => f.direction === 'out').reduce((s, f) => s + f.bytes.byteLength, 0);
  t.equal(a.stats.bytesOut, nodeOut('a'), "node a's count = its frames");
  // The server counts a node's own bytes from its authenticated hello on (the hello frames themselves are in the totals).
  const hellos = nodeFrames.get('a')!.filter((f) => f.direction === 'out' && decodeFrame(f.bytes, 1e9).type === 'hello').reduce((s, f) => s + f.bytes.byteLength, 0);
  t.equal(m.nodes.find((n) => n.id === 'a')!.stats.bytesIn, nodeOut('a') - hellos, 'what a sent (after its hello) is what the server received from a');

  // 5. The checkpoint restores round and global weights.
  const restored = new FedAvgCoordinator({ tokens: TOKENS, initial, layouts: LAYOUTS, session, checkpoint: new FileCheckpointStore(dir, 'fedavg-server-checkpoint.msgpack'), maxRounds: 8 });
  await restored.start();
  t.equal(restored.round, server.round, `resumed at round ${server.round}`);
  t.same(restored.weights().G.map((x) => [...x]), server.coordinator.weights().G.map((x) => [...x]), 'with the same global G');
  await restored.stop({ graceMs: 0, checkpoint: false });
  await a.stop();
  await b.stop();
});

t.test('the server restarts from its checkpoint; the sites reconnect and training goes on from the saved round', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedavg-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const initial = { G: [Float32Array.of(1, 2, 3), Float32Array.of(-1, -2, 0.5, 0.25)], D: [Float32Array.of(0.1, 0.2, 0.3, 0.4, 0.5)] };
  const session = { localSteps: 1, batchSize: 2, lambdaL1: 100, lr: 2e-4, beta1: 0.5, totalSteps: 100, decaySteps: 0 };
  const common = { tokens: TOKENS, initial, layouts: LAYOUTS, session, roundTimeoutMs: 5000, checkpointDir: dir, checkpointEvery: 0, shutdownGraceMs: 1000, minNodes: 2 };
  const first = await FedAvgServer.start({ ...common, port: 0 });
  const port = first.port;
  const gans = [new FakeGan(10, 1), new FakeGan(30, 2)];
  const nodes = (['a', 'b'] as const).map((id, i) => new FedAvgNode({ url: `ws://127.0.0.1:${port}/ws`, nodeId: id, token: TOKENS[id], gan: gans[i]!, reconnect: { initialDelayMs: 100, maxDelayMs: 300 } }));
  t.teardown(() => nodes.forEach((n) => n.kill()));
  await Promise.all(nodes.map((n) => n.start()));
  await first.coordinator.waitForRound(3, 10000);
  await first.stop(); // checkpoint on stop, goodbye: the sites will redial
  const saved = first.round;
  const savedG = first.coordinator.weights().G;
  const second = await FedAvgServer.start({ ...common, port, maxRounds: saved + 2, listenRetryMs: 5000 });
  t.equal(second.round, saved, `the new server resumed at round ${saved}`);
  t.same(second.coordinator.weights().G.map((x) => [...x]), savedG.map((x) => [...x]), 'with the saved global model');
  await second.coordinator.waitForRound(saved + 2, 15000);
  t.same(second.metrics().lastRound!.onTime, ['a', 'b'], 'both sites reconnected and answered');
  const loadsAfter = gans[0]!.loads.filter((m) => m.G[0]![0]! !== 0);
  t.ok(loadsAfter.length >= saved + 2, 'site a trained in the rounds before and after the restart');
  await second.stop();
  await Promise.all(nodes.map((n) => n.stop()));
});

t.test('one round with the real GAN (tiny pix2pix, E = 2) changes both models and stays finite', async (t) => {
  const { init } = await import('../src/engine/index.js');
  const { loadDataSource } = await import('../src/cli/data-source.js');
  const { DEFAULT_GAN_CONFIG, Pix2pixTrainer } = await import('../src/train/pix2pix.js');
  const { modelLayout, readModel } = await import('../src/fedavg/models.js');
  const engine = await init();
  const cfg = { ...DEFAULT_GAN_CONFIG, ngf: 2, ndf: 2, blocks: 1, iters: 4, decayIters: 0 };
  const data = await loadDataSource('phantom', { size: 32, nodes: 2, seed: 1 });
  const ref = new Pix2pixTrainer(cfg, data.test.numClasses, data.test.modalities.length);
  const lg = await modelLayout(ref.generator);
  const ld = await modelLayout(ref.discriminator);
  const initial = { G: await readModel(ref.generator, lg.names), D: await readModel(ref.discriminator, ld.names) };
  const server = await FedAvgServer.start({
    tokens: TOKENS, port: 0, initial, layouts: { G: lg.layout, D: ld.layout }, minNodes: 2, maxRounds: 1, roundTimeoutMs: 60000, checkpointEvery: 0, shutdownGraceMs: 200,
    session: { localSteps: 2, batchSize: 2, lambdaL1: 100, lr: 2e-4, beta1: 0.5, totalSteps: 2, decaySteps: 0 },
  });
  const nodes = await Promise.all((['a', 'b'] as const).map(async (id, i) => new FedAvgNode({
    url: server.url, nodeId: id, token: TOKENS[id], gan: await EngineLocalGan.create(engine, { ...cfg, seed: 10 + i }, data.nodes[i]!),
  })));
  await Promise.all(nodes.map((n) => n.start()));
  await server.coordinator.waitForRound(1, 60000);
  const w = server.coordinator.weights();
  const changed = (a: Float32Array[], b: Float32Array[]) => a.some((x, i) => x.some((v, j) => Math.abs(v - b[i]![j]!) > 1e-7));
  t.ok(changed(w.G, initial.G), 'the global G changed');
  t.ok(changed(w.D, initial.D), 'the global D changed');
  t.ok([...w.G, ...w.D].every((x) => x.every(Number.isFinite)), 'finite');
  t.same(server.metrics().lastRound!.onTime, ['a', 'b'], 'both sites averaged');
  t.equal(nodes[0]!.stats.localSteps, 2);
  await server.stop();
  await Promise.all(nodes.map((n) => n.stop()));
});
