/**
 * A hospital's discriminator node, the protocol side: authenticates, uploads its masks, and
 * answers each roundRequest with d(loss)/d(fakes) computed by its DiscriminatorBackend, through
 * the node's privacy defences; decides when to reconnect or give up; checkpoints the
 * discriminator locally. The WebSocket itself (dialing, upgrade refusals, backoff) is
 * server-link.ts. Real images stay inside the backend: the
 * only tensors this file ever sends are masks and gradients.
 */
import type WebSocket from 'ws';
import { applyAugmentation } from './augment.js';
import type { DiscriminatorBackend, Shape4 } from './backend.js';
import type { BackoffOptions } from './backoff.js';
import { ServerLink, type LinkClosed, type NodeTransport } from './server-link.js';
import { FileCheckpointStore, legacyNodeCheckpointNames, legacyNodeFileNames, nodeCheckpointName, nodeFileName, type CheckpointStore } from './checkpoint.js';
import { StartupError, oneLine } from './errors.js';
import { decodeFrame, encodeFrame, encodeTensor, firstNonFinite } from './codec.js';
import type { FrameOutcome, FrameRecorder } from './coordinator.js';
import { safeLog, silentLogger, type Logger } from './log.js';
import {
  DEFAULT_LIMITS, GOODBYE_TRAINING_DONE, PROTOCOL_VERSION, ProtocolError, errorMessageFor,
  type AugParams, type Dtype, type Message, type RoundRequestMsg, type ServerToNode, type SessionConfig, type ValidationLimits, type WelcomeMsg,
} from './protocol.js';
import { checkRoundRequest, validateMessage } from './validate.js';
import { modalityChannelsOnWire } from './modalities.js';
import { NodePrivacy, type PrivacyOverrides, type PrivacyPreset, type PrivacySettings, type PrivacySummary } from '../privacy/index.js';

export interface NodeOptions {
  /** Server WebSocket URL, e.g. ws://10.0.0.5:8080/ws; a function is re-read on every reconnect. */
  url: string | (() => string);
  nodeId: string;
  token: string;
  backend: DiscriminatorBackend;
  /** This node's masks: data [n, C, H, W], one key per mask. */
  masks: { keys: readonly string[]; data: Float32Array; shape: Shape4 };
  /** n_j announced to the server. Default: number of masks. */
  sampleCount?: number;
  /** Dtypes this node accepts and may send. Default ['f32', 'f16', 'f16s']. */
  dtypes?: Dtype[];
  /**
   * Names of the modalities this node holds (sent in hello). Checked against the server's
   * `config.modalities`: an unknown name makes the node refuse the session and stop.
   */
  modalities?: string[];
  /**
   * The generator channel of each of `modalities` that the backend assumes (e.g. taken from the
   * local data set's modality order). Checked against the server's list; a different order stops
   * the node (its discriminator would judge the wrong channels). Default: not checked.
   */
  modalityChannels?: readonly number[];
  /** Called once when the node gives up (a refusal that reconnecting cannot fix). */
  onFailed?: (reason: string) => void;
  /** The server said the run is over (goodbye code 'training_done'): the node has stopped, no reconnect. */
  onTrainingDone?: (reason: string) => void;
  /** Dtype of gradient replies. Default 'f16s' when the server sends f16s (scaled: small gradients survive), else 'f32' (plain f16 underflows them). */
  replyDtype?: Dtype;
  /** Frames from the server above this are refused. Default DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
  limits?: Partial<Omit<ValidationLimits, 'maxFrameBytes'>>;
  /** Reconnect backoff; set `enabled: false` to give up after the first disconnect. */
  reconnect?: BackoffOptions & { enabled?: boolean };
  /**
   * Give up (fail, onFailed) when no connection has reached the server for this long (ms): a wrong
   * URL, a refused connection, an untrusted certificate. Default: never.
   */
  giveUpAfterMs?: number;
  /** Rejected server frames tolerated per connection before reconnecting. Default 50. */
  maxErrorsPerConnection?: number;
  /** No welcome within this time after connecting: reconnect (ms). Default 10000. */
  welcomeTimeoutMs?: number;
  /** Local checkpoint of the discriminator (loaded on start, saved every K steps and on stop). */
  checkpoint?: CheckpointStore;
  /** Shorthand for `checkpoint: new FileCheckpointStore(checkpointDir, nodeCheckpointName(nodeId))` (a name that fits any id). */
  checkpointDir?: string;
  /** Default 10 steps; 0: only on stop. */
  checkpointEvery?: number;
  onFrame?: FrameRecorder;
  log?: Logger;
  /** Extra `ws` client options (TLS: ca, rejectUnauthorized, ...). */
  wsOptions?: WebSocket.ClientOptions;
  /**
   * What a reply may reveal (src/privacy, docs/PRIVACY.md): a preset name, full settings, or a
   * NodePrivacy (tests inject one with seeded noise). Default: the 'guarded' preset.
   */
  privacy?: PrivacyPreset | PrivacySettings | NodePrivacy;
  /** Overrides of single settings of a preset given by name. */
  privacyOverrides?: PrivacyOverrides;
  /**
   * Where the privacy ledger (accountant + query guard) is written before every reply leaves,
   * so a crash or restart never resets the budget. Default with `checkpointDir`:
   * `<dir>/` + nodeFileName(id, 'privacy'). The node checkpoint carries a copy too.
   */
  privacyLedger?: CheckpointStore;
  /** An info log line with epsilon every this many replies. Default 25; 0: never. */
  privacyLogEvery?: number;
  /** After each gradient reply has left: the round, this node's own (exact, local) losses and its privacy so far. */
  onReply?: (r: ReplyInfo) => void;
}

/** What onReply reports. The losses are the discriminator's own, whatever the reply carried. */
export interface ReplyInfo {
  round: number;
  /** Masks in the round's batch. */
  batch: number;
  losses: { dReal: number; dFake: number; gGan: number; gL1: number };
  repliesSent: number;
  privacy: PrivacySummary;
}

export type NodeState = 'idle' | 'connecting' | 'authenticating' | 'ready' | 'stopped' | 'failed';

export type { NodeTransport } from './server-link.js';

/** One connection's protocol state. Opaque outside this file. */
export class NodeSession {
  welcome: WelcomeMsg | undefined;
  errors = 0;
  closed = false;
  constructor(readonly transport: NodeTransport) {}
}

export interface NodeStats {
  connects: number;
  steps: number;
  repliesSent: number;
  requestsDropped: number;
  /** Requests declined by the privacy settings (query guard, range, budget). */
  requestsRefused: number;
  errorsSent: number;
  errorsReceived: number;
  lastRound: number | undefined;
  lastError: string | undefined;
}

interface Job {
  round: number;
  keys: string[];
  fakes: Float32Array;
  shape: Shape4;
  aug: AugParams[] | undefined;
}

const CHECKPOINT_FORMAT = 'asyndgan-node-checkpoint';
/** Codes after which reconnecting cannot help. */
const GIVE_UP_CODES = new Set(['auth_failed', 'unsupported_version']);
/**
 * Fatal codes after which the node retries, slowly: another connection holds (identity_in_use) or
 * took (replaced) this id. Giving up would let a leaked token lock the real node out for good.
 */
const RETRY_SLOWLY_CODES = new Set(['identity_in_use', 'replaced']);

export class DiscriminatorNode {
  readonly nodeId: string;
  readonly stats: NodeStats = {
    connects: 0, steps: 0, repliesSent: 0, requestsDropped: 0, requestsRefused: 0, errorsSent: 0, errorsReceived: 0, lastRound: undefined, lastError: undefined,
  };
  private readonly opts: NodeOptions;
  private readonly log: Logger;
  private readonly limits: ValidationLimits;
  private readonly maskShape: readonly [number, number, number];
  private readonly masks = new Map<string, Float32Array>();
  private sampleCount: number;
  private stateValue: NodeState = 'idle';
  private session: NodeSession | undefined;
  /** The WebSocket connection to the server (dialing, redialing); this class keeps the protocol. */
  private readonly link: ServerLink;
  /** The session on the link's current connection. */
  private linkSession: NodeSession | undefined;
  /** Set by a fatal identity_in_use / replaced: the next reconnect waits the backoff's cap. */
  private slowRetryMs = 0;
  /** When the current run of failed connection attempts began (undefined: the last one got through). */
  private unreachableSince: number | undefined;
  private checkpointFailures = 0;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private pendingJob: Job | undefined;
  private working: Promise<void> | undefined;
  private stopped = false;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Clip, noise, accountant, query guard and limits applied to every reply. */
  readonly privacy: NodePrivacy;
  private readonly privacyLedger: CheckpointStore | undefined;

  constructor(opts: NodeOptions) {
    this.opts = opts.checkpoint || opts.checkpointDir === undefined
      ? opts
      : {
        ...opts,
        checkpoint: new FileCheckpointStore(opts.checkpointDir, nodeCheckpointName(opts.nodeId), {
          legacyNames: legacyNodeCheckpointNames(opts.nodeId), ...(opts.log ? { log: opts.log } : {}),
        }),
      };
    this.nodeId = opts.nodeId;
    this.log = opts.log ?? silentLogger;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits, maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes };
    const [, c, h, w] = opts.masks.shape;
    this.maskShape = [c, h, w];
    this.addMaskData(opts.masks.keys, opts.masks.data, opts.masks.shape);
    this.sampleCount = opts.sampleCount ?? this.masks.size;
    const p = opts.privacy;
    this.privacy = p instanceof NodePrivacy ? p : new NodePrivacy(p, opts.privacyOverrides);
    this.privacyLedger = opts.privacyLedger ??
      (opts.checkpointDir !== undefined
        ? new FileCheckpointStore(opts.checkpointDir, nodeFileName(opts.nodeId, 'privacy'), { legacyNames: legacyNodeFileNames(opts.nodeId, 'privacy'), ...(opts.log ? { log: opts.log } : {}) })
        : undefined);
    this.link = new ServerLink({
      url: opts.url, nodeId: opts.nodeId, token: opts.token,
      maxPayload: 2 * this.limits.maxFrameBytes, // beyond this ws closes (1009); between, we answer politely
      ...(opts.reconnect ? { reconnect: opts.reconnect } : {}),
      ...(opts.wsOptions ? { wsOptions: opts.wsOptions } : {}),
    }, {
      open: (t) => this.onLinkOpen(t),
      frame: (bytes, isBinary) => {
        if (this.linkSession) this.handleFrame(this.linkSession, bytes, isBinary);
      },
      error: (cause) => {
        this.stats.lastError = cause;
        safeLog(this.log, 'warn', 'socket error', { nodeId: this.nodeId, error: cause });
      },
      closed: (info) => this.onLinkClosed(info),
      invalid: (why) => {
        this.stats.lastError = why;
        safeLog(this.log, 'error', 'invalid server url', { nodeId: this.nodeId, error: why });
        this.fail(why);
      },
    });
  }

  get state(): NodeState {
    return this.stateValue;
  }
  /** Session config from the last welcome. */
  get sessionConfig(): SessionConfig | undefined {
    return this.session?.welcome?.config;
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Restore the discriminator from the checkpoint (if any) and start connecting. */
  async start(): Promise<void> {
    if (this.stateValue !== 'idle') throw new Error(`node ${this.nodeId} already started`);
    const bytes = await this.opts.checkpoint?.load();
    if (bytes) {
      try {
        await this.restore(bytes);
      } catch (e) {
        if (e instanceof StartupError) throw e;
        throw new StartupError(`checkpoint ${this.opts.checkpoint?.location ?? '(store)'}: cannot restore the discriminator from it: ${oneLine(e)}`);
      }
    }
    // The ledger is written before every reply, so it is never older than the checkpoint's copy.
    const ledger = await this.privacyLedger?.load();
    if (ledger) this.privacy.restore(decodeFrame(ledger, Number.MAX_SAFE_INTEGER));
    if (this.privacy.repliesReleased > 0) safeLog(this.log, 'info', 'privacy ledger restored', { nodeId: this.nodeId, ...this.privacyLogData() });
    this.connect();
  }

  /** Resolves when welcomed and masks are sent; rejects on a fatal refusal or timeout. */
  waitUntilReady(timeoutMs: number): Promise<void> {
    if (this.stateValue === 'ready') return Promise.resolve();
    if (this.stateValue === 'failed') return Promise.reject(new Error(`node ${this.nodeId} failed: ${this.stats.lastError}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== entry);
        reject(new Error(`node ${this.nodeId} not ready within ${timeoutMs} ms (state ${this.stateValue})`));
      }, timeoutMs);
      const entry = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (e: Error) => { clearTimeout(timer); reject(e); },
      };
      this.readyWaiters.push(entry);
    });
  }

  /** Say goodbye, finish the step in progress, checkpoint, close. No reconnect afterwards. */
  async stop(reason = 'node shutdown'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.link.cancelRedial();
    this.pendingJob = undefined;
    const s = this.session;
    if (s && !s.closed) this.send(s, { type: 'goodbye', reason });
    await this.working;
    await this.saveCheckpoint();
    this.link.drop();
    this.setState('stopped');
  }

  /** Simulate a crash: drop the connection without goodbye or checkpoint, never reconnect. */
  kill(): void {
    this.stopped = true;
    this.link.cancelRedial();
    this.pendingJob = undefined;
    this.link.drop();
    this.setState('stopped');
  }

  /** Add masks (data [n, C, H, W]); uploaded now if connected, else after the next welcome. */
  addMasks(keys: readonly string[], data: Float32Array, shape: Shape4, sampleCount?: number): void {
    this.addMaskData(keys, data, shape);
    this.sampleCount = sampleCount ?? Math.max(this.sampleCount, this.masks.size);
    const s = this.session;
    if (s?.welcome && !s.closed) this.uploadMasks(s, keys);
  }

  /** Send informational metrics to the server. */
  sendStatus(metrics: Record<string, number>): boolean {
    const s = this.session;
    if (!s?.welcome || s.closed) return false;
    return this.send(s, { type: 'status', round: this.stats.lastRound ?? 0, metrics });
  }

  // ---- transport ---------------------------------------------------------------------

  /** Start a protocol session over `transport` and send hello. Used by connect(); tests may call it directly. */
  openSession(transport: NodeTransport): NodeSession {
    const s = new NodeSession(transport);
    this.session = s;
    this.setState('authenticating');
    this.send(s, {
      type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: this.nodeId, token: this.opts.token,
      capabilities: { dtypes: this.opts.dtypes ?? ['f32', 'f16', 'f16s'], ...(this.opts.modalities ? { modalities: this.opts.modalities } : {}) },
    });
    return s;
  }

  /** Mark a session's transport as gone. */
  closeSession(s: NodeSession): void {
    s.closed = true;
    if (this.session === s) {
      this.session = undefined;
      if (!this.stopped && this.stateValue !== 'failed') this.setState('connecting');
    }
  }

  private connect(): void {
    if (this.stopped || this.stateValue === 'failed') return;
    this.setState('connecting');
    this.link.dial();
  }

  private onLinkOpen(transport: NodeTransport): void {
    this.stats.connects++;
    const session = this.openSession(transport);
    this.linkSession = session;
    const ms = this.opts.welcomeTimeoutMs ?? 10000;
    this.welcomeTimer = setTimeout(() => {
      if (!session.welcome && !session.closed) {
        safeLog(this.log, 'warn', 'no welcome; reconnecting', { nodeId: this.nodeId });
        this.link.drop();
      }
    }, ms);
  }

  private onLinkClosed(info: LinkClosed): void {
    clearTimeout(this.welcomeTimer);
    const session = this.linkSession;
    this.linkSession = undefined;
    if (session) this.closeSession(session);
    if (info.cause) this.stats.lastError = info.cause;
    const refusal = info.refusal;
    if (refusal && (refusal.status === 401 || refusal.status === 403)) {
      // Wrong id or token: every retry would be refused alike (and count toward a lockout).
      const why = `auth_failed: the server refused this node's credentials (${info.cause}); check the node id and token`;
      safeLog(this.log, 'error', 'authentication refused; giving up', { nodeId: this.nodeId, cause: info.cause });
      this.fail(why);
      return;
    }
    if (!info.opened) {
      this.unreachableSince ??= Date.now();
      const giveUp = this.opts.giveUpAfterMs;
      if (giveUp !== undefined && Date.now() - this.unreachableSince >= giveUp) {
        const why = `cannot reach the server at ${typeof this.opts.url === 'function' ? this.opts.url() : this.opts.url} for ${Math.round((Date.now() - this.unreachableSince) / 1000)} s (last cause: ${info.cause ?? `closed (${info.code})`}); giving up`;
        safeLog(this.log, 'error', 'server unreachable; giving up', { nodeId: this.nodeId, cause: info.cause });
        this.fail(why);
        return;
      }
    } else this.unreachableSince = undefined;
    const delay = this.scheduleReconnect(refusal?.retryAfterMs ?? 0);
    if (!info.opened) safeLog(this.log, 'warn', 'cannot connect to the server', { nodeId: this.nodeId, cause: info.cause ?? `closed (${info.code})`, retryInMs: delay });
    else safeLog(this.log, 'info', 'disconnected', { nodeId: this.nodeId, code: info.code, ...(info.cause ? { cause: info.cause } : {}), retryInMs: delay });
  }

  /** Reconnect after max(backoff, `minDelayMs`). Returns the delay, or undefined when not reconnecting. */
  private scheduleReconnect(minDelayMs = 0): number | undefined {
    if (this.stopped || this.stateValue === 'failed') return undefined;
    if (this.opts.reconnect?.enabled === false) {
      this.fail('disconnected and reconnect is disabled');
      return undefined;
    }
    const delay = this.link.redial(Math.max(minDelayMs, this.slowRetryMs));
    this.slowRetryMs = 0;
    this.setState('connecting');
    return delay;
  }

  // ---- frames ------------------------------------------------------------------------

  /** Handle one frame from the server on session `s`. Never throws. */
  handleFrame(s: NodeSession, bytes: Uint8Array, isBinary = true): FrameOutcome {
    if (s.closed) return 'closed';
    this.record('in', bytes);
    let type: string | undefined;
    try {
      if (!isBinary) throw new ProtocolError('bad_frame', 'text frames are not part of the protocol');
      const raw = decodeFrame(bytes, this.limits.maxFrameBytes);
      type = typeof raw.type === 'string' ? raw.type.slice(0, 64) : undefined;
      // A second welcome is refused as such, whatever it contains.
      if (s.welcome && type === 'welcome') throw new ProtocolError('unexpected', 'second welcome on one connection', { offendingType: 'welcome' });
      return this.dispatch(s, validateMessage(raw, 'toNode', this.limits));
    } catch (e) {
      return this.reject(s, e, type);
    }
  }

  private dispatch(s: NodeSession, msg: ServerToNode): FrameOutcome {
    switch (msg.type) {
      case 'welcome':
        return this.onWelcome(s, msg);
      case 'maskAck':
        if (!s.welcome) throw new ProtocolError('unexpected', 'maskAck before welcome', { offendingType: 'maskAck' });
        safeLog(this.log, 'debug', 'masks acknowledged', { nodeId: this.nodeId, accepted: msg.accepted, total: msg.total });
        return 'accepted';
      case 'roundRequest':
        return this.onRoundRequest(s, msg);
      case 'status':
        return 'accepted';
      case 'error':
        // A valid error frame is never answered with an error frame (no ping-pong).
        this.stats.errorsReceived++;
        this.stats.lastError = `${msg.code}: ${msg.message}`;
        safeLog(this.log, msg.fatal && !RETRY_SLOWLY_CODES.has(msg.code) ? 'error' : 'warn', 'server reported an error', { nodeId: this.nodeId, code: msg.code, field: msg.field, message: msg.message, round: msg.round });
        if (msg.fatal && RETRY_SLOWLY_CODES.has(msg.code)) {
          this.slowRetryMs = this.opts.reconnect?.maxDelayMs ?? 5000;
          safeLog(this.log, 'warn', msg.code === 'replaced' ? 'another connection took this node id; retrying with backoff' : 'this node id is connected elsewhere; retrying with backoff', { nodeId: this.nodeId, retryInMs: this.slowRetryMs });
        }
        // The server refusing our modality names will refuse them again on every reconnect.
        if (msg.fatal && (GIVE_UP_CODES.has(msg.code) || (!s.welcome && msg.field === 'capabilities.modalities'))) {
          this.fail(`${msg.code}: ${msg.message}`);
          s.transport.close(1000, msg.code);
          this.closeSession(s);
          return 'closed';
        }
        return 'accepted';
      case 'goodbye':
        safeLog(this.log, 'info', 'server said goodbye', { nodeId: this.nodeId, reason: msg.reason, ...(msg.code ? { code: msg.code } : {}) });
        if (msg.code === GOODBYE_TRAINING_DONE) {
          // The run is over: reconnecting would only be refused the same way. Checkpoint and stop.
          void this.stop('training done').then(() => this.opts.onTrainingDone?.(msg.reason));
          return 'closed';
        }
        // We close first (see ServerLink.drop); the reconnect loop takes it from here.
        if (s.transport.terminate) s.transport.terminate();
        else s.transport.close(1000, 'goodbye');
        this.closeSession(s);
        return 'closed';
    }
  }

  private onWelcome(s: NodeSession, msg: WelcomeMsg): FrameOutcome {
    if (s.welcome) throw new ProtocolError('unexpected', 'second welcome on one connection', { offendingType: 'welcome' });
    if (msg.nodeId !== this.nodeId) throw new ProtocolError('invalid_field', `welcome: nodeId: ${JSON.stringify(msg.nodeId)} is not this node`, { field: 'nodeId', offendingType: 'welcome' });
    const c = msg.config;
    const [mc, h, w] = this.maskShape;
    if (c.maskChannels !== mc || c.height !== h || c.width !== w) {
      // Our data cannot serve this session; retrying would not change that.
      const why = `server expects masks [${c.maskChannels}, ${c.height}, ${c.width}], this node has [${mc}, ${h}, ${w}]`;
      this.send(s, errorMessageFor(new ProtocolError('shape_mismatch', why, { field: 'config', offendingType: 'welcome' }), { fatal: true }));
      this.fail(why);
      s.transport.close(1000, 'shape mismatch');
      this.closeSession(s);
      return 'closed';
    }
    const modalityError = this.checkModalities(c);
    if (modalityError) {
      this.send(s, errorMessageFor(new ProtocolError('invalid_field', modalityError, { field: 'config.modalities', offendingType: 'welcome' }), { fatal: true }));
      this.fail(modalityError);
      s.transport.close(1000, 'modality mismatch');
      this.closeSession(s);
      return 'closed';
    }
    // The node bounds every server parameter that changes what a reply reveals.
    const breach = this.privacy.checkConfig(c);
    if (breach) {
      const why = `config refused: ${breach.message}`;
      this.send(s, errorMessageFor(new ProtocolError('config_refused', why, { field: `config.${breach.parameter}`, offendingType: 'welcome' }), { fatal: true }));
      safeLog(this.log, 'error', 'session config refused', { nodeId: this.nodeId, parameter: breach.parameter, asked: breach.asked, limit: breach.limit });
      this.fail(why);
      s.transport.close(1000, 'config refused');
      this.closeSession(s);
      return 'closed';
    }
    s.welcome = msg;
    clearTimeout(this.welcomeTimer);
    this.link.resetBackoff();
    safeLog(this.log, 'info', 'welcomed', { nodeId: this.nodeId, round: msg.round, serverKnows: msg.knownKeys.length });
    void Promise.resolve()
      // GAN-only replies: the backend differentiates no L1 term, whatever the server asks.
      .then(() => this.opts.backend.configure?.({ ...c, lambdaL1: this.privacy.effectiveLambdaL1(c.lambdaL1) }))
      .catch((e) => safeLog(this.log, 'error', 'backend.configure failed', { nodeId: this.nodeId, error: String(e) }));
    const known = new Set(msg.knownKeys);
    this.uploadMasks(s, [...this.masks.keys()].filter((k) => !known.has(k)));
    this.setState('ready');
    return 'accepted';
  }

  /** Why this node's modalities cannot serve the server's generator, or undefined when they can. */
  private checkModalities(c: SessionConfig): string | undefined {
    const names = this.opts.modalities;
    if (!names || !c.modalities) return undefined;
    let channels: number[];
    try {
      channels = modalityChannelsOnWire(c.modalities, names);
    } catch (e) {
      return (e as Error).message;
    }
    const expected = this.opts.modalityChannels;
    if (expected && expected.some((ch, i) => ch !== channels[i])) {
      return `modality order differs: this node reads [${names.map((n, i) => `${n}@${expected[i]}`).join(', ')}], ` +
        `the server's generator makes [${c.modalities.join(', ')}]`;
    }
    return undefined;
  }

  private onRoundRequest(s: NodeSession, msg: RoundRequestMsg): FrameOutcome {
    const cfg = s.welcome?.config;
    if (!cfg) throw new ProtocolError('unexpected', 'roundRequest before welcome', { offendingType: 'roundRequest' });
    const fakes = checkRoundRequest(msg, cfg, (k) => this.masks.has(k));
    if (this.pendingJob) {
      // Keep only the newest request: an older one queued behind a slow step would be stale anyway.
      this.stats.requestsDropped++;
      safeLog(this.log, 'info', 'dropping queued request for a newer one', { nodeId: this.nodeId, dropped: this.pendingJob.round, round: msg.round });
    }
    this.pendingJob = { round: msg.round, keys: msg.keys, fakes, shape: msg.fakes.shape as unknown as Shape4, aug: msg.aug };
    this.pump();
    return 'accepted';
  }

  private pump(): void {
    if (this.working || !this.pendingJob || this.stopped) return;
    const job = this.pendingJob;
    this.pendingJob = undefined;
    this.working = this.runJob(job).finally(() => {
      this.working = undefined;
      this.pump();
    });
  }

  private async runJob(job: Job): Promise<void> {
    // Refused before the discriminator sees the fakes: a crafted request teaches D nothing either.
    const refusal = this.privacy.admit(job.keys, job.fakes);
    if (refusal) {
      this.refuse(job, refusal);
      return;
    }
    const [c, h, w] = this.maskShape;
    const per = c * h * w;
    const raw = new Float32Array(job.keys.length * per);
    job.keys.forEach((k, i) => raw.set(this.masks.get(k)!, i * per));
    const masks = applyAugmentation(raw, [job.keys.length, c, h, w], job.aug);
    let reply: Message;
    let losses: ReplyInfo['losses'] | undefined;
    try {
      const out = await this.opts.backend.step({ round: job.round, keys: job.keys, masks, fakes: job.fakes, fakeShape: job.shape, aug: job.aug });
      if (out.gradFakes.length !== job.fakes.length) throw new ProtocolError('internal', `backend returned ${out.gradFakes.length} gradient values for ${job.fakes.length} fakes`);
      const bad = firstNonFinite(out.gradFakes);
      if (bad >= 0) throw new ProtocolError('non_finite', `backend produced a non-finite gradient (element ${bad} is ${out.gradFakes[bad]}); reply withheld`, { field: 'grad' });
      for (const k of ['dReal', 'dFake', 'gGan', 'gL1'] as const) {
        if (!Number.isFinite(out.losses[k])) throw new ProtocolError('non_finite', `backend produced a non-finite loss ${k}; reply withheld`, { field: `losses.${k}` });
      }
      this.stats.steps++;
      this.stats.lastRound = job.round;
      losses = { dReal: out.losses.dReal, dFake: out.losses.dFake, gGan: out.losses.gGan, gL1: out.losses.gL1 };
      // Clip each sample and add the noise here, the last point before the reply leaves the node.
      const grad = Float32Array.from(out.gradFakes);
      this.privacy.sanitize(grad, job.shape[1] * job.shape[2] * job.shape[3]);
      reply = {
        type: 'gradientReply', round: job.round, keys: job.keys,
        grad: encodeTensor(grad, job.shape, this.opts.replyDtype ?? (this.sessionConfig?.wireDtype === 'f16s' ? 'f16s' : 'f32')),
        // Exact functions of the real images that no noise covers: withheld (zeros) unless the settings send them.
        losses: this.privacy.settings.sendLosses
          ? { dReal: out.losses.dReal, dFake: out.losses.dFake, gGan: out.losses.gGan, gL1: out.losses.gL1 }
          : { dReal: 0, dFake: 0, gGan: 0, gL1: 0 },
      };
    } catch (e) {
      this.stats.lastError = String(e);
      safeLog(this.log, 'error', 'discriminator step failed', { nodeId: this.nodeId, round: job.round, error: String(e) });
      reply = errorMessageFor(e, { round: job.round, offendingType: 'roundRequest', fatal: false });
      if (reply.code !== 'non_finite') reply.code = 'internal';
    }
    // Reply on whatever connection is current: the server accepts a reconnected node's reply.
    if (reply.type === 'gradientReply') {
      if (!(this.session?.welcome && !this.session.closed)) return;
      // Write-ahead: the release is in the ledger before it leaves (a lost connection in between
      // over-counts one reply, never under-counts).
      this.privacy.recordRelease(job.keys);
      if (!(await this.saveLedger())) return;
    }
    const s = this.session;
    if (s?.welcome && !s.closed && this.send(s, reply) && reply.type === 'gradientReply') {
      this.stats.repliesSent++;
      this.reportPrivacy(s);
      if (losses) {
        try {
          this.opts.onReply?.({ round: job.round, batch: job.keys.length, losses, repliesSent: this.stats.repliesSent, privacy: this.privacy.summary() });
        } catch {
          /* a hook's error is not the protocol's */
        }
      }
    }
    const every = this.opts.checkpointEvery ?? 10;
    if (reply.type === 'gradientReply' && every > 0 && this.stats.steps % every === 0) await this.saveCheckpoint();
  }

  /** Decline `job`: a non-fatal query_refused, or the fatal privacy_budget_spent that stops the node. */
  private refuse(job: Job, r: { code: 'query_refused' | 'privacy_budget_spent'; message: string; fatal: boolean }): void {
    this.stats.requestsRefused++;
    const s = this.session;
    safeLog(this.log, r.fatal ? 'error' : 'warn', r.fatal ? 'privacy budget spent; stopping' : 'request refused', {
      nodeId: this.nodeId, round: job.round, code: r.code, reason: r.message, ...this.privacyLogData(),
    });
    if (s?.welcome && !s.closed) {
      if (r.fatal) this.send(s, { type: 'status', round: this.stats.lastRound ?? 0, metrics: this.privacy.statusMetrics() });
      this.send(s, errorMessageFor(new ProtocolError(r.code, r.message, { offendingType: 'roundRequest' }), { round: job.round, fatal: r.fatal }));
    }
    if (!r.fatal) return;
    this.pendingJob = undefined;
    this.fail(r.message);
    if (s && !s.closed) {
      s.transport.close(1000, r.code);
      this.closeSession(s);
    }
    this.link.drop();
  }

  /** Status metrics (epsilon, delta, ...) after each reply, and an info line every privacyLogEvery replies. */
  private reportPrivacy(s: NodeSession): void {
    if (this.privacy.settings.preset !== 'off') this.send(s, { type: 'status', round: this.stats.lastRound ?? 0, metrics: this.privacy.statusMetrics() });
    const every = this.opts.privacyLogEvery ?? 25;
    if (every > 0 && this.privacy.repliesReleased % every === 0) safeLog(this.log, 'info', 'privacy', { nodeId: this.nodeId, ...this.privacyLogData() });
  }

  private privacyLogData(): Record<string, unknown> {
    const m = this.privacy.summary();
    return { preset: m.preset, epsilon: Number.isFinite(m.epsilon) ? Number(m.epsilon.toFixed(4)) : 'unbounded', delta: m.delta, replies: m.repliesReleased, ...(Number.isFinite(m.epsilonBudget) ? { budget: m.epsilonBudget } : {}) };
  }

  /** Persist the privacy ledger; false (reply withheld) when it cannot be written. */
  private async saveLedger(): Promise<boolean> {
    if (!this.privacyLedger) return true;
    try {
      await this.privacyLedger.save(encodeFrame(this.privacy.toState() as unknown as Record<string, unknown>));
      return true;
    } catch (e) {
      this.stats.lastError = String(e);
      safeLog(this.log, 'error', 'privacy ledger could not be written; reply withheld', { nodeId: this.nodeId, error: String(e) });
      return false;
    }
  }

  private reject(s: NodeSession, e: unknown, type?: string): FrameOutcome {
    if (e instanceof ProtocolError && e.code === 'unsupported_version' && !s.welcome) {
      // The server speaks another protocol version: reconnecting cannot help.
      this.send(s, errorMessageFor(e, { fatal: true }));
      this.fail(e.message);
      s.transport.close(1002, 'unsupported version');
      this.closeSession(s);
      return 'closed';
    }
    s.errors++;
    const tooMany = s.errors > (this.opts.maxErrorsPerConnection ?? 50);
    const err = tooMany
      ? errorMessageFor(new ProtocolError('too_many_errors', `closing after ${s.errors} rejected frames`), { fatal: true, ...(type ? { offendingType: type } : {}) })
      : errorMessageFor(e, { fatal: false, ...(type ? { offendingType: type } : {}) });
    if (!(e instanceof ProtocolError)) safeLog(this.log, 'error', 'internal error while handling a frame', { nodeId: this.nodeId, error: String(e) });
    else safeLog(this.log, 'warn', 'server frame rejected', { nodeId: this.nodeId, code: err.code, field: err.field, message: err.message });
    this.send(s, err);
    if (tooMany) {
      s.transport.close(1008, 'too many errors');
      this.closeSession(s);
      return 'closed';
    }
    return 'rejected';
  }

  // ---- helpers -----------------------------------------------------------------------

  private addMaskData(keys: readonly string[], data: Float32Array, shape: Shape4): void {
    const [n, c, h, w] = shape;
    const [mc, mh, mw] = this.maskShape;
    if (c !== mc || h !== mh || w !== mw) throw new RangeError(`masks must be [n, ${mc}, ${mh}, ${mw}], got [${shape.join(', ')}]`);
    if (n !== keys.length || data.length !== n * c * h * w) throw new RangeError(`${keys.length} keys, shape [${shape.join(', ')}], ${data.length} values do not agree`);
    const per = c * h * w;
    for (let i = 0; i < n; i++) this.masks.set(keys[i]!, data.slice(i * per, (i + 1) * per));
  }

  /** Send `keys`' masks in as many maskUpload frames as the frame limits require. */
  private uploadMasks(s: NodeSession, keys: readonly string[]): void {
    if (keys.length === 0) return;
    const [c, h, w] = this.maskShape;
    const per = c * h * w;
    const maxFrame = Math.min(this.limits.maxFrameBytes, s.welcome?.config.maxFrameBytes ?? Infinity);
    const perMaskBytes = per * 4 + this.limits.maxKeyLength * 3 + 8; // data + worst-case UTF-8 key
    const chunk = Math.max(1, Math.min(this.limits.maxKeys, Math.floor((maxFrame - 4096) / perMaskBytes)));
    for (let i = 0; i < keys.length; i += chunk) {
      const part = keys.slice(i, i + chunk);
      const data = new Float32Array(part.length * per);
      part.forEach((k, j) => data.set(this.masks.get(k)!, j * per));
      this.send(s, { type: 'maskUpload', keys: part, masks: encodeTensor(data, [part.length, c, h, w], 'f32'), sampleCount: this.sampleCount });
    }
  }

  private send(s: NodeSession, msg: Message): boolean {
    if (s.closed) return false;
    const bytes = encodeFrame(msg);
    this.record('out', bytes);
    if (msg.type === 'error') this.stats.errorsSent++;
    try {
      return s.transport.send(bytes);
    } catch (e) {
      safeLog(this.log, 'warn', 'send failed', { nodeId: this.nodeId, error: String(e) });
      return false;
    }
  }

  private record(direction: 'in' | 'out', bytes: Uint8Array): void {
    if (!this.opts.onFrame) return;
    try {
      this.opts.onFrame({ direction, nodeId: this.nodeId, bytes });
    } catch {
      /* a faulty recorder must not break the protocol */
    }
  }

  private setState(st: NodeState): void {
    this.stateValue = st;
    if (st === 'ready') for (const w of this.readyWaiters.splice(0)) w.resolve();
    if (st === 'stopped') for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`node ${this.nodeId} stopped`));
  }

  private fail(why: string): void {
    this.stats.lastError = why;
    const first = this.stateValue !== 'failed';
    this.setState('failed');
    this.link.cancelRedial();
    for (const w of this.readyWaiters.splice(0)) w.reject(new Error(`node ${this.nodeId} failed: ${why}`));
    if (first) {
      try {
        this.opts.onFailed?.(why);
      } catch {
        /* hook errors are not ours */
      }
    }
  }

  private async saveCheckpoint(): Promise<void> {
    const store = this.opts.checkpoint;
    if (!store) return;
    try {
      const discriminator = await this.opts.backend.saveState();
      await store.save(encodeFrame({
        format: CHECKPOINT_FORMAT, version: 1, nodeId: this.nodeId, steps: this.stats.steps, lastRound: this.stats.lastRound ?? 0, discriminator,
        privacy: this.privacy.toState(),
      }));
      this.checkpointFailures = 0;
    } catch (e) {
      // Training goes on, but each failure is an error line: the node is not crash-safe until one succeeds.
      this.checkpointFailures++;
      safeLog(this.log, 'error', this.checkpointFailures > 1 ? `node checkpoint failed ${this.checkpointFailures} times in a row` : 'node checkpoint failed', {
        nodeId: this.nodeId, location: store.location, error: oneLine(e),
      });
    }
  }

  private async restore(bytes: Uint8Array): Promise<void> {
    const c = decodeFrame(bytes, Number.MAX_SAFE_INTEGER) as { format?: unknown; version?: unknown; nodeId?: unknown; steps?: unknown; lastRound?: unknown; discriminator?: unknown; privacy?: unknown };
    if (c.format !== CHECKPOINT_FORMAT || c.version !== 1 || !(c.discriminator instanceof Uint8Array)) throw new Error('not an asyndgan node checkpoint (version 1)');
    if (c.nodeId !== this.nodeId) throw new Error(`checkpoint belongs to node ${String(c.nodeId)}, not ${this.nodeId}`);
    await this.opts.backend.loadState(c.discriminator);
    this.stats.steps = typeof c.steps === 'number' ? c.steps : 0;
    this.stats.lastRound = typeof c.lastRound === 'number' && c.lastRound > 0 ? c.lastRound : undefined;
    if (c.privacy !== undefined) this.privacy.restore(c.privacy);
    safeLog(this.log, 'info', 'discriminator restored', { nodeId: this.nodeId, steps: this.stats.steps });
  }
}
