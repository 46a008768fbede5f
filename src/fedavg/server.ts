/**
 * The FedAvg-GAN server's transport: the same uWebSockets.js endpoint as the AsynDGAN server
 * (src/net/server.ts): credentials checked in the HTTP upgrade by the shared Admission (tokens,
 * per-address limits, lockouts), binary frames only, no compression, GET /health and /metrics.
 * All protocol logic is in FedAvgCoordinator.
 */
import uWS from 'uWebSockets.js';
import { Admission, AUTHORIZATION_HEADER, NODE_ID_HEADER, REFUSAL_HEADER, statusLine, type AdmissionOptions } from '../net/admission.js';
import { FileCheckpointStore } from '../net/checkpoint.js';
import type { ConnHandle } from '../net/sessions.js';
import { StartupError } from '../net/errors.js';
import { safeLog, silentLogger } from '../net/log.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../net/protocol.js';
import { TokenTable } from '../net/tokens.js';
import { FedAvgCoordinator, type FedAvgCoordinatorOptions, type FedAvgMetrics } from './coordinator.js';

export interface FedAvgServerOptions extends Omit<FedAvgCoordinatorOptions, 'tokens'>, Omit<AdmissionOptions, 'onDuplicateId'> {
  /** Node id -> token, a TokenTable, or the path of a token file. */
  tokens: FedAvgCoordinatorOptions['tokens'] | string;
  /** Shorthand for a FileCheckpointStore(checkpointDir, 'fedavg-server-checkpoint.msgpack'). */
  checkpointDir?: string;
  host?: string;
  port?: number;
  path?: string;
  tls?: { certFile: string; keyFile: string; passphrase?: string };
  idleTimeoutSec?: number;
  shutdownGraceMs?: number;
  /** Keep retrying to bind for this long (ms), e.g. right after a previous server on the port stopped. Default 0. */
  listenRetryMs?: number;
}

export type FedAvgServerMetrics = FedAvgMetrics & { connections: { open: number; refused: Admission['refused'] } };

const LIBUS_LISTEN_EXCLUSIVE_PORT: number = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;

interface UserData {
  h: ConnHandle | undefined;
  open: boolean;
  nodeId: string;
  address: string;
  remote: string;
}

export class FedAvgServer {
  readonly coordinator: FedAvgCoordinator;
  readonly admission: Admission;
  readonly host: string;
  readonly path: string;
  readonly secure: boolean;
  private listenSocket: uWS.us_listen_socket | undefined;
  private portValue = 0;
  private stopping: Promise<void> | undefined;

  private constructor(private readonly opts: FedAvgServerOptions, tokens: TokenTable) {
    const checkpoint = opts.checkpoint ?? (opts.checkpointDir !== undefined ? new FileCheckpointStore(opts.checkpointDir, 'fedavg-server-checkpoint.msgpack', opts.log ? { log: opts.log } : {}) : undefined);
    this.coordinator = new FedAvgCoordinator({ ...opts, tokens, ...(checkpoint ? { checkpoint } : {}) });
    this.admission = new Admission(tokens, { ...opts, onDuplicateId: opts.onDuplicateId ?? 'refuse' });
    this.host = opts.host ?? '127.0.0.1';
    this.path = opts.path ?? '/ws';
    this.secure = opts.tls !== undefined;
  }

  /** Create, resume from the checkpoint if any, listen, and start the rounds. */
  static async start(opts: FedAvgServerOptions): Promise<FedAvgServer> {
    const tokens = typeof opts.tokens === 'string' ? await TokenTable.load(opts.tokens) : opts.tokens instanceof TokenTable ? opts.tokens : new TokenTable(opts.tokens);
    if (tokens.size === 0) throw new StartupError('the token table lists no nodes: nobody could ever connect');
    const s = new FedAvgServer(opts, tokens);
    await s.coordinator.start();
    try {
      await s.listen();
    } catch (e) {
      await s.coordinator.stop({ reason: 'listen failed', graceMs: 0, checkpoint: false });
      throw e;
    }
    return s;
  }

  get port(): number {
    return this.portValue;
  }
  get url(): string {
    return `${this.secure ? 'wss' : 'ws'}://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.portValue}${this.path}`;
  }
  get httpUrl(): string {
    return this.url.replace(/^ws/, 'http').replace(new RegExp(`${this.path}$`), '');
  }
  get round(): number {
    return this.coordinator.round;
  }
  metrics(): FedAvgServerMetrics {
    return { ...this.coordinator.metrics(), connections: { open: this.admission.connections, refused: { ...this.admission.refused } } };
  }

  /** Stop listening, finish the round, checkpoint, say goodbye, close. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
      await this.coordinator.stop({ reason: 'server shutdown', graceMs: this.opts.shutdownGraceMs ?? 2000 });
    })();
    return this.stopping;
  }

  private buildApp(): uWS.TemplatedApp {
    const o = this.opts;
    let app: uWS.TemplatedApp;
    try {
      app = o.tls ? uWS.SSLApp({ cert_file_name: o.tls.certFile, key_file_name: o.tls.keyFile, ...(o.tls.passphrase ? { passphrase: o.tls.passphrase } : {}) }) : uWS.App();
    } catch {
      throw new StartupError(o.tls ? `TLS: cannot use certificate ${o.tls.certFile} with key ${o.tls.keyFile}` : 'cannot create the HTTP server');
    }
    const maxFrame = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const coord = this.coordinator;
    const admission = this.admission;
    const log = o.log ?? silentLogger;
    app.ws<UserData>(this.path, {
      compression: uWS.DISABLED, // weights do not compress; and bytes counted are bytes sent
      maxPayloadLength: Math.min(2 * maxFrame, 2 ** 31 - 1),
      maxBackpressure: Math.min(4 * maxFrame, 2 ** 31 - 1),
      idleTimeout: o.idleTimeoutSec ?? 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
        const verdict = admission.check(remote, req.getHeader(NODE_ID_HEADER), req.getHeader(AUTHORIZATION_HEADER), Date.now());
        if (!verdict.ok) {
          if (verdict.code !== 'rate_limited') safeLog(log, 'warn', 'connection refused', { remote, status: verdict.status, code: verdict.code });
          res.writeStatus(statusLine(verdict.status)).writeHeader(REFUSAL_HEADER, verdict.code).writeHeader('Content-Type', 'application/json');
          if (verdict.retryAfterSec !== undefined) res.writeHeader('Retry-After', String(verdict.retryAfterSec));
          res.end(JSON.stringify({ error: verdict.code, message: verdict.message }), true);
          return;
        }
        const ud: UserData = { h: undefined, open: true, nodeId: verdict.nodeId, address: verdict.address, remote };
        res.upgrade<UserData>(ud, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
      },
      open: (ws) => {
        const ud = ws.getUserData();
        admission.opened(ud.address, ud.nodeId);
        ud.h = coord.attach({
          send: (bytes) => ud.open && ws.send(bytes, true) !== 2,
          close: (code, reason) => {
            if (!ud.open) return;
            ud.open = false;
            ws.end(code, reason.slice(0, 120));
          },
        }, ud.remote, ud.nodeId);
      },
      message: (ws, message, isBinary) => {
        const h = ws.getUserData().h;
        if (h) coord.receive(h, new Uint8Array(message), isBinary);
      },
      close: (ws) => {
        const ud = ws.getUserData();
        ud.open = false;
        admission.closed(ud.address, ud.nodeId);
        if (ud.h) coord.detach(ud.h);
      },
    });
    const json = (res: uWS.HttpResponse, body: unknown): void => {
      res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').writeHeader('Cache-Control', 'no-store').end(JSON.stringify(body));
    };
    app.get('/health', (res) => {
      const m = coord.metrics();
      json(res, { ok: true, algorithm: 'fedavg-gan', sessionId: m.sessionId, round: m.round, nodesConnected: m.nodesConnected });
    });
    app.get('/metrics', (res) => json(res, this.metrics()));
    app.any('/*', (res) => {
      res.writeStatus('404 Not Found').writeHeader('Content-Type', 'application/json').end('{"error":"not found"}');
    });
    return app;
  }

  private async listen(): Promise<void> {
    const wanted = this.opts.port ?? 0;
    const deadline = Date.now() + (this.opts.listenRetryMs ?? 0);
    for (;;) {
      const app = this.buildApp();
      const ls = await new Promise<uWS.us_listen_socket | false>((resolve) => {
        // An explicit port is bound exclusively (as src/net/server.ts does): no silent SO_REUSEPORT sharing.
        if (wanted === 0) app.listen(this.host, 0, resolve);
        else (app.listen as unknown as (h: string, p: number, o: number, cb: (s: uWS.us_listen_socket | false) => void) => void)(this.host, wanted, LIBUS_LISTEN_EXCLUSIVE_PORT, resolve);
      });
      if (ls) {
        this.listenSocket = ls;
        this.portValue = uWS.us_socket_local_port(ls as unknown as uWS.us_socket);
        safeLog(this.opts.log ?? silentLogger, 'info', 'listening', { url: this.url });
        return;
      }
      if (Date.now() >= deadline) throw new StartupError(`cannot listen on ${this.host}:${wanted} (port in use?)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
