/**
 * Training survives churn: idle server waits without spinning, a killed node does not stop
 * training and rejoins, slow nodes' late replies are applied or dropped by staleness, and a
 * stopped server resumes from its checkpoint with the nodes reconnecting on their own.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { FileCheckpointStore, MemoryCheckpointStore, nodeCheckpointName } from '../src/net/checkpoint.js';
import { decodeFrame } from '../src/net/codec.js';
import type { RoundSummary } from '../src/net/coordinator.js';
import { LinearGenerator, LogisticDiscriminator } from './helpers/net-backends.js';
import { makeTestNode, startTestServer, waitFor } from './helpers/net-harness.js';

t.test('with no node the server waits without spinning, then starts when one joins', async (t) => {
  const gen = new LinearGenerator();
  const server = await startTestServer(gen);
  t.teardown(() => server.stop());
  const cpu0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 500));
  const cpu = process.cpuUsage(cpu0);
  t.equal(gen.generateCalls, 0, 'no generator calls without nodes');
  t.equal(server.round, 0);
  t.ok(cpu.user + cpu.system < 150_000, `idle CPU ${(cpu.user + cpu.system) / 1000} ms over 500 ms`);
  const tn = makeTestNode(server.url, 'alpha');
  await tn.node.start();
  await server.coordinator.waitForRound(3, 5000);
  t.ok(gen.steps >= 3, 'rounds run once a node joined');
  await tn.node.stop();
  await server.stop();
});

t.test('a node killed mid-training: training goes on, the node rejoins with its discriminator', async (t) => {
  const gen = new LinearGenerator();
  const summaries: RoundSummary[] = [];
  const server = await startTestServer(gen, { roundTimeoutMs: 3000, onRound: (s) => summaries.push(s) });
  t.teardown(() => server.stop());
  const betaStore = new MemoryCheckpointStore();
  const alpha = makeTestNode(server.url, 'alpha');
  const beta = makeTestNode(server.url, 'beta', { checkpoint: betaStore, checkpointEvery: 5 });
  const gamma = makeTestNode(server.url, 'gamma');
  t.teardown(() => Promise.all([alpha.node.stop(), gamma.node.stop()]));
  for (const n of [alpha, beta, gamma]) await n.node.start();
  await server.coordinator.waitForRound(20, 10000);
  await waitFor(() => betaStore.saves > 0, 3000, 'a beta checkpoint');

  beta.node.kill(); // no goodbye, no checkpoint
  const killedAt = server.round;
  const t0 = Date.now();
  await server.coordinator.waitForRound(killedAt + 15, 10000);
  t.ok(Date.now() - t0 < 3000, `15 rounds without beta took ${Date.now() - t0} ms: no waiting for the dead node's deadline`);
  const after = summaries.filter((s) => s.round > killedAt + 1 && s.round <= killedAt + 15);
  t.ok(after.length >= 13 && after.every((s) => !s.asked.includes('beta') && s.stepped), 'rounds without beta, each with a generator step');
  t.equal(server.metrics().nodes.find((n) => n.id === 'beta')?.connected, false, 'beta shown disconnected');

  // The restarted process: a fresh backend restored from beta's local checkpoint.
  const saved = await betaStore.load();
  const disc2 = new LogisticDiscriminator(beta.data);
  const sentTypes: string[] = [];
  const beta2 = makeTestNode(server.url, 'beta', {
    data: beta.data, disc: disc2, checkpoint: betaStore,
    onFrame: (e) => {
      if (e.direction === 'out') sentTypes.push((decodeFrame(e.bytes, 1 << 30) as { type: string }).type);
    },
  });
  t.teardown(() => beta2.node.stop());
  await beta2.node.start();
  t.ok(saved && disc2.w !== 0.1, `discriminator restored from checkpoint (w=${disc2.w.toFixed(4)})`);
  await beta2.node.waitUntilReady(5000);
  const rejoinedAt = server.round;
  await server.coordinator.waitForRound(rejoinedAt + 10, 10000);
  const back = summaries.filter((s) => s.round > rejoinedAt + 1);
  t.ok(back.length > 0 && back.every((s) => s.onTime.includes('beta')), 'beta answers again after rejoining');
  const betaStats = server.metrics().nodes.find((n) => n.id === 'beta')!;
  t.equal(betaStats.masks, 12, 'server kept the masks; no duplicates');
  t.equal(betaStats.stats.connects, 2, 'one rejoin');
  await Promise.all([alpha.node.stop(), beta2.node.stop(), gamma.node.stop()]);
  await server.stop();
  t.notOk(sentTypes.includes('maskUpload'), 'masks were not uploaded again (server listed them in welcome)');
  t.ok(sentTypes.includes('gradientReply'));
});

t.test('slow node: late replies within maxStaleness are applied, older ones dropped', async (t) => {
  // gamma takes 450 ms on every third round (deadline 300 ms): its reply lands during the next
  // round's gathering, i.e. with staleness exactly 1, with 150 ms of margin on both sides.
  const slowRound = (r: number): boolean => r % 3 === 0;
  for (const maxStaleness of [1, 0]) {
    const gen = new LinearGenerator();
    const summaries: RoundSummary[] = [];
    const logs: string[] = [];
    const server = await startTestServer(gen, {
      roundTimeoutMs: 300, maxStaleness, onRound: (s) => summaries.push(s), log: (_l, m) => logs.push(m),
    });
    const fast = makeTestNode(server.url, 'alpha');
    const slow = makeTestNode(server.url, 'gamma', { hooks: { delayMs: (r) => (slowRound(r) ? 450 : 0) } });
    await fast.node.start();
    await slow.node.start();
    await Promise.all([fast.node.waitUntilReady(3000), slow.node.waitUntilReady(3000)]);
    const start = server.round;
    const t0 = Date.now();
    await server.coordinator.waitForRound(start + 12, 10000);
    const dt = Date.now() - t0;
    const rs = summaries.filter((s) => s.round > start + 1);
    t.ok(dt < 5 * 300 + 1500, `[maxStaleness ${maxStaleness}] the deadline bounds slow rounds (${dt} ms for 12)`);
    const slowOnes = rs.filter((s) => slowRound(s.round));
    t.ok(slowOnes.length >= 3 && slowOnes.every((s) => s.onTime.includes('alpha') && !s.onTime.includes('gamma')), 'on slow rounds only alpha is on time');
    const gammaStats = server.metrics().nodes.find((n) => n.id === 'gamma')!.stats;
    if (maxStaleness === 1) {
      const late = rs.flatMap((s) => s.lateApplied.filter((l) => l.nodeId === 'gamma').map((l) => ({ at: s.round, from: l.round })));
      t.ok(late.length >= 3, `late gamma replies applied (${late.length})`);
      t.ok(late.every((l) => l.at - l.from === 1 && slowRound(l.from)), 'each from a slow round, with staleness 1');
      t.ok(late.every((l) => summaries.find((s) => s.round === l.at)!.weights[`gamma@${l.from}`]! > 0), 'late replies carry weight in the step');
      t.equal(gammaStats.repliesDropped, 0);
    } else {
      t.ok(rs.every((s) => s.lateApplied.length === 0), 'nothing late applied');
      t.ok(gammaStats.repliesDropped >= 3, `late replies dropped (${gammaStats.repliesDropped})`);
      t.ok(slow.node.stats.errorsReceived >= 3 && /stale/.test(slow.node.stats.lastError ?? ''), 'the node was told its reply was stale');
      t.ok(logs.some((m) => m.startsWith('late reply dropped')), 'drops logged');
    }
    await Promise.all([fast.node.stop(), slow.node.stop()]);
    await server.stop();
  }
});

t.test('a busy node keeps only the newest request', async (t) => {
  const gen = new LinearGenerator();
  const server = await startTestServer(gen, { roundTimeoutMs: 100 });
  const slow = makeTestNode(server.url, 'gamma', { hooks: { delayMs: 350 } });
  await slow.node.start();
  await server.coordinator.waitForRound(10, 5000);
  t.ok(slow.node.stats.requestsDropped > 0, `dropped ${slow.node.stats.requestsDropped} queued requests`);
  t.ok(slow.disc.rounds.every((r, i) => i === 0 || r > slow.disc.rounds[i - 1]!), 'processed in increasing round order');
  await slow.node.stop();
  await server.stop();
});

t.test('server stopped and restarted from its checkpoint: round continues, nodes reconnect', async (t) => {
  const dir = t.testdir({});
  const store = new FileCheckpointStore(dir, 'server.ckpt');
  const gen1 = new LinearGenerator();
  const server1 = await startTestServer(gen1, { checkpoint: store, checkpointEvery: 5 });
  const port = server1.port;
  const url = server1.url;
  const nodes = ['alpha', 'beta', 'gamma'].map((id) => makeTestNode(url, id, { reconnect: { initialDelayMs: 50, maxDelayMs: 300 } }));
  t.teardown(() => Promise.all(nodes.map((n) => n.node.stop())));
  for (const n of nodes) await n.node.start();
  await server1.coordinator.waitForRound(12, 10000);
  await server1.stop();
  const stoppedAt = server1.round;
  const a1 = gen1.a;
  const b1 = gen1.b;
  const session1 = server1.coordinator.sessionId;
  t.ok(stoppedAt >= 12);
  t.same(readdirSync(dir), ['server.ckpt'], 'only the checkpoint file: no temp files left');
  await waitFor(() => nodes.every((n) => n.node.state === 'connecting'), 3000, 'nodes noticing the shutdown');

  const gen2 = new LinearGenerator();
  const summaries: RoundSummary[] = [];
  const server2 = await startTestServer(gen2, { checkpoint: store, checkpointEvery: 5, port, listenRetryMs: 3000, onRound: (s) => summaries.push(s) });
  t.teardown(() => server2.stop());
  t.equal(server2.port, port, 'same port');
  t.equal(server2.round, stoppedAt, 'round restored');
  t.equal(server2.coordinator.sessionId, session1, 'same session');
  t.equal(gen2.a, a1, 'generator weights restored');
  t.equal(gen2.b, b1);
  t.equal(server2.metrics().nodes.reduce((s, n) => s + n.masks, 0), 36, 'masks restored with the registry');
  await Promise.all(nodes.map((n) => n.node.waitUntilReady(5000)));
  // Nodes come back at different times (jittered backoff); count rounds from when all are back.
  await server2.coordinator.waitForRound(Math.max(stoppedAt + 10, server2.round + 5), 10000);
  t.equal(summaries[0]?.round, stoppedAt + 1, 'numbering continues');
  t.ok(summaries.slice(-3).every((s) => s.onTime.length === 3), `all three nodes back ${JSON.stringify(summaries.slice(-3).map((s) => [s.round, s.asked, s.onTime]))}`);
  t.ok(gen2.steps >= 10, 'training continues');
  t.ok(nodes.every((n) => n.node.stats.connects === 2), 'each node reconnected once');
  // Stop explicitly (teardowns only cover failures): the test directory must outlive the writers.
  await Promise.all(nodes.map((n) => n.node.stop()));
  await server2.stop();
});

t.test('config conveniences: token file and checkpoint directories', async (t) => {
  const dir = t.testdir({ 'tokens.json': JSON.stringify({ nodes: { alpha: 'file-token' } }) });
  const gen = new LinearGenerator();
  const server = await startTestServer(gen, { tokens: join(dir, 'tokens.json'), checkpointDir: join(dir, 'server') });
  const tn = makeTestNode(server.url, 'alpha', { token: 'file-token', checkpointDir: join(dir, 'node'), checkpointEvery: 2 });
  await tn.node.start();
  await tn.node.waitUntilReady(3000);
  await server.coordinator.waitForRound(4, 5000);
  await tn.node.stop();
  await server.stop();
  t.same(readdirSync(join(dir, 'server')), ['server-checkpoint.msgpack']);
  // The discriminator checkpoint and the privacy ledger (written before every reply).
  const nodeFiles = readdirSync(join(dir, 'node'));
  t.same(nodeFiles.filter((f) => !f.endsWith('-privacy.msgpack')), [nodeCheckpointName('alpha')]);
  t.equal(nodeFiles.filter((f) => f.endsWith('-privacy.msgpack')).length, 1, 'one privacy ledger');
  // Both resume from those directories.
  const gen2 = new LinearGenerator();
  const server2 = await startTestServer(gen2, { tokens: join(dir, 'tokens.json'), checkpointDir: join(dir, 'server') });
  t.equal(server2.round, server.round);
  t.equal(gen2.a, gen.a);
  const disc2 = new LogisticDiscriminator(tn.data);
  const tn2 = makeTestNode(server2.url, 'alpha', { token: 'file-token', data: tn.data, disc: disc2, checkpointDir: join(dir, 'node') });
  await tn2.node.start();
  t.equal(disc2.w, tn.disc.w, 'discriminator resumed from its directory');
  await tn2.node.stop();
  await server2.stop();
});
