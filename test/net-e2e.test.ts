/**
 * End to end on loopback: one uWebSockets.js server, three ws nodes, toy backends doing
 * real arithmetic. Training must move the generator to the target, and no frame a node
 * sends may contain its real image bytes.
 */
import t from 'tap';
import { randomFlips } from '../src/net/augment.js';
import { decodeFrame, encodeFrame, encodeTensor, float32ToF16Array } from '../src/net/codec.js';
import type { RoundSummary, ServerMetrics } from '../src/net/coordinator.js';
import { LinearGenerator, TARGET_A, TARGET_B, makeNodeData } from './helpers/net-backends.js';
import { H, W, makeTestNode, startTestServer, type TestNode } from './helpers/net-harness.js';

/** Finds any `win`-byte window of the secret data inside a frame. */
class LeakDetector {
  private readonly windows = new Set<string>();
  constructor(secrets: Float32Array[], readonly win = 16) {
    for (const s of secrets) {
      const f32 = new Uint8Array(s.buffer, s.byteOffset, s.byteLength);
      const f16 = new Uint8Array(float32ToF16Array(s).buffer);
      // f32 windows are aligned to elements; f16 windows of 8 bytes (4 halves).
      for (let i = 0; i + win <= f32.length; i += 4) this.windows.add(Buffer.from(f32.subarray(i, i + win)).toString('hex'));
      for (let i = 0; i + 8 <= f16.length; i += 2) this.windows.add('h' + Buffer.from(f16.subarray(i, i + 8)).toString('hex'));
    }
  }
  /** True when `frame` contains a secret window at any byte offset. */
  leaks(frame: Uint8Array): boolean {
    const hex = Buffer.from(frame).toString('hex');
    for (let i = 0; i + this.win <= frame.length; i++) {
      if (this.windows.has(hex.slice(2 * i, 2 * (i + this.win)))) return true;
    }
    for (let i = 0; i + 8 <= frame.length; i++) {
      if (this.windows.has('h' + hex.slice(2 * i, 2 * (i + 8)))) return true;
    }
    return false;
  }
}

t.test('server + 3 nodes train the generator toward the target; nothing real leaves a node', async (t) => {
  const gen = new LinearGenerator(0.03);
  const summaries: RoundSummary[] = [];
  const serverIn: { nodeId: string | undefined; bytes: Uint8Array }[] = [];
  const server = await startTestServer(gen, {
    augmentation: randomFlips({ horizontal: true, vertical: true }),
    onRound: (s) => summaries.push(s),
    onFrame: (e) => {
      if (e.direction === 'in') serverIn.push({ nodeId: e.nodeId, bytes: new Uint8Array(e.bytes) });
    },
  });
  t.teardown(() => server.stop());
  t.ok(server.port > 0, `ephemeral port reported (${server.port})`);

  const nodeOut: { nodeId: string; bytes: Uint8Array }[] = [];
  const spec: [string, number, number, number][] = [['alpha', 12, 1, 0.3], ['beta', 24, 2, 0.5], ['gamma', 6, 3, 0.7]];
  const nodes: TestNode[] = spec.map(([id, n, seed, density]) =>
    makeTestNode(server.url, id, {
      data: makeNodeData(id, n, H, W, seed, density),
      onFrame: (e) => {
        if (e.direction === 'out') nodeOut.push({ nodeId: id, bytes: new Uint8Array(e.bytes) });
      },
    }),
  );
  for (const n of nodes) t.teardown(() => n.node.stop());
  const a0 = gen.a;
  const b0 = gen.b;
  await Promise.all(nodes.map((n) => n.node.start()));
  await Promise.all(nodes.map((n) => n.node.waitUntilReady(5000)));
  await server.coordinator.waitForRound(200, 40000);

  // Convergence.
  t.ok(Math.abs(a0 - TARGET_A) > 0.5 && Math.abs(b0 - TARGET_B) > 0.15, 'starts far from the target');
  t.ok(Math.abs(gen.a - TARGET_A) < 0.05, `a moved to the target (a=${gen.a.toFixed(4)}, target ${TARGET_A})`);
  t.ok(Math.abs(gen.b - TARGET_B) < 0.05, `b moved to the target (b=${gen.b.toFixed(4)}, target ${TARGET_B})`);
  const early = summaries.slice(0, 5).map((s) => s.losses!.gL1);
  const late = summaries.slice(-5).map((s) => s.losses!.gL1);
  t.ok(Math.max(...late) < 0.3 * Math.min(...early), `L1 fell (${early[0]!.toFixed(3)} -> ${late[late.length - 1]!.toFixed(3)})`);
  t.ok(nodes.every((n) => n.disc.steps > 100), 'every discriminator stepped');
  t.ok(nodes.every((n) => n.disc.w !== 0.1), 'discriminator weights moved (they stay on the node)');

  // Weighting: balance + samples -> n_j / sum n over the replies applied, with no node above
  // maxNodeShare (0.5): beta's 24/42 is capped at 1/2, the rest shared 12:6 by alpha and gamma.
  const full = summaries.find((s) => s.onTime.length === 3 && s.lateApplied.length === 0)!;
  t.ok(full, 'a round where all three answered on time');
  const r = full.round;
  t.ok(Math.abs(full.weights[`alpha@${r}`]! - 1 / 3) < 1e-9, 'alpha weight 12/18 of 1/2');
  t.ok(Math.abs(full.weights[`beta@${r}`]! - 1 / 2) < 1e-9, 'beta weight 24/42 capped at 1/2');
  t.ok(Math.abs(full.weights[`gamma@${r}`]! - 1 / 6) < 1e-9, 'gamma weight 6/18 of 1/2');

  // Metrics over HTTP on the same port.
  const health = (await (await fetch(`${server.httpUrl}/health`)).json()) as { ok: boolean; round: number; nodesConnected: number };
  t.equal(health.ok, true);
  t.equal(health.nodesConnected, 3);
  t.ok(health.round >= 200);
  const m = (await (await fetch(`${server.httpUrl}/metrics`)).json()) as ServerMetrics;
  t.equal(m.nodes.length, 3);
  for (const n of m.nodes) {
    t.ok(n.connected && typeof n.stats.avgLatencyMs === 'number' && n.stats.avgLatencyMs >= 0, `${n.id}: latency reported`);
    t.ok(n.stats.repliesOnTime > 100 && n.stats.bytesIn > 0 && n.stats.bytesOut > 0, `${n.id}: counters`);
  }
  t.ok(m.lastRound && m.lastRound.bytesIn > 0 && m.lastRound.bytesOut > 0, 'bytes in/out per round');
  t.ok(m.lastRound?.losses && Number.isFinite(m.lastRound.losses.gL1), 'losses reported');
  t.equal((await fetch(`${server.httpUrl}/nope`)).status, 404);

  // Privacy: scan every frame every node sent (node side) and every frame the server received.
  const detector = new LeakDetector(nodes.map((n) => n.data.reals));
  const planted = encodeFrame({ type: 'gradientReply', round: 1, keys: ['x'], grad: encodeTensor(nodes[1]!.data.reals.subarray(64, 128), [1, 1, 8, 8]), losses: { dReal: 0, dFake: 0, gGan: 0, gL1: 0 } });
  t.ok(detector.leaks(planted), 'positive control: a frame carrying real bytes is detected');
  const planted16 = encodeFrame({ type: 'gradientReply', round: 1, keys: ['x'], grad: encodeTensor(nodes[2]!.data.reals.subarray(0, 64), [1, 1, 8, 8], 'f16'), losses: { dReal: 0, dFake: 0, gGan: 0, gL1: 0 } });
  t.ok(detector.leaks(planted16), 'positive control: f16 encoding detected too');
  t.ok(nodeOut.length > 600 && serverIn.length > 600, `frames recorded (${nodeOut.length} sent by nodes, ${serverIn.length} received by server)`);
  const leaking = [...nodeOut, ...serverIn].filter((f) => detector.leaks(f.bytes));
  t.equal(leaking.length, 0, 'no frame from a node contains real image bytes');
  const types = new Set(serverIn.map((f) => (decodeFrame(f.bytes, 1 << 30) as { type: string }).type));
  t.same([...types].sort(), ['gradientReply', 'hello', 'maskUpload'], 'nodes sent only hello, maskUpload, gradientReply');
  t.ok(serverIn.every((f) => f.nodeId === undefined || ['alpha', 'beta', 'gamma'].includes(f.nodeId)));
});

t.test('uniform sampling with equal weighting also learns; f16 fakes on the wire', async (t) => {
  const gen = new LinearGenerator(0.03);
  const summaries: RoundSummary[] = [];
  const server = await startTestServer(gen, { sampling: 'uniform', weighting: 'equal', wireDtype: 'f16', onRound: (s) => summaries.push(s), session: { maskChannels: 1, imageChannels: 1, height: 8, width: 8, batchSize: 6 } });
  t.teardown(() => server.stop());
  const nodes = [
    makeTestNode(server.url, 'alpha', { n: 30, seed: 11 }),
    makeTestNode(server.url, 'beta', { n: 10, seed: 12 }),
    makeTestNode(server.url, 'gamma', { n: 5, seed: 13, dtypes: ['f32'] }),
  ];
  for (const n of nodes) t.teardown(() => n.node.stop());
  await Promise.all(nodes.map((n) => n.node.start()));
  await server.coordinator.waitForRound(150, 30000);
  t.ok(Math.abs(gen.a - TARGET_A) < 0.08 && Math.abs(gen.b - TARGET_B) < 0.08, `learned (a=${gen.a.toFixed(3)}, b=${gen.b.toFixed(3)})`);
  // Uniform: each round's batch holds exactly batchSize masks in total.
  for (const s of summaries.slice(0, 20)) {
    const total = s.onTime.length;
    t.ok(total >= 1 && total <= 3);
    const ws = Object.values(s.weights);
    t.ok(ws.every((w) => Math.abs(w - 1 / ws.length) < 1e-12), 'equal weights');
  }
  // alpha holds 2/3 of the masks, so it is asked far more often than gamma.
  const asked = (id: string): number => summaries.filter((s) => s.asked.includes(id)).length;
  t.ok(asked('alpha') > asked('gamma'), `alpha asked ${asked('alpha')} times, gamma ${asked('gamma')}`);
  t.equal(server.metrics().nodes.find((n) => n.id === 'gamma')?.stats.framesRejected, 0, 'f32-only node served in f32 without errors');
});
