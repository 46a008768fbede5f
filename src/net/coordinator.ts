/**
 * The generator server's brain, independent of any socket library: welcomes authenticated
 * nodes (sessions.ts decides who is connected as which node), stores their masks, runs rounds
 * (sample -> generate -> scatter fakes -> gather gradients until a deadline -> combine
 * (aggregate.ts) -> one generator step), applies late replies within the staleness bound, and
 * checkpoints. server.ts feeds it frames from uWebSockets.js; tests
 * can feed it frames directly.
 *
 * Invariant: a frame is processed synchronously from bytes to state change, and a frame
 * that fails validation changes nothing but the sender's error counter.
 */
import { applyAugmentation, type AugmentationPolicy } from './augment.js';
import { GeneratorStepSkipped, type GeneratorBackend, type GeneratorBatch, type Shape4, type VoteRule } from './backend.js';
import type { CheckpointStore } from './checkpoint.js';
import { decodeFrame, encodeFrame, encodeTensor } from './codec.js';
import { safeLog, silentLogger, type Logger } from './log.js';
import {
  DEFAULT_LIMITS, MASK_ENCODINGS, PROTOCOL_VERSION, ProtocolError,
  type AugParams, type Dtype, type GradientReplyMsg, type HelloMsg, type Losses, type MaskEncoding, type MaskUploadMsg,
  type NodeToServer, type SamplingMode, type SessionConfig, type ValidationLimits, type WeightingMode,
} from './protocol.js';
import { NodeRegistry, type NodeSnapshot, type NodeStats } from './registry.js';
import { DEFAULT_REPLY_BOUNDS, admitLateReplies, aggregateReplies, checkReplyBounds, isVoteMode, medianTrim, pushNormHistory, type ReplyBounds } from './aggregate.js';
import { Rng, sampleRound } from './sampling.js';
import { ConnHandle, Sessions } from './sessions.js';
import { SessionCoordinator, type CheckpointHealth, type FrameOutcome, type FrameRecorder } from './session-coordinator.js';
import { TokenTable } from './tokens.js';
import { MAX_KNOWN_KEYS, checkGradientReply, checkMaskUpload, validateMessage } from './validate.js';

export { ConnHandle, type Connection } from './sessions.js';

export type { CheckpointHealth, FrameOutcome, FrameRecorder } from './session-coordinator.js';

/** Geometry and loss settings shared with nodes. */
export interface SessionGeometry {
  maskChannels: number;
  imageChannels: number;
  height: number;
  width: number;
  /** Masks per node per round ('balance') or per round in total ('uniform'). */
  batchSize: number;
  /** Default 100 (the paper's value). */
  lambdaL1?: number;
  /**
   * Names of the image channels in order (imageChannels entries). Sent to nodes in the config;
   * a node's hello names the modalities it holds among them, and each channel's gradient is
   * weighted over the nodes holding it. Without names every node counts on every channel.
   */
  modalities?: readonly string[];
  /**
   * What a mask's values must be (checked on upload, sent to nodes in the config): 'one-hot'
   * (every pixel's maskChannels values are 0 or 1 and sum to 1) or 'binary' (each value 0 or 1).
   * Default: 'one-hot' for maskChannels >= 2, 'binary' for one channel (a foreground indicator).
   */
  maskEncoding?: MaskEncoding;
}

export interface CoordinatorOptions {
  generator: GeneratorBackend;
  /** Node id -> token, or a loaded TokenTable. */
  tokens: TokenTable | Record<string, string>;
  session: SessionGeometry;
  /** Default 'balance'. */
  sampling?: SamplingMode;
  /** Default 'samples'. */
  weighting?: WeightingMode;
  /** Norm bounds, share cap and aggregation mode (aggregate.ts); defaults DEFAULT_REPLY_BOUNDS. */
  replyBounds?: Partial<ReplyBounds>;
  /**
   * false: the undefended combination (claimed sample counts, no norm bound, no share cap). Only
   * for ablations and the tests that show the defences matter. Default true.
   */
  defences?: boolean;
  /** Dtype of fakes sent to nodes that support it (others get f32). Default 'f32'. */
  wireDtype?: Dtype;
  /** How long a round waits for replies (ms). Default 30000. */
  roundTimeoutMs?: number;
  /** Late replies at most this many rounds old are still applied. Default 1. */
  maxStaleness?: number;
  /** Frames above this are refused. Default DEFAULT_MAX_FRAME_BYTES. */
  maxFrameBytes?: number;
  /** Other structural limits. */
  limits?: Partial<Omit<ValidationLimits, 'maxFrameBytes'>>;
  /** Most masks held per node. Default 1,000,000 (must stay <= MAX_KNOWN_KEYS, as welcome lists them all). */
  maxMasksPerNode?: number;
  /** Bytes of masks (f32 data plus keys) held per node; beyond: quota_exceeded. Default 256 MiB. */
  maxMaskBytesPerNode?: number;
  /** Bytes of masks held over all nodes together. Default 1 GiB. */
  maxMaskBytesTotal?: number;
  /**
   * A hello for a node id that already has an authenticated connection: 'refuse' answers the
   * newcomer with a fatal identity_in_use (the connected node keeps its place); 'replace' closes
   * the old connection with a fatal `replaced`. Default 'refuse'.
   */
  onDuplicateId?: 'refuse' | 'replace';
  /** Rejected frames tolerated per connection before it is closed. Default 50. */
  maxErrorsPerConnection?: number;
  /** A connection must authenticate within this time (ms). Default 10000. */
  helloTimeoutMs?: number;
  /** Where checkpoints go; on start, training resumes from it when present. */
  checkpoint?: CheckpointStore;
  /** Checkpoint every K finished rounds (0: only on stop). Default 50. */
  checkpointEvery?: number;
  /** Seed of the sampling RNG. Default: random. */
  seed?: number;
  /** Mask augmentation drawn per sample and sent along with the fakes. */
  augmentation?: AugmentationPolicy;
  /** Stop training (not serving) after this round. Default: never. */
  maxRounds?: number;
  /** A round starts only when at least this many nodes are ready (connected, masks held). Default 1. */
  minNodes?: number;
  onFrame?: FrameRecorder;
  /** Called after every round. */
  onRound?: (s: RoundSummary) => void;
  log?: Logger;
}

/** What happened in one round. */
export interface RoundSummary {
  round: number;
  /** Nodes a request was delivered to. */
  asked: string[];
  /** Nodes whose reply for this round arrived before the deadline. */
  onTime: string[];
  /** Late replies (from earlier rounds) applied in this round's step. */
  lateApplied: { nodeId: string; round: number }[];
  /** Late replies dropped at this round for being too stale. */
  dropped: { nodeId: string; round: number }[];
  /** Weight of each applied reply, by "nodeId@round" (used for the losses; see channelWeights). */
  weights: Record<string, number>;
  /** Per image channel weights by "nodeId@round", present when some applied node holds only some channels. */
  channelWeights?: Record<string, number[]>;
  /** Replies scaled down to their norm bound, by "nodeId@round", with the factor applied. */
  clipped: Record<string, number>;
  /** 'median-trust': each vote's trust in [0, 1] by "nodeId@round" (0: not used this step). */
  trust?: Record<string, number>;
  /** Whether the generator took a step. */
  stepped: boolean;
  /** Why the generator refused the step (non-finite gradients), when it did. */
  stepSkipped?: string;
  /** Weighted mean of the applied replies' losses. */
  losses: Losses | undefined;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

/** JSON served at /metrics. */
export interface ServerMetrics {
  sessionId: string;
  round: number;
  nodesConnected: number;
  nodes: { id: string; connected: boolean; masks: number; sampleCount: number; stats: NodeStats }[];
  totals: { bytesIn: number; bytesOut: number; framesIn: number; framesRejected: number; steps: number };
  lastRound: RoundSummary | undefined;
  recentRounds: RoundSummary[];
  checkpoint: CheckpointHealth;
}


interface Part {
  keys: string[];
  rowOffset: number;
  shape: Shape4;
  sentAt: number;
  answered: boolean;
}

interface PendingRound {
  round: number;
  batch: GeneratorBatch;
  fakeShape: Shape4;
  parts: Map<string, Part>;
  /** Collecting on-time replies. */
  open: boolean;
  outstanding: Set<string>;
  replies: Map<string, Reply>;
  wake: () => void;
}

interface Reply {
  nodeId: string;
  round: number;
  grad: Float32Array;
  losses: Losses;
  /** What the node claimed (metrics, and the undefended weighting). */
  sampleCount: number;
  /** Masks the server holds for the node when the reply arrived: its sample count for weighting. */
  heldMasks: number;
  /** Image channels the node holds; undefined: all. */
  channels: readonly number[] | undefined;
}

const CHECKPOINT_FORMAT = 'asyndgan-server-checkpoint';

export class Coordinator extends SessionCoordinator {
  readonly config: SessionConfig;
  readonly registry: NodeRegistry;
  protected readonly opts: CoordinatorOptions;
  protected readonly limits: ValidationLimits;
  protected readonly log: Logger;
  private rng: Rng;
  protected readonly sessions: Sessions;
  private readonly pending = new Map<number, PendingRound>();
  private late: Reply[] = [];
  private gathering: PendingRound | undefined;
  /** Round whose generator step the next late reply would join. */
  private collectingRound = 1;
  /** 'waiting for nodes' is logged once per wait. */
  private waitingLogged = false;
  private recent: RoundSummary[] = [];
  private readonly replyBounds: ReplyBounds;
  /** Per-sample reply norms of the last few steps, for the median norm bound (not checkpointed: it refills in a few rounds). */
  private normHistory: number[][] = [];

  constructor(opts: CoordinatorOptions) {
    super();
    this.opts = opts;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits, maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes };
    this.log = opts.log ?? silentLogger;
    this.rng = new Rng(opts.seed ?? (Math.random() * 2 ** 32) >>> 0);
    const s = opts.session;
    this.config = {
      maskChannels: s.maskChannels, imageChannels: s.imageChannels, height: s.height, width: s.width,
      lambdaL1: s.lambdaL1 ?? 100, batchSize: s.batchSize, wireDtype: opts.wireDtype ?? 'f32',
      maxFrameBytes: this.limits.maxFrameBytes, roundTimeoutMs: opts.roundTimeoutMs ?? 30000,
      maxStaleness: opts.maxStaleness ?? 1, sampling: opts.sampling ?? 'balance', weighting: opts.weighting ?? 'samples',
      maskEncoding: s.maskEncoding ?? (s.maskChannels >= 2 ? 'one-hot' : 'binary'),
      ...(s.modalities ? { modalities: [...s.modalities] } : {}),
    };
    this.replyBounds = checkReplyBounds({ ...DEFAULT_REPLY_BOUNDS, ...opts.replyBounds });
    if (isVoteMode(this.replyBounds.aggregation) && !opts.generator.applyVotes) {
      throw new RangeError(`aggregation '${this.replyBounds.aggregation}' needs a generator backend with applyVotes (per-node gradients); use 'clipped-median'`);
    }
    if (!MASK_ENCODINGS.includes(this.config.maskEncoding!)) throw new RangeError(`session.maskEncoding must be one of ${MASK_ENCODINGS.join(', ')}, got ${JSON.stringify(s.maskEncoding)}`);
    if (s.modalities && s.modalities.length !== s.imageChannels) {
      throw new RangeError(`session.modalities names ${s.modalities.length} channels, imageChannels is ${s.imageChannels}`);
    }
    this.registry = new NodeRegistry([s.maskChannels, s.height, s.width]);
    this.sessions = new Sessions({
      tokens: opts.tokens instanceof TokenTable ? opts.tokens : new TokenTable(opts.tokens),
      onDuplicateId: opts.onDuplicateId ?? 'refuse', modalities: s.modalities, imageChannels: s.imageChannels, log: this.log,
    });
  }

  // ---- lifecycle --------------------------------------------------------------------

  protected override beforeLoop(): void {
    this.collectingRound = this.roundValue + 1;
  }

  // ---- SessionCoordinator hooks -----------------------------------------------------

  protected gatheringRound(): PendingRound | undefined {
    return this.gathering;
  }

  protected nodeRecord(nodeId: string): { connected: boolean; stats: NodeStats } | undefined {
    return this.registry.get(nodeId);
  }

  protected countRejected(h: ConnHandle): void {
    const rec = h.nodeId !== undefined ? this.registry.get(h.nodeId) : undefined;
    if (rec) rec.stats.framesRejected++;
  }

  protected dispatchFrame(h: ConnHandle, raw: Record<string, unknown>): FrameOutcome {
    return this.dispatch(h, validateMessage(raw, 'toServer', this.limits));
  }

  // ---- message handling --------------------------------------------------------------

  private dispatch(h: ConnHandle, msg: NodeToServer): FrameOutcome {
    if (!h.authed) {
      if (msg.type !== 'hello') throw new ProtocolError('not_authenticated', `expected hello first, got ${msg.type}`, { offendingType: msg.type, fatal: true });
      return this.onHello(h, msg);
    }
    const nodeId = h.nodeId!;
    switch (msg.type) {
      case 'hello': // unreachable (refused in receive), kept for exhaustiveness
        throw new ProtocolError('unexpected', 'already authenticated', { offendingType: 'hello' });
      case 'maskUpload':
        return this.onMaskUpload(h, nodeId, msg);
      case 'gradientReply':
        return this.onReply(nodeId, msg);
      case 'status':
        this.registry.ensure(nodeId).stats.reported = msg.metrics;
        return 'accepted';
      case 'error':
        safeLog(this.log, 'warn', 'node reported an error', { nodeId, code: msg.code, message: msg.message, field: msg.field, round: msg.round });
        if (msg.fatal) {
          this.closeHandle(h, 1000, 'peer reported fatal error');
          return 'closed';
        }
        return 'accepted';
      case 'goodbye':
        safeLog(this.log, 'info', 'node said goodbye', { nodeId, reason: msg.reason });
        this.closeHandle(h, 1000, 'goodbye');
        return 'closed';
    }
  }

  private onHello(h: ConnHandle, msg: HelloMsg): FrameOutcome {
    const previous = this.sessions.authenticate(h, msg);
    if (previous) this.closeReplaced(previous);
    this.sessions.bind(h, msg, this.config.wireDtype);
    const rec = this.registry.ensure(msg.nodeId);
    rec.connected = true;
    rec.stats.connects++;
    this.send(h, {
      type: 'welcome', protocolVersion: PROTOCOL_VERSION, sessionId: this.sessionIdValue, nodeId: msg.nodeId,
      round: this.roundValue, config: { ...this.config, wireDtype: h.dtype }, knownKeys: this.registry.keys(msg.nodeId),
    });
    safeLog(this.log, 'info', 'node connected', { nodeId: msg.nodeId, remote: h.remote, masks: rec.masks.size });
    this.notifyChange();
    return 'accepted';
  }

  /** Bytes of masks held per node (see maskBytes), filled on a node's first upload. */
  private readonly maskBytesByNode = new Map<string, number>();

  /** Memory one held mask costs: its f32 data plus its key (a JS string, 2 bytes a character). */
  private maskBytes(key: string): number {
    return this.config.maskChannels * this.config.height * this.config.width * 4 + 2 * key.length;
  }

  private heldMaskBytes(nodeId: string): number {
    let b = this.maskBytesByNode.get(nodeId);
    if (b === undefined) {
      b = 0;
      for (const k of this.registry.get(nodeId)?.masks.keys() ?? []) b += this.maskBytes(k);
      this.maskBytesByNode.set(nodeId, b);
    }
    return b;
  }

  private onMaskUpload(h: ConnHandle, nodeId: string, msg: MaskUploadMsg): FrameOutcome {
    const data = checkMaskUpload(msg, this.config);
    const rec = this.registry.ensure(nodeId);
    const fresh = msg.keys.filter((k) => !rec.masks.has(k));
    const max = Math.min(this.opts.maxMasksPerNode ?? 1_000_000, MAX_KNOWN_KEYS);
    if (rec.masks.size + fresh.length > max) {
      throw new ProtocolError('quota_exceeded', `maskUpload: keys: would hold ${rec.masks.size + fresh.length} masks, limit is ${max}`, { field: 'keys', offendingType: 'maskUpload' });
    }
    // Byte budgets: a replaced mask costs nothing more, a new one its data and key.
    let added = 0;
    for (const k of fresh) added += this.maskBytes(k);
    const mine = this.heldMaskBytes(nodeId);
    const perNode = this.opts.maxMaskBytesPerNode ?? 256 * 2 ** 20;
    if (mine + added > perNode) {
      safeLog(this.log, 'warn', 'mask upload over the per-node byte budget', { nodeId, heldBytes: mine, addedBytes: added, limit: perNode });
      throw new ProtocolError('quota_exceeded', `maskUpload: would hold ${mine + added} bytes of masks for this node, limit is ${perNode}`, { field: 'masks', offendingType: 'maskUpload' });
    }
    let all = 0;
    for (const r of this.registry.all()) all += this.heldMaskBytes(r.id);
    const total = this.opts.maxMaskBytesTotal ?? 2 ** 30;
    if (all + added > total) {
      safeLog(this.log, 'warn', 'mask upload over the server-wide byte budget', { nodeId, heldBytes: all, addedBytes: added, limit: total });
      throw new ProtocolError('quota_exceeded', `maskUpload: the server would hold ${all + added} bytes of masks, limit is ${total}`, { field: 'masks', offendingType: 'maskUpload' });
    }
    this.maskBytesByNode.set(nodeId, mine + added);
    const held = this.registry.addMasks(nodeId, msg.keys, data, msg.sampleCount);
    this.send(h, { type: 'maskAck', accepted: msg.keys.length, total: held });
    safeLog(this.log, 'debug', 'masks uploaded', { nodeId, accepted: msg.keys.length, total: held });
    this.notifyChange();
    return 'accepted';
  }

  private onReply(nodeId: string, msg: GradientReplyMsg): FrameOutcome {
    const pr = this.pending.get(msg.round);
    const part = pr?.parts.get(nodeId);
    if (!pr || !part) {
      if (msg.round <= this.roundValue) {
        const rec = this.registry.ensure(nodeId);
        rec.stats.repliesDropped++;
        safeLog(this.log, 'warn', 'late reply dropped (round no longer held)', { nodeId, round: msg.round, current: this.roundValue });
        throw new ProtocolError('stale', `round ${msg.round} is too old (server is at round ${this.roundValue}, maxStaleness ${this.config.maxStaleness})`, { field: 'round', offendingType: 'gradientReply' });
      }
      throw new ProtocolError('unexpected', `gradientReply: round: no request for round ${msg.round} was sent to this node`, { field: 'round', offendingType: 'gradientReply' });
    }
    if (part.answered) throw new ProtocolError('unexpected', `gradientReply: round: round ${msg.round} was already answered`, { field: 'round', offendingType: 'gradientReply' });
    const grad = checkGradientReply(msg, { round: pr.round, keys: part.keys, shape: part.shape });
    const rec = this.registry.ensure(nodeId);
    const latency = Date.now() - part.sentAt;
    const reply: Reply = {
      nodeId, round: msg.round, grad, losses: msg.losses, sampleCount: rec.sampleCount, heldMasks: rec.masks.size, channels: this.sessions.channelsOf(nodeId),
    };
    if (pr.open) {
      part.answered = true;
      pr.replies.set(nodeId, reply);
      rec.stats.repliesOnTime++;
      if (pr.outstanding.delete(nodeId) && pr.outstanding.size === 0) pr.wake();
    } else {
      // Applied in the step of the round being gathered now, or of the next one.
      const staleness = this.collectingRound - msg.round;
      part.answered = true;
      if (staleness > this.config.maxStaleness) {
        rec.stats.repliesDropped++;
        safeLog(this.log, 'warn', 'late reply dropped', { nodeId, round: msg.round, staleness, maxStaleness: this.config.maxStaleness });
        throw new ProtocolError('stale', `reply for round ${msg.round} has staleness ${staleness} > maxStaleness ${this.config.maxStaleness}`, { field: 'round', offendingType: 'gradientReply' });
      }
      this.late.push(reply);
      safeLog(this.log, 'info', 'late reply queued', { nodeId, round: msg.round, staleness });
    }
    rec.stats.lastLatencyMs = latency;
    rec.stats.avgLatencyMs = rec.stats.avgLatencyMs === undefined ? latency : 0.8 * rec.stats.avgLatencyMs + 0.2 * latency;
    rec.stats.lastLosses = msg.losses;
    rec.stats.lastRound = msg.round;
    return 'accepted';
  }

  // ---- the round loop --------------------------------------------------------------

  /** maxRounds reached: tell every node the run is over (goodbye training_done); they close and exit. */
  private finishTraining(): void {
    if (this.trainingDone) return;
    this.trainingDone = true;
    safeLog(this.log, 'info', 'training done: telling the nodes', { round: this.roundValue });
    for (const h of this.sessions.handles) this.send(h, this.trainingDoneGoodbye());
  }

  private readyNodes(): { nodeId: string; keys: string[] }[] {
    const out: { nodeId: string; keys: string[] }[] = [];
    for (const [nodeId] of this.sessions.connected()) {
      const keys = this.registry.keys(nodeId);
      if (keys.length > 0) out.push({ nodeId, keys });
    }
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  protected async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.opts.maxRounds !== undefined && this.roundValue >= this.opts.maxRounds) {
        this.finishTraining();
        return;
      }
      const ready = this.readyNodes();
      if (ready.length < Math.max(1, this.opts.minNodes ?? 1)) {
        if (ready.length > 0 && !this.waitingLogged) {
          this.waitingLogged = true;
          safeLog(this.log, 'info', 'waiting for nodes before the next round', { ready: ready.length, minNodes: this.opts.minNodes });
        }
        await this.waitForChange();
        continue;
      }
      this.waitingLogged = false;
      const delivered = await this.runRound(ready);
      if (!delivered && !this.stopping) await this.waitForChange(Math.min(1000, this.config.roundTimeoutMs));
    }
  }

  /** One round. Returns false when no request could be delivered. */
  private async runRound(ready: { nodeId: string; keys: string[] }[]): Promise<boolean> {
    const t0 = Date.now();
    const in0 = this.totals.bytesIn;
    const out0 = this.totals.bytesOut;
    const round = this.roundValue + 1;
    const { maskChannels: mc, imageChannels: ic, height: H, width: W } = this.config;
    const picks = sampleRound(this.config.sampling, ready, this.config.batchSize, this.rng);
    let total = 0;
    for (const keys of picks.values()) total += keys.length;

    // Assemble the masks of all nodes into one batch: one generator pass per round.
    const per = mc * H * W;
    const masks = new Float32Array(total * per);
    const parts = new Map<string, Part>();
    const augs = new Map<string, AugParams[]>();
    let row = 0;
    for (const [nodeId, keys] of picks) {
      const aug: AugParams[] = [];
      keys.forEach((k, i) => {
        let m = this.registry.get(nodeId)!.masks.get(k)!;
        if (this.opts.augmentation) {
          const a = this.opts.augmentation(() => this.rng.next());
          aug.push(a);
          m = applyAugmentation(m, [1, mc, H, W], [a]);
        }
        masks.set(m, (row + i) * per);
      });
      if (this.opts.augmentation) augs.set(nodeId, aug);
      parts.set(nodeId, { keys, rowOffset: row, shape: [keys.length, ic, H, W], sentAt: 0, answered: false });
      row += keys.length;
    }
    // Under a vote mode each node's rows get their own forward pass (GeneratorBatch.segments).
    const voting = isVoteMode(this.replyBounds.aggregation) && this.opts.defences !== false;
    const batch: GeneratorBatch = { round, masks, shape: [total, mc, H, W], ...(voting ? { segments: [...parts.values()].map((p) => p.keys.length) } : {}) };
    let fakes: Float32Array;
    try {
      fakes = await this.opts.generator.generate(batch);
      if (fakes.length !== total * ic * H * W) throw new RangeError(`generate returned ${fakes.length} values, expected ${total * ic * H * W}`);
    } catch (e) {
      safeLog(this.log, 'error', 'generator forward failed; round skipped', { round, error: String(e) });
      return false;
    }

    let wake!: () => void;
    const woken = new Promise<void>((r) => (wake = r));
    const pr: PendingRound = { round, batch, fakeShape: [total, ic, H, W], parts, open: true, outstanding: new Set(), replies: new Map(), wake };
    this.pending.set(round, pr);
    this.gathering = pr;
    this.collectingRound = round;
    const asked: string[] = [];
    const img = ic * H * W;
    for (const [nodeId, part] of parts) {
      const h = this.sessions.connectionOf(nodeId);
      if (!h || h.closed) continue;
      const n = part.keys.length;
      const slice = fakes.subarray(part.rowOffset * img, (part.rowOffset + n) * img);
      part.sentAt = Date.now();
      const aug = augs.get(nodeId);
      const ok = this.send(h, { type: 'roundRequest', round, keys: part.keys, fakes: encodeTensor(slice, part.shape, h.dtype), ...(aug ? { aug } : {}) });
      if (ok) {
        pr.outstanding.add(nodeId);
        asked.push(nodeId);
      }
    }
    if (pr.outstanding.size > 0 && !this.stopping) {
      const timer = setTimeout(wake, this.config.roundTimeoutMs);
      await woken;
      clearTimeout(timer);
    }
    pr.open = false;
    this.gathering = undefined;
    this.collectingRound = round + 1; // replies arriving from now on join the next step
    const summary = await this.finishRound(pr, asked, t0);
    summary.bytesIn = this.totals.bytesIn - in0;
    summary.bytesOut = this.totals.bytesOut - out0;
    this.recent.push(summary);
    if (this.recent.length > 20) this.recent.shift();
    try {
      this.opts.onRound?.(summary);
    } catch {
      /* hook errors are not ours */
    }
    this.roundWaiters.reached(summary.round);
    const every = this.opts.checkpointEvery ?? 50;
    if (every > 0 && round % every === 0) await this.saveCheckpoint();
    return asked.length > 0;
  }

  /** Combine on-time and late replies (aggregate.ts), take the generator step, advance the round. */
  private async finishRound(pr: PendingRound, asked: string[], t0: number): Promise<RoundSummary> {
    const round = pr.round;
    const { admitted, dropped: stale } = admitLateReplies(this.late.splice(0), round, this.config.maxStaleness, (r) => this.pending.has(r));
    for (const r of admitted) this.registry.ensure(r.nodeId).stats.repliesLate++;
    for (const r of stale) {
      this.registry.ensure(r.nodeId).stats.repliesDropped++;
      safeLog(this.log, 'warn', 'late reply dropped', { nodeId: r.nodeId, round: r.round, staleness: round - r.round });
    }
    const applied: Reply[] = [...pr.replies.values(), ...admitted];
    const agg = aggregateReplies(
      applied.map((r) => {
        const p = this.pending.get(r.round)!;
        const part = p.parts.get(r.nodeId)!;
        return {
          nodeId: r.nodeId, round: r.round, grad: r.grad, losses: r.losses, heldMasks: r.heldMasks, claimedSampleCount: r.sampleCount,
          batchCount: part.keys.length, rowOffset: part.rowOffset, batchRows: p.fakeShape[0], channels: r.channels,
        };
      }),
      {
        weighting: this.config.weighting, sampling: this.config.sampling, imageChannels: this.config.imageChannels,
        plane: this.config.height * this.config.width, bounds: this.replyBounds, defences: this.opts.defences !== false,
      },
      this.normHistory.flat(),
    );
    if (applied.length > 0) this.normHistory = pushNormHistory(this.normHistory, agg.perSampleNorms, this.replyBounds.normHistoryRounds);
    const subsets = applied.some((r) => r.channels !== undefined);
    const weightOut: Record<string, number> = {};
    const channelOut: Record<string, number[]> = {};
    const clipped: Record<string, number> = {};
    applied.forEach((r, i) => {
      const key = `${r.nodeId}@${r.round}`;
      weightOut[key] = agg.weights[i]!;
      if (subsets) channelOut[key] = agg.channelWeights[i]!;
      if (agg.scales[i]! < 1) {
        clipped[key] = agg.scales[i]!;
        this.registry.ensure(r.nodeId).stats.repliesClipped++;
        // With 'clipped-median' about half the honest replies are trimmed a little each round:
        // only a reply above twice its bound is worth an operator's attention.
        safeLog(this.log, agg.scales[i]! < 0.5 ? 'warn' : 'debug', 'reply scaled down to its norm bound', { nodeId: r.nodeId, round: r.round, norm: agg.norms[i], scale: agg.scales[i] });
      }
    });
    let stepped = false;
    let stepSkipped: string | undefined;
    const trust: Record<string, number> = {};
    if (agg.grads.size > 0 || agg.votes) {
      const gen = this.opts.generator;
      try {
        if (agg.votes) {
          const rule: VoteRule = this.replyBounds.aggregation === 'median-trust'
            ? { kind: 'median-trust', weights: agg.weights } : { kind: 'trimmed-mean', trim: medianTrim(agg.votes.length) };
          const outcome = await gen.applyVotes!(agg.votes.map((v) => ({ batch: this.pending.get(v.round)!.batch, gradFakes: v.grad, rows: { offset: v.rowOffset, count: v.rowCount } })), rule);
          outcome?.trust?.forEach((x, i) => {
            const r = applied[i]!;
            trust[`${r.nodeId}@${r.round}`] = x;
            if (x === 0) {
              this.registry.ensure(r.nodeId).stats.repliesDistrusted++;
              safeLog(this.log, 'warn', 'reply not used: its generator gradient points away from the median of the replies', { nodeId: r.nodeId, round: r.round });
            }
          });
        } else {
          await gen.applyGradients([...agg.grads].map(([r, gradFakes]) => ({ batch: this.pending.get(r)!.batch, gradFakes })));
        }
        stepped = true;
        this.totals.steps++;
      } catch (e) {
        if (e instanceof GeneratorStepSkipped) {
          stepSkipped = e.message;
          safeLog(this.log, 'warn', 'generator step skipped', { round, reason: e.message, nodes: applied.map((r) => r.nodeId) });
        } else {
          safeLog(this.log, 'error', 'generator step failed', { round, error: String(e) });
        }
      }
    }
    this.roundValue = round;
    // Rounds that can no longer receive an applicable late reply are forgotten.
    for (const r of this.pending.keys()) if (r < round + 1 - this.config.maxStaleness) this.pending.delete(r);
    return {
      round, asked, onTime: [...pr.replies.keys()], lateApplied: admitted.map((r) => ({ nodeId: r.nodeId, round: r.round })),
      dropped: stale.map((r) => ({ nodeId: r.nodeId, round: r.round })), weights: weightOut, ...(subsets ? { channelWeights: channelOut } : {}),
      clipped, ...(Object.keys(trust).length > 0 ? { trust } : {}), stepped, ...(stepSkipped !== undefined ? { stepSkipped } : {}), losses: agg.losses,
      durationMs: Date.now() - t0, bytesIn: 0, bytesOut: 0,
    };
  }

  // ---- checkpoints -------------------------------------------------------------------

  /** Serialize generator state, round, RNG and node registry (incl. masks). */
  async checkpointBytes(): Promise<Uint8Array> {
    // Snapshot synchronously first so the registry and round are consistent with each other.
    const nodes = this.registry.snapshot();
    const head = { format: CHECKPOINT_FORMAT, version: 1, sessionId: this.sessionIdValue, round: this.roundValue, rngState: this.rng.state };
    const generator = await this.opts.generator.saveState();
    return encodeFrame({ ...head, geometry: [this.config.maskChannels, this.config.height, this.config.width], generator, nodes });
  }

  protected override checkpointFailedMessage(c: CheckpointHealth): string {
    return c.consecutiveFailures > 1
      ? `checkpoint failed ${c.consecutiveFailures} times in a row: a crash now loses everything since round ${c.lastSavedRound ?? 0}`
      : 'checkpoint failed';
  }

  protected async restore(bytes: Uint8Array): Promise<void> {
    const c = decodeFrame(bytes, Number.MAX_SAFE_INTEGER) as {
      format?: unknown; version?: unknown; sessionId?: unknown; round?: unknown; rngState?: unknown; geometry?: unknown; generator?: unknown; nodes?: unknown;
    };
    if (c.format !== CHECKPOINT_FORMAT || c.version !== 1) throw new Error('not an asyndgan server checkpoint (version 1)');
    const geo = [this.config.maskChannels, this.config.height, this.config.width];
    if (!Array.isArray(c.geometry) || c.geometry.join(',') !== geo.join(',')) throw new Error(`checkpoint mask geometry ${String(c.geometry)} differs from the configured ${geo.join(',')}`);
    if (typeof c.round !== 'number' || typeof c.rngState !== 'number' || typeof c.sessionId !== 'string' || !(c.generator instanceof Uint8Array) || !Array.isArray(c.nodes)) {
      throw new Error('checkpoint is missing fields');
    }
    await this.opts.generator.loadState(c.generator);
    this.registry.restore(c.nodes as NodeSnapshot[]);
    this.roundValue = c.round;
    this.rng = Rng.fromState(c.rngState);
    this.sessionIdValue = c.sessionId;
    safeLog(this.log, 'info', 'resumed from checkpoint', { round: c.round, nodes: this.registry.all().length });
  }

  // ---- metrics ---------------------------------------------------------------------

  metrics(): ServerMetrics {
    const nodes = this.registry.all().map((r) => ({ id: r.id, connected: r.connected, masks: r.masks.size, sampleCount: r.sampleCount, stats: { ...r.stats } }));
    return {
      sessionId: this.sessionIdValue, round: this.roundValue, nodesConnected: nodes.filter((n) => n.connected).length, nodes,
      totals: { ...this.totals }, lastRound: this.recent[this.recent.length - 1], recentRounds: [...this.recent],
      checkpoint: { ...this.checkpointHealth },
    };
  }
}
