/**
 * Who gets in, and how much they may store: upgrade-time authentication with a lockout after
 * failed logins, connection caps (overall and per address), the policy for a second connection
 * with a connected node's id, and the byte budgets on uploaded masks. Each defence is also run
 * switched off (or with a limit out of reach) to show the test would see the attack succeed.
 */
import t from 'tap';
import { Admission, addressBucket, upgradeHeaders } from '../src/net/admission.js';
import { encodeFrame, encodeTensor, decodeFrame } from '../src/net/codec.js';
import { Coordinator, type Connection } from '../src/net/coordinator.js';
import type { LogLevel } from '../src/net/log.js';
import { PROTOCOL_VERSION } from '../src/net/protocol.js';
import { startServer } from '../src/net/server.js';
import { TokenTable } from '../src/net/tokens.js';
import { LinearGenerator } from './helpers/net-backends.js';
import { H, RawClient, TOKENS, W, makeTestNode, startTestServer, upgradeStatus, waitFor } from './helpers/net-harness.js';

const tokens = new TokenTable(TOKENS);
const good = (id: string): [string, string] => {
  const h = upgradeHeaders(id, TOKENS[id]!);
  return [h['x-asyndgan-node']!, h.authorization!];
};
const bad = (id: string, tok = 'guess'): [string, string] => {
  const h = upgradeHeaders(id, tok);
  return [h['x-asyndgan-node']!, h.authorization!];
};

t.test('Admission: a lockout after N failed logins bounds guessing; off, guessing is unbounded', async (t) => {
  const run = (maxLoginFailures: number): { checked: number; locked: number } => {
    const a = new Admission(tokens, { maxLoginFailures, loginWindowMs: 60_000, lockoutMs: 60_000 });
    let checked = 0;
    let locked = 0;
    // 600 guesses a second for 10 s from one address (the issue measured 267/s).
    for (let i = 0; i < 6000; i++) {
      const r = a.check('10.0.0.9', ...bad('alpha', `g${i}`), i * (1000 / 600));
      if (!r.ok && r.code === 'auth_failed') checked++;
      if (!r.ok && r.code === 'rate_limited') locked++;
    }
    return { checked, locked };
  };
  const on = run(10);
  t.equal(on.checked, 10, 'with the default of 10: 10 tokens checked in 10 s, the rest refused unchecked');
  t.equal(on.locked, 5990);
  const off = run(Number.POSITIVE_INFINITY);
  t.equal(off.checked, 6000, 'without a lockout every guess is checked');

  const a = new Admission(tokens, { maxLoginFailures: 3, loginWindowMs: 1000, lockoutMs: 5000 });
  for (let i = 0; i < 3; i++) t.equal(a.check('10.0.0.1', ...bad('alpha'), 100 + i).ok, false);
  const locked = a.check('10.0.0.1', ...good('alpha'), 200);
  t.ok(!locked.ok && locked.status === 429 && locked.code === 'rate_limited' && locked.retryAfterSec === 5, 'locked out: even the right token waits (429, Retry-After)');
  t.ok(a.check('10.0.0.2', ...good('alpha'), 200).ok, 'another address is not affected');
  t.ok(a.check('10.0.0.1', ...good('alpha'), 5200).ok, 'after the lockout the right token gets in');
  // Failures spread out wider than the window never lock.
  const b = new Admission(tokens, { maxLoginFailures: 3, loginWindowMs: 1000, lockoutMs: 5000 });
  for (let i = 0; i < 10; i++) b.check('10.0.0.3', ...bad('alpha'), i * 600);
  t.ok(b.check('10.0.0.3', ...good('alpha'), 6001).ok, 'two failures per window: no lockout');
  // A success does not reset the count: a node with one leaked token cannot use it to keep guessing others.
  const c = new Admission(tokens, { maxLoginFailures: 3 });
  c.check('10.0.0.4', ...bad('beta'), 1);
  c.check('10.0.0.4', ...bad('beta'), 2);
  t.ok(c.check('10.0.0.4', ...good('alpha'), 3).ok);
  c.check('10.0.0.4', ...bad('beta'), 4);
  t.equal((c.check('10.0.0.4', ...good('alpha'), 5) as { code?: string }).code, 'rate_limited', 'the third failure locks despite the success between');
});

t.test('Admission: connection caps, one connection per id, address buckets', async (t) => {
  const a = new Admission(tokens, { maxConnections: 3, maxConnectionsPerAddress: 2 });
  const admit = (addr: string, id: string): string => {
    const r = a.check(addr, ...good(id), 0);
    if (r.ok) a.opened(r.address, r.nodeId);
    return r.ok ? 'ok' : `${r.status} ${r.code}`;
  };
  t.equal(admit('10.0.0.1', 'alpha'), 'ok');
  t.equal(admit('10.0.0.1', 'alpha'), '409 identity_in_use', "'refuse': a second connection for a connected id");
  t.equal(admit('10.0.0.1', 'beta'), 'ok');
  t.equal(admit('10.0.0.1', 'gamma'), '503 quota_exceeded', 'per-address cap');
  t.equal(admit('10.0.0.2', 'gamma'), 'ok');
  t.equal(admit('10.0.0.3', 'fuzz'), '503 quota_exceeded', 'overall cap');
  a.closed('10.0.0.1', 'alpha');
  t.equal(admit('10.0.0.3', 'alpha'), 'ok', 'a closed connection frees its slots');
  t.equal(a.connections, 3);
  const r = new Admission(tokens, { onDuplicateId: 'replace' });
  const first = r.check('10.0.0.1', ...good('alpha'), 0);
  if (first.ok) r.opened(first.address, first.nodeId);
  t.ok(r.check('10.0.0.1', ...good('alpha'), 0).ok, "'replace': the newcomer may open (hello then evicts the old one)");
  t.equal(addressBucket('0000:0000:0000:0000:0000:ffff:7f00:0001'), '127.0.0.1', 'IPv4-mapped');
  t.equal(addressBucket('::ffff:10.1.2.3'), '10.1.2.3');
  t.equal(addressBucket('2001:db8:1:2:aaaa::1'), addressBucket('2001:db8:1:2:bbbb:cccc:dddd:eeee'), 'IPv6 counted per /64');
  t.not(addressBucket('2001:db8:1:2::1'), addressBucket('2001:db8:1:3::1'));
});

t.test('over sockets: lockout, caps and the identity policy', async (t) => {
  const logs: { level: LogLevel; msg: string }[] = [];
  const server = await startTestServer(new LinearGenerator(), {
    maxLoginFailures: 5, lockoutMs: 400, loginWindowMs: 10_000, maxConnections: 3, log: (level, msg) => logs.push({ level, msg }),
  });
  t.teardown(() => server.stop());
  for (let i = 0; i < 5; i++) t.equal((await upgradeStatus(server.url, upgradeHeaders('alpha', `guess-${i}`))).status, 401);
  const locked = await upgradeStatus(server.url, upgradeHeaders('alpha', TOKENS.alpha!));
  t.equal(locked.status, 429, 'the sixth try, even with the right token, is refused unchecked');
  t.equal(locked.code, 'rate_limited');
  t.ok(Number(locked.retryAfter) >= 1, 'with Retry-After');
  await new Promise((r) => setTimeout(r, 450));

  // A real node that meets a lockout waits it out and gets in (429 is not final).
  const alpha = makeTestNode(server.url, 'alpha');
  await alpha.node.start();
  await alpha.node.waitUntilReady(5000);
  // 'refuse' (default): a second connection as alpha is refused at the upgrade; alpha keeps training.
  const r2 = await upgradeStatus(server.url, upgradeHeaders('alpha', TOKENS.alpha!));
  t.equal(r2.status, 409);
  t.equal(r2.code, 'identity_in_use');
  const round = server.round;
  await server.coordinator.waitForRound(round + 3, 5000);
  t.equal(alpha.node.state, 'ready', 'the connected node was not evicted');
  // A real node refused as in use keeps retrying (it is not failed), and gets in once the id is free.
  const twin = makeTestNode(server.url, 'alpha', { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
  await twin.node.start();
  await new Promise((r) => setTimeout(r, 400));
  t.equal(twin.node.state, 'connecting', 'the twin waits instead of giving up');
  await alpha.node.stop();
  await twin.node.waitUntilReady(5000);
  t.pass('the twin got in after the first one left');
  // Overall cap 3: twin + two raw sockets fill it, a fourth valid node gets 503.
  const b = await RawClient.connect(server.url, { nodeId: 'beta' });
  const g = await RawClient.connect(server.url, { nodeId: 'gamma' });
  const full = await upgradeStatus(server.url, upgradeHeaders('fuzz', TOKENS.fuzz!));
  t.equal(full.status, 503, 'over maxConnections: 503');
  t.equal(full.code, 'quota_exceeded');
  b.terminate();
  g.terminate();
  await twin.node.stop();
  t.ok(logs.some((l) => l.level === 'warn' && l.msg === 'connection refused'), 'refusals logged at warn');
});

t.test("identity policy 'replace': the old connection is told `replaced` and keeps trying with backoff", async (t) => {
  const server = await startTestServer(new LinearGenerator(), { onDuplicateId: 'replace' });
  t.teardown(() => server.stop());
  const warns: string[] = [];
  const first = makeTestNode(server.url, 'alpha', { log: (l, m) => l === 'warn' && warns.push(m), reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
  await first.node.start();
  await first.node.waitUntilReady(3000);
  const c = await RawClient.connect(server.url, { nodeId: 'alpha' });
  await c.hello('alpha');
  await waitFor(() => first.node.state !== 'ready', 3000, 'the first node being replaced');
  t.match(first.node.stats.lastError ?? '', /replaced/);
  t.ok(warns.some((m) => /another connection took this node id/.test(m)), 'the replaced node says why at warn');
  await new Promise((r) => setTimeout(r, 100));
  t.not(first.node.state, 'failed', 'it did not give up');
  // It comes back (and, with the policy, takes the id back from the raw connection).
  await first.node.waitUntilReady(3000);
  t.equal((await c.next(3000)).kind, 'frame', 'the raw connection got its own `replaced`');
  c.terminate();
  await first.node.stop();
});

/** A fake transport that keeps decoded frames. */
class Conn implements Connection {
  frames: Record<string, unknown>[] = [];
  closed = false;
  send(b: Uint8Array): boolean {
    this.frames.push(decodeFrame(b, 1 << 30));
    return true;
  }
  close(): void {
    this.closed = true;
  }
}

function coordinator(over: Partial<ConstructorParameters<typeof Coordinator>[0]> = {}): Coordinator {
  return new Coordinator({
    generator: new LinearGenerator(), tokens: TOKENS, session: { maskChannels: 1, imageChannels: 1, height: H, width: W, batchSize: 2 }, ...over,
  });
}
const helloFrame = (id: string): Uint8Array => encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: id, token: TOKENS[id], capabilities: { dtypes: ['f32'] } });

t.test('coordinator: a second hello for a connected id gets identity_in_use; the first keeps its place', async (t) => {
  const co = coordinator();
  const a = new Conn();
  const ha = co.attach(a, 'first');
  t.equal(co.receive(ha, helloFrame('alpha')), 'accepted');
  const b = new Conn();
  const hb = co.attach(b, 'second');
  t.equal(co.receive(hb, helloFrame('alpha')), 'closed');
  t.same([b.frames[0]?.code, b.frames[0]?.fatal, b.closed], ['identity_in_use', true, true]);
  t.equal(a.closed, false, 'the first connection is untouched');
  t.equal(co.metrics().nodes.find((n) => n.id === 'alpha')?.connected, true);
  // The same with 'replace': the first is closed with `replaced` (the attack the default blocks).
  const cr = coordinator({ onDuplicateId: 'replace' });
  const c1 = new Conn();
  cr.receive(cr.attach(c1, 'first'), helloFrame('alpha'));
  const c2 = new Conn();
  t.equal(cr.receive(cr.attach(c2, 'second'), helloFrame('alpha')), 'accepted');
  t.same([c1.frames.at(-1)?.code, c1.closed], ['replaced', true], "with 'replace' the old connection is evicted");
  // A transport-authenticated identity must match hello's nodeId.
  const d = new Conn();
  t.equal(co.receive(co.attach(d, 'x', 'beta'), helloFrame('gamma')), 'closed');
  t.same([d.frames[0]?.code, d.frames[0]?.field], ['auth_failed', 'nodeId']);
  await co.stop({ graceMs: 0 });
  await cr.stop({ graceMs: 0 });
});

t.test('coordinator: mask byte budgets per node and in total refuse with quota_exceeded', async (t) => {
  const per = H * W * 4;
  const upload = (co: Coordinator, h: ReturnType<Coordinator['attach']>, conn: Conn, prefix: string, n: number): string => {
    const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
    co.receive(h, encodeFrame({ type: 'maskUpload', keys, masks: encodeTensor(new Float32Array(n * H * W), [n, 1, H, W]), sampleCount: n }));
    const last = conn.frames.at(-1)!;
    return last.type === 'maskAck' ? `ack ${last.total}` : `${last.code}`;
  };
  // Room for exactly 10 masks of keys "a0".."a9" (2 characters, 4 bytes) per node, 15 in total.
  const maskCost = per + 4;
  const co = coordinator({ maxMaskBytesPerNode: 10 * maskCost, maxMaskBytesTotal: 15 * maskCost });
  const a = new Conn();
  const ha = co.attach(a);
  co.receive(ha, helloFrame('alpha'));
  t.equal(upload(co, ha, a, 'a', 10), 'ack 10', 'up to the budget');
  t.equal(upload(co, ha, a, 'a', 10), 'ack 10', 'replacing held masks costs nothing more');
  t.equal(upload(co, ha, a, 'b', 1), 'quota_exceeded', 'one more mask is over the per-node budget');
  t.match(a.frames.at(-1)!.message as string, new RegExp(`limit is ${10 * maskCost}$`));
  t.equal(a.frames.at(-1)!.fatal, false);
  const b = new Conn();
  const hb = co.attach(b);
  co.receive(hb, helloFrame('beta'));
  t.equal(upload(co, hb, b, 'a', 5), 'ack 5');
  t.equal(upload(co, hb, b, 'c', 1), 'quota_exceeded', 'over the total budget');
  t.match(b.frames.at(-1)!.message as string, /the server would hold/);
  t.equal(co.metrics().nodes.reduce((s, n) => s + n.masks, 0), 15, 'nothing stored beyond the budgets');
  // Without budgets (limits out of reach) the same flood is stored: the refusals above are the defence.
  const open = coordinator({ maxMaskBytesPerNode: Number.MAX_SAFE_INTEGER, maxMaskBytesTotal: Number.MAX_SAFE_INTEGER });
  const o = new Conn();
  const ho = open.attach(o);
  open.receive(ho, helloFrame('alpha'));
  t.equal(upload(open, ho, o, 'a', 10), 'ack 10');
  t.equal(upload(open, ho, o, 'b', 40), 'ack 50', 'no budget: 5x as much accepted');
  await Promise.all([co.stop({ graceMs: 0 }), open.stop({ graceMs: 0 })]);
});

t.test('a server with no nodes in its token table is refused at startup', async (t) => {
  const dir = t.testdir({ 'empty.json': '{"nodes": {}}' });
  const base = { generator: new LinearGenerator(), session: { maskChannels: 1, imageChannels: 1, height: H, width: W, batchSize: 2 }, port: 0 };
  await t.rejects(startServer({ ...base, tokens: `${dir}/empty.json` }), { name: 'StartupError', message: `token file ${dir}/empty.json: lists no nodes; add them as {"nodes": {"<id>": "<token>"}}` });
  await t.rejects(startServer({ ...base, tokens: {} }), /lists no nodes/);
});
