/**
 * The privacy defences inside a running DiscriminatorNode, over real sockets: the budget stops
 * the node with privacy_budget_spent (and a restart does not reset it), a server config above the
 * node's limits is refused with config_refused, the query guard and range check refuse with
 * query_refused, GAN-only replies ignore the server's lambdaL1. Each check is paired with the
 * same run with the defence off, which asserts the opposite.
 */
import t from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { encodeTensor } from '../src/net/codec.js';
import { MemoryCheckpointStore } from '../src/net/checkpoint.js';
import type { NodeOptions } from '../src/net/node.js';
import { PROTOCOL_VERSION, type SessionConfig } from '../src/net/protocol.js';
import { NodePrivacy, RdpAccountant, privacySettings, seededNormalSource } from '../src/privacy/index.js';
import { LinearGenerator } from './helpers/net-backends.js';
import { H, W, RawClient, makeTestNode, startTestServer, waitFor } from './helpers/net-harness.js';

type Logged = { level: string; message: string; data: Record<string, unknown> | undefined };
const recorder = () => {
  const lines: Logged[] = [];
  return { lines, log: (level: string, message: string, data?: Record<string, unknown>) => void lines.push({ level, message, data }) };
};

t.test('a node stops with privacy_budget_spent when its epsilon budget would be exceeded; without a budget it answers on', async (t) => {
  const serverLog = recorder();
  const server = await startTestServer(new LinearGenerator(), { maxRounds: 30, log: serverLog.log });
  t.teardown(() => server.stop());
  let failed: string | undefined;
  const nodeLog = recorder();
  const ledger = new MemoryCheckpointStore();
  const limited = makeTestNode(server.url, 'alpha', {
    privacy: 'dp', privacyOverrides: { epsilonBudget: 3 }, privacyLedger: ledger, log: nodeLog.log, onFailed: (w) => (failed = w),
  });
  const free = makeTestNode(server.url, 'beta', { privacy: 'dp', privacyOverrides: { epsilonBudget: Infinity } });
  t.teardown(() => limited.node.stop());
  t.teardown(() => free.node.stop());
  await Promise.all([limited.node.start(), free.node.start()]);
  await waitFor(() => limited.node.state === 'failed', 20_000, 'the budget to run out');
  await server.coordinator.waitForRound(30, 20_000);

  // dp: sigma 30, B = 4 -> z = 7.5 per reply. The budget admits exactly the replies whose epsilon stays <= 3.
  let allowed = 0;
  for (;;) {
    const a = new RdpAccountant();
    a.addGaussian(7.5, allowed + 1);
    if (a.epsilon(1e-5) > 3) break;
    allowed++;
  }
  t.equal(limited.node.stats.repliesSent, allowed, `${allowed} replies, then stop`);
  t.ok(limited.node.privacy.epsilon <= 3, `epsilon ${limited.node.privacy.epsilon.toFixed(3)} within the budget`);
  t.match(failed, /privacy budget spent: epsilon .* above the budget 3/, 'onFailed says why');
  t.ok(nodeLog.lines.some((l) => l.level === 'error' && l.message === 'privacy budget spent; stopping'), 'logged');
  await waitFor(() => serverLog.lines.some((l) => l.data?.code === 'privacy_budget_spent' && l.data?.nodeId === 'alpha'), 5000, 'the server to hear why');
  const reported = server.metrics().nodes.find((n) => n.id === 'alpha')!.stats.reported as Record<string, number>;
  t.equal(reported.epsilon, limited.node.privacy.epsilon, 'the server holds the node\'s epsilon (status.metrics)');
  t.equal(reported.repliesReleased, allowed);
  t.match(server.metrics().privacy.alpha, { preset: 'dp', epsilon: limited.node.privacy.epsilon, delta: 1e-5, epsilonBudget: 3 }, '/metrics privacy summary');
  // Defence off (no budget): the same preset answers every round.
  t.ok(free.node.stats.repliesSent >= 28, `without a budget: ${free.node.stats.repliesSent} of 30 rounds answered (it may join after round 1)`);
  t.equal(free.node.stats.requestsRefused, 0);
  t.ok(free.node.privacy.epsilon > 3, 'and its epsilon went past 3');

  // A restart with the same ledger does not reset the budget: the new node refuses at once.
  const again = makeTestNode(server.url, 'alpha', { privacy: 'dp', privacyOverrides: { epsilonBudget: 3 }, privacyLedger: ledger });
  t.teardown(() => again.node.stop());
  t.equal((await (async () => (await again.node.start(), again.node.privacy.repliesReleased))()), allowed, 'ledger restored before connecting');
  t.equal(again.node.privacy.epsilon, limited.node.privacy.epsilon);
  t.match(again.node.privacy.admit(again.data.keys.slice(0, 4), new Float32Array(4 * H * W)), { code: 'privacy_budget_spent' }, 'and it refuses the next request');
});

t.test('a welcome whose lambdaL1 exceeds the node\'s limit is refused (config_refused); privacy off accepts it', async (t) => {
  const serverLog = recorder();
  const server = await startTestServer(new LinearGenerator(), {
    session: { maskChannels: 1, imageChannels: 1, height: H, width: W, batchSize: 4, lambdaL1: 10000 }, log: serverLog.log, maxRounds: 3,
  });
  t.teardown(() => server.stop());
  let why: string | undefined;
  const guarded = makeTestNode(server.url, 'alpha', { privacy: 'guarded', onFailed: (w) => (why = w) });
  const off = makeTestNode(server.url, 'beta', { privacy: 'off' });
  t.teardown(() => guarded.node.stop());
  t.teardown(() => off.node.stop());
  await Promise.all([guarded.node.start(), off.node.start()]);
  await waitFor(() => guarded.node.state === 'failed', 5000, 'the refusal');
  t.match(why, /config refused: the server asks config\.lambdaL1 = 10000, above this node's limit 100/);
  await waitFor(() => serverLog.lines.some((l) => l.data?.code === 'config_refused'), 5000, 'the server to hear why');
  t.equal(guarded.node.stats.repliesSent, 0);
  t.equal(guarded.disc.steps, 0, 'no discriminator step under the refused config');
  await server.coordinator.waitForRound(3, 10_000);
  t.equal(off.node.stats.repliesSent, 3, 'privacy off: the same config is accepted and answered');
  t.equal(off.disc.lambda, 10000);
});

/** A fake server on a ws WebSocketServer: welcomes the node, then sends whatever the test says. */
async function fakeServer(t: { teardown(fn: () => unknown): void }, config: Partial<SessionConfig> = {}) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  t.teardown(() => new Promise<void>((r) => wss.close(() => r())));
  const peers: RawClient[] = [];
  wss.on('connection', (ws: WebSocket) => peers.push(RawClient.wrap(ws)));
  const cfg: SessionConfig = {
    maskChannels: 1, imageChannels: 1, height: H, width: W, lambdaL1: 100, batchSize: 4, wireDtype: 'f32', maxFrameBytes: 1 << 24,
    roundTimeoutMs: 1000, maxStaleness: 1, sampling: 'balance', weighting: 'samples', ...config,
  };
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    /** Wait for the node's hello and welcome it; returns the peer. */
    async accept(nodeId: string): Promise<RawClient> {
      await waitFor(() => peers.length > 0, 3000, 'a connection');
      const peer = peers.shift()!;
      await peer.nextOfType('hello');
      peer.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, sessionId: 's', nodeId, round: 0, config: cfg, knownKeys: [] });
      await peer.nextOfType('maskUpload');
      return peer;
    },
  };
}

/** Next gradientReply or error (status frames skipped). */
async function answer(peer: RawClient): Promise<Record<string, unknown>> {
  for (;;) {
    const e = await peer.next(3000);
    if (e.kind === 'close') throw new Error(`closed (${e.code})`);
    if (e.msg.type === 'gradientReply' || e.msg.type === 'error') return e.msg;
  }
}

async function request(peer: RawClient, round: number, keys: string[], value = 0.1): Promise<Record<string, unknown>> {
  const fakes = new Float32Array(keys.length * H * W).fill(value);
  peer.send({ type: 'roundRequest', round, keys, fakes: encodeTensor(fakes, [keys.length, 1, H, W]) });
  return answer(peer);
}

t.test('query guard: the K+1-th request for a key is refused with query_refused (round, non-fatal); off answers it', async (t) => {
  for (const guard of [true, false]) {
    const srv = await fakeServer(t);
    const n = makeTestNode(srv.url, 'alpha', { privacy: 'guarded', privacyOverrides: { maxQueries: guard ? 3 : undefined } });
    t.teardown(() => n.node.stop());
    await n.node.start();
    const peer = await srv.accept('alpha');
    const key = n.data.keys[0]!;
    for (let r = 1; r <= 3; r++) t.equal((await request(peer, r, [key, n.data.keys[r]!])).type, 'gradientReply', `${guard ? 'guarded' : 'unguarded'}: query ${r} answered`);
    const fourth = await request(peer, 4, [key]);
    if (guard) {
      t.match(fourth, { type: 'error', code: 'query_refused', round: 4, fatal: false, message: /answered 3 time\(s\)/ }, 'the 4th query of the key is refused');
      t.equal((await request(peer, 5, [n.data.keys[5]!])).type, 'gradientReply', 'the node goes on answering other keys');
      t.equal(n.node.stats.requestsRefused, 1);
      t.equal(n.disc.steps, 4, 'no discriminator step for the refused request');
    } else {
      t.equal(fourth.type, 'gradientReply', 'without the guard the 4th query is answered');
    }
    peer.terminate();
  }
});

t.test('range check: fakes outside [-1, 1] are refused; off answers them', async (t) => {
  for (const preset of ['guarded', 'off'] as const) {
    const srv = await fakeServer(t);
    const n = makeTestNode(srv.url, 'alpha', { privacy: preset });
    t.teardown(() => n.node.stop());
    await n.node.start();
    const peer = await srv.accept('alpha');
    const out = await request(peer, 1, [n.data.keys[0]!], 7);
    if (preset === 'guarded') t.match(out, { type: 'error', code: 'query_refused', round: 1, message: /outside the generator's output range/ });
    else t.equal(out.type, 'gradientReply', 'off: crafted fakes are answered');
    peer.terminate();
  }
});

t.test('replies are clipped on the wire; losses withheld; GAN-only ignores lambdaL1', async (t) => {
  const srv = await fakeServer(t, { lambdaL1: 10000 });
  const privacy = new NodePrivacy(privacySettings('guarded', { l1: false, clip: 0.05, noise: 0 }), {}, seededNormalSource(1));
  const n = makeTestNode(srv.url, 'alpha', { privacy });
  t.teardown(() => n.node.stop());
  await n.node.start();
  const peer = await srv.accept('alpha');
  const reply = await request(peer, 1, n.data.keys.slice(0, 2)) as { type: string; grad: { data: Uint8Array }; losses: Record<string, number> };
  t.equal(reply.type, 'gradientReply', 'lambdaL1 10000 accepted: GAN-only replies do not use it');
  t.equal(n.disc.lambda, 0, 'the backend was configured with lambdaL1 = 0');
  const g = new Float32Array(reply.grad.data.buffer.slice(reply.grad.data.byteOffset, reply.grad.data.byteOffset + reply.grad.data.byteLength));
  for (const k of [0, 1]) {
    let sq = 0;
    for (let i = k * H * W; i < (k + 1) * H * W; i++) sq += g[i]! ** 2;
    t.ok(Math.sqrt(sq) <= 0.05 + 1e-7, `sample ${k} norm ${Math.sqrt(sq).toExponential(3)} <= C`);
  }
  t.same(reply.losses, { dReal: 0, dFake: 0, gGan: 0, gL1: 0 }, 'losses withheld');
  peer.terminate();
});

t.test('the default preset noises every reply on the wire with std sigma C; off sends the exact gradient', async (t) => {
  for (const preset of [undefined, 'off'] as const) {
    const srv = await fakeServer(t);
    // The harness defaults to 'off'; constructing the node with privacy undefined is "no privacy option".
    const n = makeTestNode(srv.url, 'alpha', { privacy: preset as NodeOptions['privacy'] });
    if (!preset) t.equal(n.node.privacy.settings.preset, 'guarded', 'no privacy option: guarded');
    t.teardown(() => n.node.stop());
    await n.node.start();
    const peer = await srv.accept('alpha');
    const reply = await request(peer, 1, n.data.keys.slice(0, 4)) as { grad: { data: Uint8Array }; losses: Record<string, number> };
    const g = new Float32Array(reply.grad.data.buffer.slice(reply.grad.data.byteOffset, reply.grad.data.byteOffset + reply.grad.data.byteLength));
    const rms = Math.sqrt(g.reduce((a, v) => a + v * v, 0) / g.length);
    if (!preset) {
      // 256 noise draws of std 0.1 (sigma 1 x C 0.1) around a signal of total norm <= 4 x 0.1.
      t.ok(Math.abs(rms / 0.1 - 1) < 0.2, `guarded: rms ${rms.toFixed(4)} ~ sigma C = 0.1`);
    } else {
      // Exact: lambda sign(fake - real) / (n P) = 100 / (4 * 64) on every pixel, plus a tiny GAN term.
      t.ok(g.every((v) => Math.abs(Math.abs(v) - 100 / 256) < 0.01), `off: every value is +-${(100 / 256).toFixed(4)} (rms ${rms.toFixed(4)})`);
      t.ok(reply.losses.gL1! > 0, 'off: losses sent');
    }
    peer.terminate();
  }
});
