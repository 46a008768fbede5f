/**
 * What the server refuses, over real sockets: bad credentials (at the HTTP upgrade), other
 * protocol versions, frames before hello, oversize frames, NaN gradients (and a node that
 * withholds NaN itself), TLS.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { encodeTensor } from '../src/net/codec.js';
import type { RoundSummary } from '../src/net/coordinator.js';
import type { LogLevel } from '../src/net/log.js';
import { PROTOCOL_VERSION } from '../src/net/protocol.js';
import { startServer } from '../src/net/server.js';
import { LinearGenerator } from './helpers/net-backends.js';
import { upgradeHeaders } from '../src/net/admission.js';
import { H, RawClient, TOKENS, W, makeTestNode, startTestServer, upgradeStatus, waitFor } from './helpers/net-harness.js';

const hello = (nodeId: string, token: string | undefined, protocolVersion = PROTOCOL_VERSION): Record<string, unknown> => ({
  type: 'hello', protocolVersion, nodeId, token, capabilities: { dtypes: ['f32'] },
});

t.test('bad credentials are refused at the HTTP upgrade, before any frame', async (t) => {
  const server = await startTestServer(new LinearGenerator());
  t.teardown(() => server.stop());
  const cases: [string, Record<string, string>][] = [
    ['wrong token', upgradeHeaders('alpha', TOKENS.beta!)],
    ['unknown node', upgradeHeaders('mallory', 'x')],
    ['no credentials', {}],
    ['token without node id', { authorization: `Bearer ${TOKENS.alpha}` }],
    ['not a bearer token', { authorization: `Basic ${TOKENS.alpha}`, 'x-asyndgan-node': 'alpha' }],
    ['malformed percent-encoding', { authorization: 'Bearer %E0%A4%A', 'x-asyndgan-node': 'alpha' }],
  ];
  for (const [name, headers] of cases) {
    const r = await upgradeStatus(server.url, headers);
    t.equal(r.status, 401, `${name}: HTTP 401`);
    t.equal(r.code, 'auth_failed', `${name}: names auth_failed`);
  }
  t.equal((await upgradeStatus(server.url, upgradeHeaders('alpha', TOKENS.alpha!))).status, 101, 'the right credentials upgrade');
  await waitFor(() => server.metrics().connections.open === 0, 3000, 'the probe closing');
  t.equal(server.metrics().connections.refused.auth_failed, cases.length, '/metrics counts the refusals');
  t.equal(server.metrics().nodes.length, 0, 'refused ids left no trace in the registry');

  // A real node with a bad token gives up instead of hammering the server.
  const bad = makeTestNode(server.url, 'alpha', { token: 'wrong' });
  await bad.node.start();
  await t.rejects(bad.node.waitUntilReady(3000), /auth_failed.*HTTP 401/);
  t.equal(bad.node.state, 'failed');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(bad.node.stats.connects, 0, 'never got a socket, and did not retry');
  await bad.node.stop();
});

t.test('frame-level refusals on an authenticated socket close the connection after an error frame', async (t) => {
  const server = await startTestServer(new LinearGenerator());
  t.teardown(() => server.stop());
  const cases: [string, Record<string, unknown> | Uint8Array, string, string | undefined][] = [
    // The coordinator checks hello's token too (and that it names the upgrade's node).
    ['wrong token in hello', hello('raw', 'tok-beta-0123456789'), 'auth_failed', undefined],
    ['hello for another node than the upgrade', hello('alpha', TOKENS.alpha), 'auth_failed', 'nodeId'],
    ['missing token', hello('raw', undefined), 'invalid_field', 'token'],
    ['protocol version 1 (before the privacy and hostile-node fields)', hello('raw', TOKENS.raw, 1), 'unsupported_version', 'protocolVersion'],
    ['protocol version 3', hello('raw', TOKENS.raw, 3), 'unsupported_version', 'protocolVersion'],
    ['protocol version 0', hello('raw', TOKENS.raw, 0), 'unsupported_version', 'protocolVersion'],
    ['gradientReply before hello', { type: 'gradientReply', round: 1, keys: [], grad: encodeTensor(new Float32Array(0), [0]), losses: {} }, 'not_authenticated', undefined],
    ['garbage before hello', new Uint8Array([0xc1, 0x00]), 'bad_frame', undefined],
  ];
  for (const [name, frame, code, field] of cases) {
    const c = await RawClient.connect(server.url);
    c.send(frame);
    const e = await c.next();
    t.equal(e.kind, 'frame', `${name}: answered`);
    if (e.kind === 'frame') {
      t.equal(e.msg.type, 'error', `${name}: error frame`);
      t.equal(e.msg.code, code, `${name}: code ${code}`);
      t.equal(e.msg.fatal, true, `${name}: marked fatal`);
      if (field) t.equal(e.msg.field, field, `${name}: names ${field}`);
    }
    const closed = await c.next();
    t.equal(closed.kind, 'close', `${name}: connection closed`);
    await waitFor(() => server.metrics().connections.open === 0, 3000, 'the server seeing the close');
  }
  // Text frames are not protocol.
  const c = await RawClient.connect(server.url);
  c.sendText('{"type":"hello"}');
  const e = await c.next();
  t.ok(e.kind === 'frame' && e.msg.code === 'bad_frame', 'text frame refused');
  t.equal(server.metrics().nodesConnected, 0, 'nobody got in');
  t.equal(server.metrics().nodes.length, 0, 'refused hellos left no trace in the registry');
});

t.test('oversize frames: refused politely up to the hard limit, connection cut beyond', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { maxFrameBytes: 64 * 1024 });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.url);
  const welcome = await c.hello('raw');
  t.equal((welcome.config as { maxFrameBytes: number }).maxFrameBytes, 64 * 1024, 'limit announced in welcome');
  c.send({ type: 'status', round: 0, metrics: {}, pad: new Uint8Array(100 * 1024) });
  const e = await c.next();
  t.ok(e.kind === 'frame' && e.msg.type === 'error' && e.msg.code === 'frame_too_large' && e.msg.fatal === false, 'frame_too_large error');
  // Still usable afterwards.
  c.send({ type: 'status', round: 0, metrics: { x: 1 } });
  c.send({ type: 'nonsense' });
  const e2 = await c.next();
  t.ok(e2.kind === 'frame' && e2.msg.code === 'unknown_type', 'connection still served after a refused frame');
  // Beyond 2 x maxFrameBytes the transport drops the connection without reading the frame.
  c.send({ type: 'status', round: 0, metrics: {}, pad: new Uint8Array(200 * 1024) });
  const e3 = await c.next();
  t.equal(e3.kind, 'close', 'connection closed for a frame over the hard limit');
  t.equal(server.metrics().nodes.find((n) => n.id === 'raw')?.masks, 0, 'state untouched');
});

t.test('NaN gradients are rejected, logged, and never reach the generator', async (t) => {
  const gen = new LinearGenerator();
  const logs: { level: LogLevel; msg: string; data?: Record<string, unknown> }[] = [];
  const summaries: RoundSummary[] = [];
  const server = await startTestServer(gen, {
    roundTimeoutMs: 400,
    log: (level, msg, data) => logs.push({ level, msg, ...(data ? { data } : {}) }),
    onRound: (s) => summaries.push(s),
  });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.url);
  await c.hello('raw');
  const keys = ['k0', 'k1', 'k2', 'k3'];
  c.send({ type: 'maskUpload', keys, masks: encodeTensor(new Float32Array(4 * H * W).fill(1), [4, 1, H, W]), sampleCount: 4 });
  t.equal((await c.nextOfType('maskAck')).total, 4);

  const req = await c.nextOfType('roundRequest');
  const round = req.round as number;
  const shape = (req.fakes as { shape: number[] }).shape;
  const n = shape.reduce((a, b) => a * b, 1);
  const grad = new Float32Array(n).fill(0.01);
  grad[n - 1] = NaN;
  const losses = { dReal: 0.5, dFake: 0.5, gGan: 0.5, gL1: 0.5 };
  const before = await gen.saveState();
  c.send({ type: 'gradientReply', round, keys: req.keys, grad: encodeTensor(grad, shape), losses });
  const err = await c.nextOfType('error');
  t.equal(err.code, 'non_finite');
  t.equal(err.field, 'grad', 'names the field');
  t.match(err.message as string, new RegExp(`element ${n - 1} is NaN`));
  t.equal(err.fatal, false);
  // An Inf in f16 form is caught too (0x7c00).
  const inf = encodeTensor(new Float32Array(n).fill(0.01), shape, 'f16');
  inf.data[0] = 0x00;
  inf.data[1] = 0x7c;
  c.send({ type: 'gradientReply', round, keys: req.keys, grad: inf, losses });
  t.equal((await c.nextOfType('error')).code, 'non_finite');
  await server.coordinator.waitForRound(round, 3000);
  const s = summaries.find((x) => x.round === round)!;
  t.equal(s.stepped, false, 'no generator step from rejected replies');
  t.same(await gen.saveState(), before, 'generator state unchanged');
  t.ok(logs.some((l) => l.level === 'warn' && l.data?.code === 'non_finite' && l.data?.field === 'grad'), 'rejection logged with code and field');

  // A good reply to the next round is applied: the rejection did not wedge anything.
  const req2 = await c.nextOfType('roundRequest');
  c.send({ type: 'gradientReply', round: req2.round, keys: req2.keys, grad: encodeTensor(new Float32Array(n).fill(0.01), shape), losses });
  await server.coordinator.waitForRound(req2.round as number, 3000);
  t.equal(summaries.find((x) => x.round === req2.round)?.stepped, true, 'valid reply applied');
  t.not(gen.a, 0, 'generator moved');
  c.terminate();

  // A node whose backend produces NaN withholds the reply and reports it instead.
  const nodeLogs: string[] = [];
  const tn = makeTestNode(server.url, 'alpha', { hooks: { nanAtRound: () => true }, log: (_l, m) => nodeLogs.push(m) });
  await tn.node.start();
  await tn.node.waitUntilReady(3000);
  await waitFor(() => tn.disc.steps >= 2, 5000, 'two NaN steps');
  t.equal(tn.node.stats.repliesSent, 0, 'no NaN reply sent');
  t.ok(tn.node.stats.errorsSent >= 2, 'error frames sent instead');
  t.ok(nodeLogs.includes('discriminator step failed'), 'node logged it');
  await waitFor(() => logs.some((l) => l.msg === 'node reported an error' && l.data?.code === 'non_finite'), 3000, 'server log of the node report');
  t.pass('server logged the node-reported non_finite error');
  await tn.node.stop();
});

t.test('an explicit port is bound exclusively', async (t) => {
  const a = await startTestServer(new LinearGenerator());
  t.teardown(() => a.stop());
  await t.rejects(startTestServer(new LinearGenerator(), { port: a.port }), /cannot listen/);
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('TLS (SSLApp) with a self-signed certificate', { skip: haveOpenssl() ? false : 'openssl not available to make a test certificate' }, async (t) => {
  const dir = t.testdir({});
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  t.ok(existsSync(cert));
  const gen = new LinearGenerator();
  const server = await startServer({
    generator: gen, tokens: TOKENS, session: { maskChannels: 1, imageChannels: 1, height: H, width: W, batchSize: 2 },
    host: '127.0.0.1', port: 0, tls: { certFile: cert, keyFile: key }, roundTimeoutMs: 1000, shutdownGraceMs: 500,
  });
  t.teardown(() => server.stop());
  t.match(server.url, /^wss:\/\//);
  const { readFileSync } = await import('node:fs');
  const tn = makeTestNode(server.url, 'alpha', { wsOptions: { ca: readFileSync(cert) } });
  await tn.node.start();
  await tn.node.waitUntilReady(5000);
  await server.coordinator.waitForRound(3, 5000);
  t.ok(gen.steps >= 3, 'trained over TLS');
  await tn.node.stop();
  // A node that does not trust the certificate cannot connect, and says why at warn on every retry.
  const warns: Record<string, unknown>[] = [];
  const untrusting = makeTestNode(server.url, 'beta', {
    reconnect: { initialDelayMs: 50, maxDelayMs: 100 }, log: (level, msg, data) => level === 'warn' && msg === 'cannot connect to the server' && warns.push(data ?? {}),
  });
  await untrusting.node.start();
  await t.rejects(untrusting.node.waitUntilReady(1000));
  await untrusting.node.stop();
  t.ok(warns.length >= 2, `one warn line per attempt (${warns.length})`);
  t.ok(warns.every((d) => /self-signed certificate|unable to verify/.test(String(d.cause))), `the TLS cause is named: ${String(warns[0]?.cause)}`);
  t.ok(warns.every((d) => typeof d.retryInMs === 'number'), 'with the retry delay');
});

t.test('a node that cannot reach the server names the cause at warn on each retry', async (t) => {
  const warns: Record<string, unknown>[] = [];
  const tn = makeTestNode('ws://127.0.0.1:1/ws', 'alpha', {
    reconnect: { initialDelayMs: 50, maxDelayMs: 100 }, log: (level, msg, data) => level === 'warn' && msg === 'cannot connect to the server' && warns.push(data ?? {}),
  });
  await tn.node.start();
  await waitFor(() => warns.length >= 3, 5000, 'three failed attempts');
  await tn.node.stop();
  t.ok(warns.every((d) => /ECONNREFUSED/.test(String(d.cause))), `ECONNREFUSED named: ${String(warns[0]?.cause)}`);
  t.equal(tn.node.state, 'stopped', 'it kept retrying until stopped');
});
