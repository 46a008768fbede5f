/**
 * The generator server's transport: uWebSockets.js WebSocket endpoint (plain or TLS) plus
 * GET /health and GET /metrics on the same port. All protocol logic lives in Coordinator.
 * Nodes authenticate in the HTTP upgrade (admission.ts): a peer without valid credentials
 * never becomes a WebSocket, so nothing it sends is buffered.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import uWS from 'uWebSockets.js';
import { Admission, REFUSAL_HEADER, statusLine, type AdmissionOptions } from './admission.js';
import { Coordinator, type CoordinatorOptions, type ServerMetrics } from './coordinator.js';
import { FileCheckpointStore } from './checkpoint.js';
import { StartupError, oneLine } from './errors.js';
import { safeLog, silentLogger } from './log.js';
import { TokenTable } from './tokens.js';
import { DEFAULT_MAX_FRAME_BYTES } from './protocol.js';
import { privacyFromStatus, type ReportedPrivacy } from '../privacy/index.js';
import { PROMETHEUS_CONTENT_TYPE, prometheusText, wantsPrometheus } from './prometheus.js';
import { admitUpgrade, connectionHandlers, listenRetrying, notFoundRoute, whyCannotListen, sendJson, serverTokenTable, type EndpointUserData } from './ws-endpoint.js';
import { PEER_ADDRESS_HEADER, PEER_CERT_HEADER, RELAY_SECRET_HEADER, TlsRelay } from './tls-relay.js';

/** /metrics: the coordinator's metrics plus the transport's admission counters. */
export interface TransportMetrics extends ServerMetrics {
  connections: { open: number; refused: AdmissionCounts };
  /** Each node's privacy as it reported it in status.metrics (docs/PRIVACY.md); 'unreported': assume none. */
  privacy: Record<string, ReportedPrivacy>;
}
export type AdmissionCounts = Admission['refused'];

export interface ServerOptions extends Omit<CoordinatorOptions, 'tokens'>, Omit<AdmissionOptions, 'onDuplicateId'> {
  /** Node id -> token, a loaded TokenTable, or the path of a token file {"nodes": {"<id>": "<token>"}}. */
  tokens: CoordinatorOptions['tokens'] | string;
  /** Shorthand for `checkpoint: new FileCheckpointStore(checkpointDir, 'server-checkpoint.msgpack')`. */
  checkpointDir?: string;
  /** Interface to bind. Default '127.0.0.1' (loopback; pass '0.0.0.0' to serve a network). */
  host?: string;
  /** Port; 0 picks an ephemeral one (see GeneratorServer.port). Default 0. */
  port?: number;
  /** WebSocket path. Default '/ws'. */
  path?: string;
  /**
   * Serve wss:// and https:// with these PEM files. With `clientCaFile`, mutual TLS: a client must
   * present a certificate that chains to that CA and whose subject CN is its node id, as well as
   * its token (TLS is then terminated in Node, see tls-relay.ts).
   */
  tls?: { certFile: string; keyFile: string; passphrase?: string; clientCaFile?: string };
  /**
   * Frames up to maxFrameBytes are read; frames between maxFrameBytes and this get an
   * error frame; larger ones make uWebSockets.js drop the connection without reading them.
   * Default 2 * maxFrameBytes.
   */
  hardMaxFrameBytes?: number;
  /** Close connections silent for this long (s); pings are sent automatically. 0 disables. Default 120. */
  idleTimeoutSec?: number;
  /** Bytes queued per connection before sends are dropped. Default 4 * maxFrameBytes. */
  maxBackpressureBytes?: number;
  /** Keep retrying to bind for this long (ms), e.g. after a crash left the port in TIME_WAIT. Default 0. */
  listenRetryMs?: number;
  /** On stop, how long nodes get to close their side before the server closes it (ms). Default 2000. */
  shutdownGraceMs?: number;
}

export class GeneratorServer {
  readonly coordinator: Coordinator;
  readonly host: string;
  readonly path: string;
  readonly secure: boolean;
  private listenSocket: uWS.us_listen_socket | undefined;
  /** Mutual TLS: the TLS front that relays to the plain uWS app. */
  private relay: TlsRelay | undefined;
  private portValue = 0;
  private stopping: Promise<void> | undefined;
  readonly admission: Admission;

  private constructor(private readonly opts: ServerOptions, tokens: TokenTable) {
    const checkpoint = opts.checkpoint ?? (opts.checkpointDir !== undefined ? new FileCheckpointStore(opts.checkpointDir, 'server-checkpoint.msgpack', opts.log ? { log: opts.log } : {}) : undefined);
    this.coordinator = new Coordinator({ ...opts, tokens, ...(checkpoint ? { checkpoint } : {}) });
    this.admission = new Admission(tokens, { ...opts, onDuplicateId: opts.onDuplicateId ?? 'refuse' });
    this.host = opts.host ?? '127.0.0.1';
    this.path = opts.path ?? '/ws';
    this.secure = opts.tls !== undefined;
  }

  /** Create, resume from the checkpoint if any, listen, and start training. */
  static async start(opts: ServerOptions): Promise<GeneratorServer> {
    const tokens = await serverTokenTable(opts.tokens);
    if (opts.tls) checkTlsFiles(opts.tls);
    const s = new GeneratorServer(opts, tokens);
    await s.coordinator.start();
    try {
      await s.listen();
    } catch (e) {
      await s.coordinator.stop({ reason: 'listen failed', graceMs: 0, checkpoint: false }); // never overwrite a checkpoint here
      throw e;
    }
    return s;
  }

  /** The bound port (the real one when 0 was asked). */
  get port(): number {
    return this.portValue;
  }
  /** ws(s)://host:port/path for nodes. */
  get url(): string {
    return `${this.secure ? 'wss' : 'ws'}://${urlHost(this.host)}:${this.portValue}${this.path}`;
  }
  /** http(s)://host:port for /health and /metrics. */
  get httpUrl(): string {
    return `${this.secure ? 'https' : 'http'}://${urlHost(this.host)}:${this.portValue}`;
  }
  get round(): number {
    return this.coordinator.round;
  }
  metrics(): TransportMetrics {
    const m = this.coordinator.metrics();
    const privacy = Object.fromEntries(m.nodes.map((n) => [n.id, privacyFromStatus(n.stats.reported)]));
    return { ...m, connections: { open: this.admission.connections, refused: { ...this.admission.refused } }, privacy };
  }

  /** Stop listening, finish the current round, checkpoint, say goodbye, close. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
      this.relay?.stopAccepting(); // open connections end when the coordinator closes them
      await this.coordinator.stop({ reason: 'server shutdown', graceMs: this.opts.shutdownGraceMs ?? 2000 });
      this.relay?.close();
    })();
    return this.stopping;
  }

  private buildApp(): uWS.TemplatedApp {
    const o = this.opts;
    let app: uWS.TemplatedApp;
    try {
      app = o.tls && !o.tls.clientCaFile
        ? uWS.SSLApp({ cert_file_name: o.tls.certFile, key_file_name: o.tls.keyFile, ...(o.tls.passphrase ? { passphrase: o.tls.passphrase } : {}) })
        : uWS.App();
    } catch (e) {
      // uWS says only "App construction failed"; the files were readable (checkTlsFiles), so their content is wrong.
      throw new StartupError(o.tls
        ? `TLS: cannot use certificate ${o.tls.certFile} with key ${o.tls.keyFile} (not PEM, wrong passphrase, or the key does not belong to the certificate)`
        : `cannot create the HTTP server (${oneLine(e)})`);
    }
    const admission = this.admission;
    const maxFrame = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const coord = this.coordinator;
    const log = o.log ?? silentLogger;
    app.ws<EndpointUserData>(this.path, {
      compression: uWS.DISABLED, // tensors do not compress; deflate would only cost CPU and memory
      maxPayloadLength: Math.min(o.hardMaxFrameBytes ?? 2 * maxFrame, 2 ** 31 - 1),
      maxBackpressure: Math.min(o.maxBackpressureBytes ?? 4 * maxFrame, 2 ** 31 - 1),
      idleTimeout: o.idleTimeoutSec ?? 120,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        // Synchronous on purpose: `req` is only valid until this returns.
        let remote = Buffer.from(res.getRemoteAddressAsText()).toString();
        let certName: string | undefined;
        if (this.opts.tls?.clientCaFile) {
          // Mutual TLS: only connections the TLS relay vouches for (the loopback port is no way round it).
          const peer = this.relay?.peer(req.getHeader(RELAY_SECRET_HEADER), req.getHeader(PEER_ADDRESS_HEADER), req.getHeader(PEER_CERT_HEADER));
          if (!peer) {
            refuse(res, 403, 'auth_failed', 'connect over TLS with a client certificate');
            return;
          }
          remote = peer.address;
          certName = peer.certName;
        }
        admitUpgrade(res, req, context, admission, log, remote, certName);
      },
      ...connectionHandlers(admission, coord),
    });
    app.get('/health', (res) => {
      const m = coord.metrics();
      sendJson(res, { ok: true, sessionId: m.sessionId, round: m.round, nodesConnected: m.nodesConnected });
    });
    app.get('/metrics', (res, req) => {
      // Prometheus scrapes ask for text/plain (or ?format=prometheus); everything else gets JSON.
      if (wantsPrometheus(req.getHeader('accept'), req.getQuery())) {
        res.writeStatus('200 OK').writeHeader('Content-Type', PROMETHEUS_CONTENT_TYPE).writeHeader('Cache-Control', 'no-store').end(prometheusText(this.metrics()));
      } else sendJson(res, this.metrics());
    });
    notFoundRoute(app);
    safeLog(log, 'debug', 'uWS app built', { path: this.path, secure: this.secure });
    return app;
  }

  private async listen(): Promise<void> {
    const wanted = this.opts.port ?? 0;
    const deadline = Date.now() + (this.opts.listenRetryMs ?? 0);
    const tls = this.opts.tls;
    if (tls?.clientCaFile) {
      // Mutual TLS: the uWS app in plain text on a loopback port, the TLS relay on the public one.
      const app = this.buildApp();
      const ls = await new Promise<uWS.us_listen_socket | false>((resolve) => app.listen('127.0.0.1', 0, resolve));
      if (!ls) throw new StartupError('cannot listen on a loopback port for the TLS relay');
      this.listenSocket = ls;
      const backendPort = uWS.us_socket_local_port(ls as unknown as uWS.us_socket);
      for (;;) {
        try {
          this.relay = await TlsRelay.listen({
            certFile: tls.certFile, keyFile: tls.keyFile, clientCaFile: tls.clientCaFile, host: this.host, port: wanted, backendPort,
            ...(tls.passphrase ? { passphrase: tls.passphrase } : {}), ...(this.opts.log ? { log: this.opts.log } : {}),
          });
          break;
        } catch (e) {
          const final = e instanceof StartupError || Date.now() >= deadline;
          if (final) {
            uWS.us_listen_socket_close(ls); // the loopback app must not keep the process alive
            this.listenSocket = undefined;
          }
          if (e instanceof StartupError) throw e;
          if (final) {
            throw new StartupError(`cannot listen on ${this.host}:${wanted}: ${(e as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'the port is in use (another server running?)' : await whyCannotListen(this.host, wanted)}`);
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      this.portValue = this.relay.port;
      safeLog(this.opts.log ?? silentLogger, 'info', 'listening', { url: this.url, mutualTls: true });
      return;
    }
    const ls = await listenRetrying(() => this.buildApp(), this.host, wanted, this.opts.listenRetryMs ?? 0);
    this.listenSocket = ls;
    this.portValue = uWS.us_socket_local_port(ls as unknown as uWS.us_socket);
    safeLog(this.opts.log ?? silentLogger, 'info', 'listening', { url: this.url });
  }
}

/** Start a generator server (see GeneratorServer.start). */
export function startServer(opts: ServerOptions): Promise<GeneratorServer> {
  return GeneratorServer.start(opts);
}

/** A refusal of the upgrade: status, code header, JSON body. */
function refuse(res: uWS.HttpResponse, status: number, code: string, message: string): void {
  res.writeStatus(status === 403 ? '403 Forbidden' : statusLine(status)).writeHeader(REFUSAL_HEADER, code).writeHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ error: code, message }), true);
}

/** TLS files must exist and be readable: uWS would only say "App construction failed". */
function checkTlsFiles(tls: NonNullable<ServerOptions['tls']>): void {
  const files: [string, string][] = [['certificate', tls.certFile], ['private key', tls.keyFile]];
  if (tls.clientCaFile !== undefined) files.push(['client CA', tls.clientCaFile]);
  for (const [what, file] of files) {
    if (!file) throw new StartupError(`TLS: no ${what} file given`);
    try {
      accessSync(file, fsConstants.R_OK);
    } catch (e) {
      throw new StartupError(`TLS ${what} ${file}: cannot read it (${oneLine(e)})`);
    }
  }
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
