/**
 * Fuzzing: more than 100,000 invalid frames each to the server and to a node, most straight
 * into the frame handlers (same code path as the sockets, minus the socket), several thousand
 * through real loopback sockets. Every frame must be answered by exactly one error frame or a
 * closed connection, nothing may crash or hang, and the training state must not change.
 * Finally a valid frame is sent to show the target was live (so the checks could fail).
 */
import t from 'tap';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeFrame, encodeFrame, encodeTensor } from '../src/net/codec.js';
import type { Connection } from '../src/net/coordinator.js';
import { DiscriminatorNode, type NodeTransport } from '../src/net/node.js';
import { PROTOCOL_VERSION, type SessionConfig } from '../src/net/protocol.js';
import { LinearGenerator, LogisticDiscriminator, makeNodeData } from './helpers/net-backends.js';
import { Fuzzer, fieldBreakers, keyBreakers, tensorBreakers, typeBreakers, type Breaker } from './helpers/net-fuzz.js';
import { H, RawClient, TOKENS, W, startTestServer, waitFor } from './helpers/net-harness.js';

const MAX_FRAME = 64 * 1024;
const DIRECT_AUTHED = 92_000;
const DIRECT_UNAUTHED = 10_000;
const SOCKET_AUTHED = 3_000;
const SOCKET_UNAUTHED = 400;
const NODE_DIRECT = 101_000;
const NODE_SOCKET = 3_000;

type Obj = Record<string, unknown>;

/** Records what a fake transport was sent. */
class FakeConn implements Connection, NodeTransport {
  count = 0;
  last: Uint8Array | undefined;
  closed = false;
  frames: Uint8Array[] = [];
  keep = false;
  send(bytes: Uint8Array): boolean {
    this.count++;
    this.last = bytes;
    if (this.keep) this.frames.push(bytes);
    return true;
  }
  close(): void {
    this.closed = true;
  }
}

/** Tally of fuzz outcomes; asserts once at the end instead of 100k times. */
class Tally {
  frames = 0;
  problems: string[] = [];
  byCode = new Map<string, number>();
  note(code: string): void {
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }
  bad(why: string): void {
    if (this.problems.length < 10) this.problems.push(why);
    else if (this.problems.length === 10) this.problems.push('...');
  }
}

/** Expect `sent` to be exactly one error frame; returns its code. */
function errorCode(sent: Uint8Array | undefined): string | undefined {
  if (!sent) return undefined;
  const m = decodeFrame(sent, 1 << 30) as { type?: unknown; code?: unknown };
  return m.type === 'error' && typeof m.code === 'string' ? m.code : undefined;
}

/** A mix of frame generators around the given bases. */
function frameSource(f: Fuzzer, bases: { base: Obj; breakers: Breaker[]; weight: number }[], doublyBad: Obj[], oversizeRate: number): () => Uint8Array {
  const validFrames = bases.map((b) => encodeFrame(b.base));
  const total = bases.reduce((s, b) => s + b.weight, 0);
  return () => {
    const r = f.rng.next();
    if (r < oversizeRate) return f.bytes(MAX_FRAME + 1 + f.int(16 * 1024));
    if (r < 0.1) return f.randomBytes();
    if (r < 0.25) return f.randomMsgpack();
    if (r < 0.33) return f.truncate(f.pick(validFrames));
    if (r < 0.38) return f.trailing(f.pick(validFrames));
    if (r < 0.44) return f.flip(encodeFrame(f.pick(doublyBad)));
    let x = f.rng.next() * total;
    for (const b of bases) {
      x -= b.weight;
      if (x <= 0) {
        const m = encodeFrame(f.mutate(b.base, b.breakers));
        // Sometimes also damage the bytes of an already broken message.
        const d = f.rng.next();
        return d < 0.05 ? f.truncate(m) : d < 0.1 ? f.trailing(m) : m;
      }
    }
    return f.randomMsgpack();
  };
}

const losses = { dReal: 0.5, dFake: 0.5, gGan: 0.7, gL1: 0.2 };
const lossBreakers = fieldBreakers('losses', [{}, 'x', null, [1, 2, 3, 4], { dReal: NaN, dFake: 0, gGan: 0, gL1: 0 }, { dReal: 0, dFake: 0, gGan: 0, gL1: Infinity }, { dReal: 0, dFake: 0, gGan: 0 }, { dReal: '0', dFake: 0, gGan: 0, gL1: 0 }]);

t.test('server: 100k+ invalid frames, direct and over sockets; state untouched', async (t) => {
  const gen = new LinearGenerator();
  // Round 1 must stay open for the whole run (a deadline mid-fuzz would take a step): 10 min.
  const server = await startTestServer(gen, { roundTimeoutMs: 600_000, maxFrameBytes: MAX_FRAME, maxErrorsPerConnection: 1e9 });
  t.teardown(() => server.stop());
  const coord = server.coordinator;

  // Node "fuzz" is attached straight to the coordinator and gets round 1 (kept open by the long deadline).
  const fc = new FakeConn();
  fc.keep = true;
  const fh = coord.attach(fc, 'direct');
  t.equal(coord.receive(fh, encodeFrame({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: 'fuzz', token: TOKENS.fuzz, capabilities: { dtypes: ['f32'] } })), 'accepted');
  const fdata = makeNodeData('fuzz', 4, H, W, 5);
  t.equal(coord.receive(fh, encodeFrame({ type: 'maskUpload', keys: fdata.keys, masks: encodeTensor(fdata.masks, fdata.shape), sampleCount: 4 })), 'accepted');
  await waitFor(() => fc.frames.some((b) => (decodeFrame(b, 1 << 30) as Obj).type === 'roundRequest'), 3000, 'round 1 request');
  const req = fc.frames.map((b) => decodeFrame(b, 1 << 30) as Obj).find((m) => m.type === 'roundRequest')!;
  const round = req.round as number;
  const keys = req.keys as string[];
  const shape = (req.fakes as { shape: number[] }).shape;
  fc.keep = false;
  fc.frames = [];

  // Node "raw" over a socket, authenticated, with its masks.
  const raw = await RawClient.connect(server.url);
  await raw.hello('raw');
  const rdata = makeNodeData('raw', 4, H, W, 6);
  raw.send({ type: 'maskUpload', keys: rdata.keys, masks: encodeTensor(rdata.masks, rdata.shape), sampleCount: 4 });
  await raw.nextOfType('maskAck');

  const before = await coord.checkpointBytes();
  const f = new Fuzzer(20240601);
  const n = shape.reduce((a, b) => a * b, 1);
  const grad = encodeTensor(new Float32Array(n).fill(0.01), shape);
  const replyBase: Obj = { type: 'gradientReply', round, keys, grad, losses };
  const uploadBase: Obj = { type: 'maskUpload', keys: ['new0', 'new1'], masks: encodeTensor(new Float32Array(2 * H * W), [2, 1, H, W]), sampleCount: 2 };
  const helloBase: Obj = { type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: 'fuzz', token: 'not-the-token', capabilities: { dtypes: ['f32'] } };
  const nanGrad = encodeTensor(new Float32Array(n).fill(NaN), shape);
  const bases = [
    {
      base: replyBase, weight: 5,
      breakers: [...typeBreakers(['welcome', 'maskAck', 'roundRequest']), ...keyBreakers(keys, 'exact'), ...tensorBreakers('grad', shape), ...fieldBreakers('round', [0, -1, 1.5, 'x', null, round + 1, round + 1000, 2 ** 60, NaN]), ...lossBreakers],
    },
    {
      base: uploadBase, weight: 2,
      breakers: [...typeBreakers(['welcome', 'maskAck', 'roundRequest']), ...keyBreakers(['new0', 'new1'], 'any'), ...tensorBreakers('masks', [2, 1, H, W]), ...fieldBreakers('sampleCount', [0, -1, 1.5, '2', null, NaN])],
    },
    // On an authenticated connection any hello is refused; unauthenticated, this one has a wrong token.
    { base: helloBase, weight: 1, breakers: [...fieldBreakers('protocolVersion', [0, 1, 3, '2', null]), ...fieldBreakers('nodeId', ['', 5, null]), ...fieldBreakers('capabilities', [{}, { dtypes: ['f16'] }, null, 'f32'])] },
  ];
  const doublyBad: Obj[] = [
    { ...replyBase, keys: ['zz-a', 'zz-b', 'zz-c', 'zz-d'], grad: nanGrad },
    { ...uploadBase, keys: ['dup', 'dup'], masks: encodeTensor(new Float32Array(3 * H * W), [3, 1, H, W]) },
  ];
  const next = frameSource(f, bases, doublyBad, 0.002);

  // 1. Directly into the coordinator, authenticated connection with an outstanding round.
  const direct = new Tally();
  const t0 = Date.now();
  for (let i = 0; i < DIRECT_AUTHED; i++) {
    const bytes = next();
    const c0 = fc.count;
    const outcome = coord.receive(fh, bytes);
    direct.frames++;
    const code = errorCode(fc.last);
    if (outcome !== 'rejected' || fc.count !== c0 + 1 || !code) direct.bad(`#${i}: outcome ${outcome}, ${fc.count - c0} frames, code ${code}`);
    else direct.note(code);
  }
  // 2. Directly, each frame on a fresh unauthenticated connection: error frame, then closed.
  for (let i = 0; i < DIRECT_UNAUTHED; i++) {
    const c = new FakeConn();
    const h = coord.attach(c, 'direct-unauth');
    const bytes = i % 10 === 0 ? encodeFrame(helloBase) : next();
    const outcome = coord.receive(h, bytes);
    direct.frames++;
    const code = errorCode(c.last);
    if (outcome !== 'closed' || c.count !== 1 || !c.closed || !code) direct.bad(`unauth #${i}: outcome ${outcome}, ${c.count} frames, closed ${c.closed}`);
    else direct.note(code);
    coord.detach(h);
  }
  const directMs = Date.now() - t0;
  t.equal(direct.frames, DIRECT_AUTHED + DIRECT_UNAUTHED);
  t.ok(direct.frames >= 100_000, `${direct.frames} frames straight into the handler in ${directMs} ms`);
  t.same(direct.problems, [], 'each answered by exactly one error frame (unauthenticated ones also closed)');
  t.ok(direct.byCode.size >= 7, `many error kinds exercised: ${JSON.stringify(Object.fromEntries(direct.byCode))}`);
  t.notOk(fc.closed, 'the authenticated connection survived (abuse limit raised for fuzzing)');

  // 3. Over a real socket, authenticated.
  const sock = new Tally();
  for (let i = 0; i < SOCKET_AUTHED; i++) {
    raw.send(next());
    sock.frames++;
    const e = await raw.next(3000);
    if (e.kind !== 'frame' || e.msg.type !== 'error') sock.bad(`#${i}: ${e.kind === 'close' ? `closed ${e.code}` : JSON.stringify(e.msg).slice(0, 80)}`);
    else sock.note(e.msg.code as string);
    if (e.kind === 'close') break;
  }
  // 4. Over fresh sockets before hello (the upgrade authenticated them as gamma): error + close,
  // or (over the hard limit) close. One connection per id: wait for the server to see each close.
  for (let i = 0; i < SOCKET_UNAUTHED; i++) {
    await waitFor(() => server.metrics().connections.open <= 1, 3000, 'the previous socket closing');
    const c = await RawClient.connect(server.url, { nodeId: 'gamma' });
    const huge = i % 40 === 0;
    c.send(huge ? f.bytes(2 * MAX_FRAME + 1 + f.int(1000)) : next());
    sock.frames++;
    const e = await c.next(3000);
    if (e.kind === 'frame') {
      if (e.msg.type !== 'error' || e.msg.fatal !== true) sock.bad(`unauth #${i}: ${JSON.stringify(e.msg).slice(0, 80)}`);
      else sock.note(e.msg.code as string);
      const e2 = await c.next(3000);
      if (e2.kind !== 'close') sock.bad(`unauth #${i}: not closed after fatal error`);
    } else if (!huge) sock.bad(`unauth #${i}: closed without an error frame`);
    else sock.note('closed-over-hard-limit');
    c.terminate();
  }
  t.ok(sock.frames >= 3000, `${sock.frames} frames over real sockets`);
  t.same(sock.problems, [], 'each answered by an error frame or a closed connection');
  t.ok((sock.byCode.get('frame_too_large') ?? 0) > 0 && (sock.byCode.get('closed-over-hard-limit') ?? 0) > 0, 'oversize frames in both regimes');

  // State untouched: generator, round, RNG, node registry (incl. masks) byte for byte.
  t.same(await coord.checkpointBytes(), before, 'checkpoint bytes identical after fuzzing');
  t.equal(gen.steps, 0);
  t.equal(coord.round, 0);
  t.equal(server.metrics().nodes.find((x) => x.id === 'fuzz')?.masks, 4);

  // Live: the genuine reply is accepted and round 1 completes with a generator step.
  t.equal(coord.receive(fh, encodeFrame(replyBase)), 'accepted', 'a valid reply is still accepted');
  await coord.waitForRound(round, 3000);
  t.equal(gen.steps, 1, 'and it reaches the generator');
  t.not(Buffer.compare(Buffer.from(await coord.checkpointBytes()), Buffer.from(before)), 0, 'state did change once a valid frame came');
  raw.terminate();
  coord.detach(fh);
  await server.stop();
});

t.test('server: abuse limit closes a connection that keeps sending bad frames', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { maxErrorsPerConnection: 20 });
  t.teardown(() => server.stop());
  const c = await RawClient.connect(server.url);
  await c.hello('raw');
  const codes: string[] = [];
  for (let i = 0; i < 30; i++) {
    c.send({ type: 'nonsense', i });
    const e = await c.next(3000);
    if (e.kind === 'close') break;
    codes.push(e.msg.code as string);
  }
  t.equal(codes.length, 21, '20 tolerated, the 21st answered with the closing error');
  t.equal(codes[20], 'too_many_errors');
  t.equal((await c.next(3000)).kind, 'close');
  await server.stop();
});

// ---- node -----------------------------------------------------------------------------------

function sessionConfig(): SessionConfig {
  return {
    maskChannels: 1, imageChannels: 1, height: H, width: W, lambdaL1: 100, batchSize: 4, wireDtype: 'f32', maxFrameBytes: MAX_FRAME,
    roundTimeoutMs: 1000, maxStaleness: 1, sampling: 'balance', weighting: 'samples',
  };
}

function nodeBases(keys: string[]): { bases: { base: Obj; breakers: Breaker[]; weight: number }[]; doublyBad: Obj[]; request: Obj } {
  const rk = keys.slice(0, 4);
  const shape = [4, 1, H, W];
  const request: Obj = { type: 'roundRequest', round: 7, keys: rk, fakes: encodeTensor(new Float32Array(4 * H * W).fill(0.3), shape), aug: rk.map(() => ({ flipH: true })) };
  const welcome: Obj = { type: 'welcome', protocolVersion: PROTOCOL_VERSION, sessionId: 's', nodeId: 'fuzz', round: 0, config: sessionConfig(), knownKeys: [] };
  const other = ['hello', 'maskUpload', 'gradientReply'];
  const bases = [
    {
      base: request, weight: 6,
      breakers: [
        ...typeBreakers(other), ...keyBreakers(rk, 'known'), ...tensorBreakers('fakes', shape), ...fieldBreakers('round', [0, -1, 1.5, 'x', null, NaN, 2 ** 60]),
        (m: Obj, f: Fuzzer) => { m.aug = f.pick([[{ flipH: 1 }, {}, {}, {}], [{ rotate: 90 }, {}, {}, {}], 'x', [{}, {}], 5, [null, {}, {}, {}]]); },
      ],
    },
    { base: welcome, weight: 1, breakers: [...fieldBreakers('sessionId', [5, null]), ...fieldBreakers('config', [null, {}, 'x']), ...fieldBreakers('protocolVersion', [1, 3, 'x'])] }, // a second welcome is refused anyway
    { base: { type: 'maskAck', accepted: 4, total: 4 }, weight: 1, breakers: [...fieldBreakers('accepted', [-1, 1.5, 'x', null]), ...fieldBreakers('total', [-1, 'x', NaN])] },
    { base: { type: 'status', round: 3, metrics: { a: 1 } }, weight: 1, breakers: [...fieldBreakers('round', [-1, 'x', 1.5]), ...fieldBreakers('metrics', ['x', [1], { a: 'b' }, { a: NaN }, null])] },
    { base: { type: 'error', code: 'internal', message: 'm', fatal: false }, weight: 1, breakers: [...fieldBreakers('code', ['nope', 5, null]), ...fieldBreakers('fatal', ['yes', 1, null]), ...fieldBreakers('message', [5, null])] },
    { base: { type: 'goodbye', reason: 'r' }, weight: 1, breakers: fieldBreakers('reason', [5, null, {}, 'x'.repeat(5000)]) },
  ];
  const doublyBad = [{ ...request, keys: ['zz-a', 'zz-b', 'zz-c', 'zz-d'], fakes: encodeTensor(new Float32Array(4 * H * W).fill(NaN), shape) }];
  return { bases, doublyBad, request };
}

t.test('node: 100k+ invalid frames into the handler, 3k over a socket; discriminator untouched', async (t) => {
  const data = makeNodeData('fuzz', 8, H, W, 9);
  const disc = new LogisticDiscriminator(data);
  const node = new DiscriminatorNode({
    url: 'ws://127.0.0.1:9/unused', nodeId: 'fuzz', token: TOKENS.fuzz, backend: disc,
    masks: { keys: data.keys, data: data.masks, shape: data.shape }, maxFrameBytes: MAX_FRAME, maxErrorsPerConnection: 1e9,
  });
  const conn = new FakeConn();
  conn.keep = true;
  const s = node.openSession(conn);
  t.equal((decodeFrame(conn.frames[0]!, 1 << 30) as Obj).type, 'hello');
  t.equal(node.handleFrame(s, encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, sessionId: 's', nodeId: 'fuzz', round: 0, config: sessionConfig(), knownKeys: [] })), 'accepted');
  t.equal((decodeFrame(conn.frames[1]!, 1 << 30) as Obj).type, 'maskUpload');
  conn.keep = false;
  const before = await disc.saveState();

  const f = new Fuzzer(777);
  const { bases, doublyBad, request } = nodeBases(data.keys);
  const next = frameSource(f, bases, doublyBad, 0.002);
  const tally = new Tally();
  const t0 = Date.now();
  for (let i = 0; i < NODE_DIRECT; i++) {
    const c0 = conn.count;
    const outcome = node.handleFrame(s, next());
    tally.frames++;
    const code = errorCode(conn.last);
    if (outcome !== 'rejected' || conn.count !== c0 + 1 || !code) tally.bad(`#${i}: outcome ${outcome}, ${conn.count - c0} frames, code ${code}`);
    else tally.note(code);
  }
  t.ok(tally.frames >= 100_000, `${tally.frames} frames into the node handler in ${Date.now() - t0} ms`);
  t.same(tally.problems, [], 'each answered by exactly one error frame');
  t.ok(tally.byCode.size >= 6, `error kinds: ${JSON.stringify(Object.fromEntries(tally.byCode))}`);
  await new Promise((r) => setTimeout(r, 50)); // let any (wrongly) scheduled step run
  t.equal(disc.steps, 0, 'no discriminator step');
  t.same(await disc.saveState(), before, 'discriminator state identical');
  t.equal(node.stats.steps, 0);

  // Live: a valid request is processed and answered.
  conn.keep = true;
  t.equal(node.handleFrame(s, encodeFrame(request)), 'accepted');
  await waitFor(() => conn.frames.some((b) => (decodeFrame(b, 1 << 30) as Obj).type === 'gradientReply'), 3000, 'gradient reply');
  t.equal(disc.steps, 1, 'a valid request does step the discriminator');

  // Over a real socket: a fake server speaks to a started node.
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  const peers: RawClient[] = [];
  wss.on('connection', (ws: WebSocket) => peers.push(RawClient.wrap(ws)));
  const sdata = makeNodeData('fuzz', 8, H, W, 10);
  const sdisc = new LogisticDiscriminator(sdata);
  const snode = new DiscriminatorNode({
    url: `ws://127.0.0.1:${port}`, nodeId: 'fuzz', token: TOKENS.fuzz, backend: sdisc,
    masks: { keys: sdata.keys, data: sdata.masks, shape: sdata.shape }, maxFrameBytes: MAX_FRAME, maxErrorsPerConnection: 1e9,
    reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
  });
  await snode.start();
  await waitFor(() => peers.length === 1, 3000, 'node connection');
  const peer = peers[0]!;
  t.equal((await peer.nextOfType('hello')).nodeId, 'fuzz');
  peer.send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, sessionId: 's', nodeId: 'fuzz', round: 0, config: sessionConfig(), knownKeys: [] });
  await peer.nextOfType('maskUpload');
  await snode.waitUntilReady(3000);
  const sbefore = await sdisc.saveState();
  const { bases: sb, doublyBad: sd } = nodeBases(sdata.keys);
  const snext = frameSource(new Fuzzer(4242), sb, sd, 0.01);
  const stally = new Tally();
  for (let i = 0; i < NODE_SOCKET; i++) {
    peer.send(snext());
    stally.frames++;
    const e = await peer.next(3000);
    if (e.kind !== 'frame' || e.msg.type !== 'error') stally.bad(`#${i}: ${e.kind === 'close' ? `closed ${e.code}` : JSON.stringify(e.msg).slice(0, 80)}`);
    else stally.note(e.msg.code as string);
    if (e.kind === 'close') break;
  }
  t.ok(stally.frames >= 3000, `${stally.frames} frames to the node over a real socket`);
  t.same(stally.problems, [], 'each answered by an error frame');
  t.ok((stally.byCode.get('frame_too_large') ?? 0) > 0, 'oversize frames refused politely');
  t.equal(sdisc.steps, 0);
  t.same(await sdisc.saveState(), sbefore, 'discriminator state identical');
  await snode.stop();
  for (const p of peers) p.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
});

t.test('node: abuse limit drops the connection and reconnects', async (t) => {
  const data = makeNodeData('fuzz', 4, H, W, 3);
  const node = new DiscriminatorNode({
    url: 'ws://127.0.0.1:9/unused', nodeId: 'fuzz', token: TOKENS.fuzz, backend: new LogisticDiscriminator(data),
    masks: { keys: data.keys, data: data.masks, shape: data.shape }, maxErrorsPerConnection: 5,
  });
  const conn = new FakeConn();
  const s = node.openSession(conn);
  const outcomes = Array.from({ length: 6 }, () => node.handleFrame(s, new Uint8Array([0xc1])));
  t.same(outcomes, ['rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'closed']);
  t.equal(errorCode(conn.last), 'too_many_errors');
  t.ok(conn.closed);
  t.equal(node.handleFrame(s, new Uint8Array([0xc1])), 'closed', 'nothing more is processed on that session');
});
