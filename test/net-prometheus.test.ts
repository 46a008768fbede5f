// /metrics in Prometheus' text format: the pure formatter on a hand-built metrics object (names,
// HELP/TYPE, per-node labels, escaping, no sample for unknown figures), the Accept/query choice,
// and a live server answering a Prometheus-style scrape with the same numbers as its JSON.
import t from 'tap';
import type { ServerMetrics } from '../src/net/coordinator.js';
import { prometheusText, wantsPrometheus, type ScrapedMetrics } from '../src/net/prometheus.js';
import { makeTestNode, startTestServer, waitFor } from './helpers/net-harness.js';
import { LinearGenerator } from './helpers/net-backends.js';

const stats = (o: Partial<ServerMetrics['nodes'][number]['stats']> = {}) => ({
  connects: 1, repliesOnTime: 7, repliesLate: 1, repliesDropped: 0, repliesClipped: 2, framesRejected: 0,
  bytesIn: 1000, bytesOut: 2000, lastLatencyMs: 250, avgLatencyMs: 200, lastLosses: { dReal: 0.5, dFake: 0.6, gGan: 0.9, gL1: 0.125 },
  lastRound: 8, reported: {}, ...o,
});

function sample(): ScrapedMetrics {
  return {
    sessionId: 's', round: 9, nodesConnected: 1,
    nodes: [
      { id: 'alpha', connected: true, masks: 12, sampleCount: 12, stats: stats() },
      { id: 'we"ird\\id', connected: false, masks: 3, sampleCount: 3, stats: stats({ lastLatencyMs: undefined, lastLosses: undefined, lastRound: undefined }) },
    ],
    totals: { bytesIn: 5, bytesOut: 6, framesIn: 7, framesRejected: 1, steps: 8 },
    lastRound: undefined, recentRounds: [],
    checkpoint: { saves: 2, failures: 0, consecutiveFailures: 0, lastSavedRound: undefined, lastSavedAt: undefined, lastError: undefined, lastErrorAt: undefined },
    connections: { open: 1, refused: { auth_failed: 3 } },
    privacy: { alpha: { preset: 'standard', epsilon: 4.5, delta: 1e-5, epsilonBudget: 8, noiseMultiplier: 1, clip: 1, noise: 1, repliesReleased: 7 } as never, 'we"ird\\id': { preset: 'unreported' } },
  } as ScrapedMetrics;
}

t.test('text format: HELP and TYPE per family, asyndgan_ names, node labels, escaping', async (t) => {
  const text = prometheusText(sample());
  const lines = text.trimEnd().split('\n');
  t.ok(text.endsWith('\n'), 'ends with a newline');
  // Every sample line is `name{labels} value`, named asyndgan_*, after its family's HELP and TYPE.
  const seen = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('# HELP ')) {
      const name = l.split(' ')[2]!;
      t.match(lines[i + 1]!, new RegExp(`^# TYPE ${name} (gauge|counter)$`), `${name}: TYPE follows HELP`);
      t.notOk(seen.has(name), `${name}: one HELP`);
      seen.add(name);
      continue;
    }
    if (l.startsWith('# TYPE')) continue;
    const m = /^(asyndgan_[a-z0-9_]+)(\{[^}]*\})? (-?[0-9.e+-]+)$/.exec(l);
    t.ok(m, `sample line is well formed: ${l}`);
    t.ok(m && seen.has(m[1]!), `${m?.[1]} declared before its samples`);
  }
  t.match(text, /^asyndgan_round 9$/m);
  t.match(text, /^asyndgan_generator_steps_total 8$/m);
  t.match(text, /^asyndgan_connections_refused_total\{code="auth_failed"\} 3$/m);
  t.match(text, /^asyndgan_node_connected\{node="alpha"\} 1$/m);
  t.match(text, /^asyndgan_node_connected\{node="we\\"ird\\\\id"\} 0$/m, 'label values escaped');
  t.match(text, /^asyndgan_node_latency_seconds\{node="alpha"\} 0\.25$/m, 'milliseconds become seconds');
  t.match(text, /^asyndgan_node_loss_g_l1\{node="alpha"\} 0\.125$/m);
  t.match(text, /^asyndgan_node_privacy_epsilon\{node="alpha"\} 4\.5$/m);
  t.notMatch(text, /node_privacy_epsilon\{node="we/, 'unreported privacy: no sample (not a made-up 0)');
  t.notMatch(text, /latency_seconds\{node="we/, 'unknown latency: no sample');
  t.notMatch(text, /asyndgan_last_round_loss|asyndgan_checkpoint_last_round/, 'no round yet: those families are left out');
  t.notMatch(text, /NaN|undefined/);
  t.equal(wantsPrometheus('text/plain;version=0.0.4;q=0.9,*/*;q=0.1', ''), true, "Prometheus' Accept header");
  t.equal(wantsPrometheus('application/openmetrics-text;version=1.0.0,text/plain;q=0.5', ''), true);
  t.equal(wantsPrometheus('application/json', ''), false);
  t.equal(wantsPrometheus('*/*', ''), false, 'curl and browsers keep the JSON');
  t.equal(wantsPrometheus(undefined, 'format=prometheus'), true, '?format=prometheus');
  t.equal(wantsPrometheus('', ''), false);
});

t.test('a live server answers a Prometheus scrape with the figures of its JSON', async (t) => {
  const server = await startTestServer(new LinearGenerator(0.2, 0.3));
  const node = makeTestNode(server.url, 'alpha');
  t.teardown(async () => {
    await node.node.stop();
    await server.stop();
  });
  node.node.start();
  await waitFor(() => server.round >= 3, 20_000, 'three rounds');
  const res = await fetch(`${server.httpUrl}/metrics`, { headers: { accept: 'text/plain;version=0.0.4' } });
  t.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const json = (await (await fetch(`${server.httpUrl}/metrics`)).json()) as ServerMetrics;
  const round = Number(/^asyndgan_round (\d+)$/m.exec(text)![1]);
  t.ok(round >= 3 && round <= json.round, `round ${round} (JSON a moment later: ${json.round})`);
  t.match(text, /^asyndgan_node_connected\{node="alpha"\} 1$/m);
  t.match(text, /^asyndgan_node_masks\{node="alpha"\} 12$/m, 'the 12 masks alpha uploaded');
  t.match(text, /^asyndgan_last_round_loss_g_l1 [0-9.e+-]+$/m, 'losses once rounds ran');
  const q = await (await fetch(`${server.httpUrl}/metrics?format=prometheus`)).text();
  t.match(q, /^# TYPE asyndgan_round gauge$/m, '?format=prometheus');
});
