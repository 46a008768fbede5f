/**
 * Test plumbing for the network layer: a loopback server with the toy backends, nodes,
 * a raw WebSocket client that sees every frame, and bounded waiting.
 */
import WebSocket from 'ws';
import { REFUSAL_HEADER, upgradeHeaders } from '../../src/net/admission.js';
import { decodeFrame, encodeFrame } from '../../src/net/codec.js';
import { DiscriminatorNode, type NodeOptions } from '../../src/net/node.js';
import { PROTOCOL_VERSION } from '../../src/net/protocol.js';
import { startServer, type GeneratorServer, type ServerOptions } from '../../src/net/server.js';
import { LinearGenerator, LogisticDiscriminator, makeNodeData, type DiscriminatorHooks, type NodeData } from './net-backends.js';

export const H = 8;
export const W = 8;

export const TOKENS: Record<string, string> = {
  alpha: 'tok-alpha-0123456789',
  beta: 'tok-beta-0123456789',
  gamma: 'tok-gamma-0123456789',
  fuzz: 'tok-fuzz-0123456789',
  raw: 'tok-raw-0123456789',
};

/** Poll `pred` every `everyMs` until true; throws after `timeoutMs`. */
export async function waitFor(pred: () => boolean, timeoutMs: number, what: string, everyMs = 10): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function startTestServer(
  gen: LinearGenerator,
  over: Partial<ServerOptions> = {},
): Promise<GeneratorServer> {
  return startServer({
    generator: gen,
    tokens: TOKENS,
    session: { maskChannels: 1, imageChannels: 1, height: H, width: W, batchSize: 4, lambdaL1: 100 },
    host: '127.0.0.1',
    port: 0,
    roundTimeoutMs: 2000,
    maxStaleness: 1,
    checkpointEvery: 0,
    seed: 1234,
    shutdownGraceMs: 1000,
    ...over,
  });
}

export interface TestNode {
  node: DiscriminatorNode;
  disc: LogisticDiscriminator;
  data: NodeData;
}

export function makeTestNode(
  url: string | (() => string),
  id: string,
  opts: { n?: number; seed?: number; density?: number; hooks?: DiscriminatorHooks; data?: NodeData; disc?: LogisticDiscriminator } & Partial<NodeOptions> = {},
): TestNode {
  const data = opts.data ?? makeNodeData(id, opts.n ?? 12, H, W, opts.seed ?? id.length * 7919, opts.density ?? 0.5);
  const disc = opts.disc ?? new LogisticDiscriminator(data, opts.hooks ?? {});
  const node = new DiscriminatorNode({
    url,
    nodeId: id,
    token: TOKENS[id] ?? 'nope',
    backend: disc,
    masks: { keys: data.keys, data: data.masks, shape: data.shape },
    reconnect: { initialDelayMs: 50, maxDelayMs: 400, jitter: 0.5 },
    // These tests check the federation's arithmetic on exact gradients; privacy tests pass their own preset.
    privacy: 'off',
    ...opts,
  });
  return { node, disc, data };
}

/** Try an upgrade with these headers; the HTTP status and refusal code the server answered (101 when admitted). */
export async function upgradeStatus(url: string, headers: Record<string, string>): Promise<{ status: number; code: string; retryAfter: string | undefined }> {
  const ws = new WebSocket(url, { perMessageDeflate: false, headers });
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode ?? 0, code: String(res.headers[REFUSAL_HEADER] ?? ''), retryAfter: res.headers['retry-after'] as string | undefined });
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      resolve({ status: 101, code: '', retryAfter: undefined });
      ws.terminate();
    });
    ws.on('error', (e) => reject(e));
  }).catch((e: Error) => {
    if (/closed before the connection/.test(e.message)) return { status: 0, code: '', retryAfter: undefined };
    throw e;
  }) as Promise<{ status: number; code: string; retryAfter: string | undefined }>;
}

export type RawEvent = { kind: 'frame'; msg: Record<string, unknown>; bytes: Uint8Array } | { kind: 'close'; code: number };

/** A bare WebSocket peer: sends whatever it is told, queues every frame it receives. */
export class RawClient {
  private queue: RawEvent[] = [];
  private waiters: ((e: RawEvent) => void)[] = [];
  closed = false;
  closeCode = 0;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      let msg: Record<string, unknown>;
      try {
        msg = decodeFrame(new Uint8Array(data), 1 << 30);
      } catch {
        msg = { type: '<undecodable>' };
      }
      this.push({ kind: 'frame', msg, bytes: new Uint8Array(data) });
    });
    ws.on('close', (code: number) => {
      this.closed = true;
      this.closeCode = code;
      this.push({ kind: 'close', code });
    });
    ws.on('error', () => {});
  }

  /** Wrap an already open socket (e.g. the server side of a ws WebSocketServer connection). */
  static wrap(ws: WebSocket): RawClient {
    return new RawClient(ws);
  }

  /**
   * Open an authenticated socket: the upgrade carries `nodeId`'s credentials (default 'raw'; the
   * hello sent later must name the same id). Rejects when the server refuses the upgrade.
   */
  static async connect(url: string, auth: { nodeId?: string; token?: string } = {}, maxPayload = 1 << 30): Promise<RawClient> {
    const nodeId = auth.nodeId ?? 'raw';
    const headers = upgradeHeaders(nodeId, auth.token ?? TOKENS[nodeId] ?? 'nope');
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload, headers });
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return c;
  }

  private push(e: RawEvent): void {
    const w = this.waiters.shift();
    if (w) w(e);
    else this.queue.push(e);
  }

  /** Next event (frame or close), or throws after `timeoutMs`. After close, keeps returning close. */
  next(timeoutMs = 3000): Promise<RawEvent> {
    const e = this.queue.shift();
    if (e) {
      if (e.kind === 'close') this.queue.unshift(e);
      return Promise.resolve(e);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no frame within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = (ev: RawEvent): void => {
        clearTimeout(timer);
        if (ev.kind === 'close') this.queue.unshift(ev);
        resolve(ev);
      };
      this.waiters.push(w);
    });
  }

  /** Next frame of a given type, skipping others (bounded by `timeoutMs`). */
  async nextOfType(type: string, timeoutMs = 3000): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const e = await this.next(Math.max(1, end - Date.now()));
      if (e.kind === 'close') throw new Error(`closed (${e.code}) while waiting for ${type}`);
      if (e.msg.type === type) return e.msg;
    }
  }

  send(msg: Record<string, unknown> | Uint8Array): void {
    this.ws.send(msg instanceof Uint8Array ? msg : encodeFrame(msg), { binary: true });
  }

  sendText(s: string): void {
    this.ws.send(s, { binary: false });
  }

  /** Send hello and return the welcome (throws on anything else). */
  async hello(nodeId: string, token = TOKENS[nodeId]!): Promise<Record<string, unknown>> {
    this.send({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId, token, capabilities: { dtypes: ['f32', 'f16'] } });
    const e = await this.next();
    if (e.kind !== 'frame' || e.msg.type !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(e.kind === 'frame' ? e.msg : e)}`);
    return e.msg;
  }

  terminate(): void {
    this.ws.terminate();
  }

  get pending(): number {
    return this.queue.length;
  }
}
