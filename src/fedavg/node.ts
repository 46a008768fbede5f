/**
 * A FedAvg-GAN site: dials the server over the AsynDGAN transport (ServerLink: upgrade
 * credentials, backoff), says hello, and for every fedModel loads the global G and D, trains E
 * local steps on its own data (LocalGan) and answers with a fedUpdate. Reconnects after a drop;
 * the server then sends it the current global model at the next round. Its local state (Adam
 * moments, sampling RNG) is checkpointed atomically every K updates and on stop.
 */
import type WebSocket from 'ws';
import type { BackoffOptions } from '../net/backoff.js';
import { FileCheckpointStore, nodeFileName, type CheckpointStore } from '../net/checkpoint.js';
import { decodeFrame, encodeFrame } from '../net/codec.js';
import type { FrameRecorder } from '../net/coordinator.js';
import { StartupError, oneLine } from '../net/errors.js';
import { safeLog, silentLogger, type Logger } from '../net/log.js';
import { DEFAULT_LIMITS, GOODBYE_TRAINING_DONE, PROTOCOL_VERSION, ProtocolError, errorMessageFor, type Message } from '../net/protocol.js';
import { ServerLink, type LinkClosed, type NodeTransport } from '../net/server-link.js';
import { validateMessage } from '../net/validate.js';
import type { LocalGan } from './local-gan.js';
import { checkFedWelcome, decodeModels, wireModel, type FedSessionConfig, type FedUpdateMsg, type FedWelcomeMsg } from './protocol.js';

export interface FedAvgNodeOptions {
  url: string | (() => string);
  nodeId: string;
  token: string;
  gan: LocalGan;
  /** n_k announced to the server. Default gan.sampleCount. */
  sampleCount?: number;
  maxFrameBytes?: number;
  reconnect?: BackoffOptions;
  /** Give up after this long without reaching the server (ms). Default: never. */
  giveUpAfterMs?: number;
  checkpoint?: CheckpointStore;
  /** Shorthand for FileCheckpointStore(checkpointDir, nodeFileName(nodeId, 'fedavg')). */
  checkpointDir?: string;
  /** Updates between local checkpoints (0: only on stop). Default 10. */
  checkpointEvery?: number;
  onFailed?: (reason: string) => void;
  onTrainingDone?: (reason: string) => void;
  onFrame?: FrameRecorder;
  wsOptions?: WebSocket.ClientOptions;
  log?: Logger;
}

export interface FedAvgNodeStats {
  connects: number;
  updatesSent: number;
  localSteps: number;
  bytesIn: number;
  bytesOut: number;
  lastRound: number | undefined;
  lastError: string | undefined;
}

const GIVE_UP_CODES = new Set(['auth_failed', 'unsupported_version', 'shape_mismatch']);

export class FedAvgNode {
  readonly nodeId: string;
  readonly stats: FedAvgNodeStats = { connects: 0, updatesSent: 0, localSteps: 0, bytesIn: 0, bytesOut: 0, lastRound: undefined, lastError: undefined };
  private readonly link: ServerLink;
  private readonly log: Logger;
  private readonly store: CheckpointStore | undefined;
  private transport: NodeTransport | undefined;
  private welcome: FedWelcomeMsg | undefined;
  private pending: { round: number; models: { G: Float32Array[]; D: Float32Array[] } } | undefined;
  private working: Promise<void> | undefined;
  private stopped = false;
  private unreachableSince: number | undefined;
  private readyWaiters: (() => void)[] = [];

  constructor(private readonly opts: FedAvgNodeOptions) {
    this.nodeId = opts.nodeId;
    this.log = opts.log ?? silentLogger;
    this.store = opts.checkpoint ?? (opts.checkpointDir !== undefined ? new FileCheckpointStore(opts.checkpointDir, nodeFileName(opts.nodeId, 'fedavg'), opts.log ? { log: opts.log } : {}) : undefined);
    this.link = new ServerLink({
      url: opts.url, nodeId: opts.nodeId, token: opts.token, maxPayload: 2 * (opts.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes),
      ...(opts.reconnect ? { reconnect: opts.reconnect } : {}), ...(opts.wsOptions ? { wsOptions: opts.wsOptions } : {}),
    }, {
      open: (t) => this.onOpen(t),
      frame: (bytes, isBinary) => this.onFrame(bytes, isBinary),
      error: (cause) => {
        this.stats.lastError = cause;
        safeLog(this.log, 'warn', 'socket error', { nodeId: this.nodeId, error: cause });
      },
      closed: (info) => this.onClosed(info),
      invalid: (why) => this.fail(why),
    });
  }

  /** Session config of the current connection. */
  get session(): FedSessionConfig | undefined {
    return this.welcome?.config;
  }

  /** Restore the local state (if any) and start connecting. */
  async start(): Promise<void> {
    const bytes = await this.store?.load();
    if (bytes) {
      try {
        await this.opts.gan.loadState(bytes);
        safeLog(this.log, 'info', 'local state restored', { nodeId: this.nodeId, location: this.store?.location });
      } catch (e) {
        throw new StartupError(`checkpoint ${this.store?.location ?? '(store)'}: cannot restore from it: ${oneLine(e)}`);
      }
    }
    this.link.dial();
  }

  /** Resolves once welcomed. */
  waitUntilWelcomed(timeoutMs: number): Promise<void> {
    if (this.welcome) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${this.nodeId} not welcomed within ${timeoutMs} ms`)), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Say goodbye, finish the local steps in progress, checkpoint, close; no reconnect. */
  async stop(reason = 'node shutdown'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.link.cancelRedial();
    this.pending = undefined;
    if (this.transport) this.send({ type: 'goodbye', reason });
    await this.working;
    await this.saveState();
    this.link.drop();
  }

  /** Simulate a crash: drop the connection, no goodbye, no checkpoint, no reconnect. */
  kill(): void {
    this.stopped = true;
    this.pending = undefined;
    this.link.cancelRedial();
    this.link.drop();
  }

  // ---- connection ----------------------------------------------------------------------

  private onOpen(t: NodeTransport): void {
    this.stats.connects++;
    this.unreachableSince = undefined;
    this.transport = t;
    this.welcome = undefined;
    this.send({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: this.nodeId, token: this.opts.token, capabilities: { dtypes: ['f32'] } });
  }

  private onClosed(info: LinkClosed): void {
    this.transport = undefined;
    this.welcome = undefined;
    if (info.cause) this.stats.lastError = info.cause;
    if (this.stopped) return;
    if (info.refusal && (info.refusal.status === 401 || info.refusal.status === 403)) {
      this.fail(`auth_failed: the server refused this node's credentials (${info.cause}); check the node id and token`);
      return;
    }
    if (!info.opened) {
      this.unreachableSince ??= Date.now();
      const giveUp = this.opts.giveUpAfterMs;
      if (giveUp !== undefined && Date.now() - this.unreachableSince >= giveUp) {
        this.fail(`cannot reach the server for ${Math.round((Date.now() - this.unreachableSince) / 1000)} s (last cause: ${info.cause ?? `closed (${info.code})`}); giving up`);
        return;
      }
    }
    const delay = this.link.redial(info.refusal?.retryAfterMs ?? 0);
    safeLog(this.log, info.opened ? 'info' : 'warn', info.opened ? 'disconnected' : 'cannot connect to the server', { nodeId: this.nodeId, cause: info.cause ?? `closed (${info.code})`, retryInMs: delay });
  }

  private fail(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stats.lastError = why;
    this.link.cancelRedial();
    safeLog(this.log, 'error', 'giving up', { nodeId: this.nodeId, reason: why });
    try {
      this.opts.onFailed?.(why);
    } catch {
      /* hook */
    }
  }

  private send(msg: Message | FedUpdateMsg): boolean {
    const t = this.transport;
    if (!t) return false;
    const bytes = encodeFrame(msg as unknown as Record<string, unknown>);
    this.stats.bytesOut += bytes.byteLength;
    this.record('out', bytes);
    return t.send(bytes);
  }

  private record(direction: 'in' | 'out', bytes: Uint8Array): void {
    try {
      this.opts.onFrame?.({ direction, nodeId: this.nodeId, bytes });
    } catch {
      /* hook */
    }
  }

  // ---- frames --------------------------------------------------------------------------

  private onFrame(bytes: Uint8Array, isBinary: boolean): void {
    this.stats.bytesIn += bytes.byteLength;
    this.record('in', bytes);
    let type: string | undefined;
    try {
      if (!isBinary) throw new ProtocolError('bad_frame', 'text frames are not part of the protocol');
      const raw = decodeFrame(bytes, this.opts.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes);
      type = typeof raw.type === 'string' ? raw.type.slice(0, 64) : undefined;
      if (type === 'fedWelcome') {
        if (this.welcome) throw new ProtocolError('unexpected', 'second welcome on one connection', { offendingType: type });
        this.welcome = checkFedWelcome(raw);
        safeLog(this.log, 'info', 'welcomed', { nodeId: this.nodeId, round: this.welcome.round, localSteps: this.welcome.config.localSteps });
        for (const w of this.readyWaiters.splice(0)) w();
        return;
      }
      if (type === 'fedModel') {
        if (!this.welcome) throw new ProtocolError('unexpected', 'fedModel before fedWelcome', { offendingType: type });
        const round = raw.round;
        if (typeof round !== 'number' || !Number.isSafeInteger(round) || round < 1) throw new ProtocolError('invalid_field', 'fedModel: round: expected a positive integer', { field: 'round', offendingType: type });
        // A global model of another architecture is refused before anything is loaded.
        this.pending = { round, models: decodeModels('fedModel', raw.models, this.opts.gan.layouts) };
        this.pump();
        return;
      }
      const msg = validateMessage(raw, 'toNode', DEFAULT_LIMITS);
      if (msg.type === 'goodbye') {
        safeLog(this.log, 'info', 'server said goodbye', { nodeId: this.nodeId, reason: msg.reason, code: msg.code });
        if (msg.code === GOODBYE_TRAINING_DONE) {
          void this.stop('training done').then(() => this.opts.onTrainingDone?.(msg.reason));
        } else {
          // Close our side first, so the server's port is not left in TIME_WAIT and a restarted
          // server can bind it at once; then redial (onClosed).
          const t = this.transport;
          if (t?.terminate) t.terminate();
          else t?.close(1000, 'goodbye');
        }
        return;
      }
      if (msg.type === 'error') {
        safeLog(this.log, 'warn', 'server reported an error', { nodeId: this.nodeId, code: msg.code, message: msg.message });
        this.stats.lastError = `${msg.code}: ${msg.message}`;
        if (msg.fatal && GIVE_UP_CODES.has(msg.code)) this.fail(`${msg.code}: ${msg.message}`);
        return;
      }
      if (msg.type === 'status') return;
      throw new ProtocolError('unexpected', `${msg.type} is an AsynDGAN message; this node runs fedavg-gan`, { offendingType: msg.type });
    } catch (e) {
      const pe = e instanceof ProtocolError ? e : undefined;
      const fatal = pe?.code === 'shape_mismatch';
      safeLog(this.log, 'warn', 'frame from the server rejected', { nodeId: this.nodeId, code: pe?.code ?? 'internal', message: oneLine(e) });
      this.send(errorMessageFor(e, { fatal, ...(type ? { offendingType: type } : {}) }));
      // Another architecture at the server: no reconnect can fix it.
      if (fatal) this.fail(`the server's model does not fit this node's (${oneLine(e)}); start the node with the server's --ngf/--ndf/--blocks/--d-layers`);
    }
  }

  /** Train on the latest global model, one job at a time. */
  private pump(): void {
    if (this.working || !this.pending) return;
    const job = this.pending;
    this.pending = undefined;
    this.working = this.fit(job).catch((e) => {
      safeLog(this.log, 'error', 'local training failed', { nodeId: this.nodeId, round: job.round, error: oneLine(e) });
    }).finally(() => {
      this.working = undefined;
      this.pump();
    });
  }

  private async fit(job: { round: number; models: { G: Float32Array[]; D: Float32Array[] } }): Promise<void> {
    const s = this.welcome?.config;
    if (!s) return;
    const gan = this.opts.gan;
    gan.load(job.models);
    const E = s.localSteps;
    const losses = await gan.train(E, (job.round - 1) * E, s);
    this.stats.localSteps += E;
    const models = await gan.read();
    if (this.stopped && !this.transport) return;
    const ok = this.send({
      type: 'fedUpdate', round: job.round, sampleCount: this.opts.sampleCount ?? gan.sampleCount, steps: E,
      models: { G: wireModel(models.G, gan.layouts.G), D: wireModel(models.D, gan.layouts.D) }, losses,
    });
    if (ok) {
      this.stats.updatesSent++;
      this.stats.lastRound = job.round;
    }
    const every = this.opts.checkpointEvery ?? 10;
    if (every > 0 && this.stats.updatesSent % every === 0) await this.saveState();
  }

  private async saveState(): Promise<void> {
    if (!this.store) return;
    try {
      await this.store.save(await this.opts.gan.saveState());
    } catch (e) {
      safeLog(this.log, 'error', 'local checkpoint failed', { nodeId: this.nodeId, error: oneLine(e) });
    }
  }
}
