/**
 * The FedAvg-GAN server's transport: the same uWebSockets.js endpoint as the AsynDGAN server
 * (src/net/server.ts): credentials checked in the HTTP upgrade by the shared Admission (tokens,
 * per-address limits, lockouts), binary frames only, no compression, GET /health and /metrics.
 * All protocol logic is in FedAvgCoordinator.
 */
import uWS from 'uWebSockets.js';
import { Admission, type AdmissionOptions } from '../net/admission.js';
import { FileCheckpointStore } from '../net/checkpoint.js';
import { StartupError } from '../net/errors.js';
import { safeLog, silentLogger } from '../net/log.js';
import { DEFAULT_MAX_FRAME_BYTES } from '../net/protocol.js';
import { TokenTable } from '../net/tokens.js';
import { admitUpgrade, connectionHandlers, listenRetrying, notFoundRoute, sendJson, serverTokenTable, type EndpointUserData } from '../net/ws-endpoint.js';
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
    const tokens = await serverTokenTable(opts.tokens);
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
    app.ws<EndpointUserData>(this.path, {
      compression: uWS.DISABLED, // weights do not compress; and bytes counted are bytes sent
      maxPayloadLength: Math.min(2 * maxFrame, 2 ** 31 - 1),
      maxBackpressure: Math.min(4 * maxFrame, 2 ** 31 - 1),
      idleTimeout: o.idleTimeoutSec ?? 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
        admitUpgrade(res, req, context, admission, log, remote);
      },
      ...connectionHandlers(admission, coord),
    });
    app.get('/health', (res) => {
      const m = coord.metrics();
      sendJson(res, { ok: true, algorithm: 'fedavg-gan', sessionId: m.sessionId, round: m.round, nodesConnected: m.nodesConnected });
    });
    app.get('/metrics', (res) => sendJson(res, this.metrics()));
    notFoundRoute(app);
    return app;
  }

  private async listen(): Promise<void> {
    const ls = await listenRetrying(() => this.buildApp(), this.host, this.opts.port ?? 0, this.opts.listenRetryMs ?? 0);
    this.listenSocket = ls;
    this.portValue = uWS.us_socket_local_port(ls as unknown as uWS.us_socket);
    safeLog(this.opts.log ?? silentLogger, 'info', 'listening', { url: this.url });
  }
}
