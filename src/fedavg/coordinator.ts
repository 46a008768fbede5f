/**
 * The FedAvg-GAN server's brain, independent of any socket library (the FedAvg counterpart of
 * src/net/coordinator.ts, sharing its pieces: Sessions for hello authentication and one live
 * connection per node, the codec, structural validation of hello/status/error/goodbye, checkpoint
 * stores). One round, Flower-style:
 *
 *   configure  send the global G and D (one encoded frame, the same bytes to every ready node)
 *   fit        each node trains E local steps on its own data and answers with its weights
 *   aggregate  until every asked node answered or the deadline passed: sample-weighted average of
 *              the on-time, validated updates (aggregate.ts), which becomes the global model
 *
 * A node that connects (or reconnects) between rounds is asked in the next round, so it always
 * starts from the current global weights; an update after the deadline is refused as stale (no
 * asynchronous averaging: that is the design being compared with). A round nobody answered is
 * repeated, not counted. Bytes are counted frame by frame in both directions.
 */
import type { CheckpointStore } from '../net/checkpoint.js';
import { decodeFrame, encodeFrame } from '../net/codec.js';
import { SessionCoordinator, type CheckpointHealth, type FrameOutcome, type FrameRecorder } from '../net/session-coordinator.js';
import { safeLog, silentLogger, type Logger } from '../net/log.js';
import {
  DEFAULT_LIMITS, PROTOCOL_VERSION, ProtocolError,
  type HelloMsg, type Losses, type ValidationLimits,
} from '../net/protocol.js';
import { ConnHandle, Sessions } from '../net/sessions.js';
import { TokenTable } from '../net/tokens.js';
import { validateMessage } from '../net/validate.js';
import { DEFAULT_FEDAVG_POLICY, fedAvgModel, type FedAvgPolicy, type ModelUpdate } from './aggregate.js';
import { checkFedUpdate, decodeModels, wireModel, type FedSessionConfig, type FedWelcomeMsg, type ModelLayout } from './protocol.js';

export { ConnHandle, type Connection } from '../net/sessions.js';

/** The global G and D: f32 tensors in state-dict order. */
export interface GanWeights {
  G: Float32Array[];
  D: Float32Array[];
}

export interface FedAvgCoordinatorOptions {
  tokens: TokenTable | Record<string, string>;
  /** Round-0 global model (the server's initialization, seeded). */
  initial: GanWeights;
  layouts: { G: ModelLayout; D: ModelLayout };
  /** E, batch size, losses and the learning-rate schedule sent to nodes. */
  session: Omit<FedSessionConfig, 'algorithm' | 'maxFrameBytes' | 'roundTimeoutMs'>;
  /** How long a round waits for updates (ms); it must cover E local steps. Default 300000. */
  roundTimeoutMs?: number;
  maxFrameBytes?: number;
  limits?: Partial<Omit<ValidationLimits, 'maxFrameBytes'>>;
  policy?: Partial<FedAvgPolicy>;
  /** Largest sample count a node may claim. Default 1e7. */
  maxSampleCount?: number;
  maxRounds?: number;
  /** A round starts only when this many nodes are connected. Default 1. */
  minNodes?: number;
  checkpoint?: CheckpointStore;
  /** Checkpoint every K rounds (0: only on stop). Default 10. */
  checkpointEvery?: number;
  onDuplicateId?: 'refuse' | 'replace';
  maxErrorsPerConnection?: number;
  helloTimeoutMs?: number;
  onFrame?: FrameRecorder;
  onRound?: (s: FedRoundSummary) => void;
  log?: Logger;
}

/** What happened in one round. */
export interface FedRoundSummary {
  round: number;
  /** Nodes the global model was delivered to. */
  asked: string[];
  /** Nodes whose valid update arrived before the deadline (and was averaged). */
  onTime: string[];
  /** Averaging share of each node (sums to 1). */
  shares: Record<string, number>;
  /** Nodes whose delta was scaled down, with the factor (G and D; the smaller of the two). */
  clipped: Record<string, number>;
  /** Weighted mean of the on-time updates' losses. */
  losses: Losses | undefined;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

export interface FedNodeStats {
  connects: number;
  updatesOnTime: number;
  updatesRefused: number;
  framesRejected: number;
  bytesIn: number;
  bytesOut: number;
  lastLosses: Losses | undefined;
  reported: Record<string, number> | undefined;
}

/** JSON at /metrics: the AsynDGAN server's shape where the notions are the same. */
export interface FedAvgMetrics {
  algorithm: 'fedavg-gan';
  sessionId: string;
  round: number;
  nodesConnected: number;
  nodes: { id: string; connected: boolean; sampleCount: number; stats: FedNodeStats }[];
  totals: { bytesIn: number; bytesOut: number; framesIn: number; framesRejected: number; steps: number };
  lastRound: FedRoundSummary | undefined;
  recentRounds: FedRoundSummary[];
  checkpoint: CheckpointHealth;
}

interface NodeRec {
  id: string;
  connected: boolean;
  /** Fixed by the node's first update: a later, different claim is ignored (and logged). */
  sampleCount: number;
  stats: FedNodeStats;
}

interface Update {
  nodeId: string;
  sampleCount: number;
  G: Float32Array[];
  D: Float32Array[];
  losses: Losses;
}

interface PendingRound {
  round: number;
  asked: Set<string>;
  outstanding: Set<string>;
  updates: Map<string, Update>;
  wake: () => void;
}

const CHECKPOINT_FORMAT = 'asyndgan-fedavg-checkpoint';

export class FedAvgCoordinator extends SessionCoordinator {
  readonly config: FedSessionConfig;
  protected readonly opts: FedAvgCoordinatorOptions;
  protected readonly limits: ValidationLimits;
  private readonly policy: FedAvgPolicy;
  protected readonly log: Logger;
  protected readonly sessions: Sessions;
  private readonly nodes = new Map<string, NodeRec>();
  private global: GanWeights;
  private gathering: PendingRound | undefined;
  private recent: FedRoundSummary[] = [];

  constructor(opts: FedAvgCoordinatorOptions) {
    super();
    this.opts = opts;
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits, maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes };
    this.policy = { ...DEFAULT_FEDAVG_POLICY, ...opts.policy };
    this.log = opts.log ?? silentLogger;
    this.config = { algorithm: 'fedavg-gan', ...opts.session, roundTimeoutMs: opts.roundTimeoutMs ?? 300_000, maxFrameBytes: this.limits.maxFrameBytes };
    this.global = { G: opts.initial.G.map((x) => new Float32Array(x)), D: opts.initial.D.map((x) => new Float32Array(x)) };
    this.sessions = new Sessions({
      tokens: opts.tokens instanceof TokenTable ? opts.tokens : new TokenTable(opts.tokens),
      onDuplicateId: opts.onDuplicateId ?? 'refuse', modalities: undefined, imageChannels: 1, log: this.log,
    });
  }

  /** A copy of the current global model. */
  weights(): GanWeights {
    return { G: this.global.G.map((x) => new Float32Array(x)), D: this.global.D.map((x) => new Float32Array(x)) };
  }

  // ---- lifecycle --------------------------------------------------------------------


  // ---- SessionCoordinator hooks -----------------------------------------------------

  protected gatheringRound(): PendingRound | undefined {
    return this.gathering;
  }

  protected nodeRecord(nodeId: string): { connected: boolean; stats: FedNodeStats } | undefined {
    return this.nodes.get(nodeId);
  }

  protected countRejected(h: ConnHandle, type: string | undefined): void {
    const rec = h.authed && h.nodeId !== undefined ? this.nodes.get(h.nodeId) : undefined;
    if (rec) rec.stats.framesRejected++;
    if (rec && type === 'fedUpdate') rec.stats.updatesRefused++;
  }

  /** fedUpdate is checked against the model layouts (checkFedUpdate), the rest structurally. */
  protected dispatchFrame(h: ConnHandle, raw: Record<string, unknown>, type: string | undefined): FrameOutcome {
    if (type === 'fedUpdate') return this.onUpdate(h.nodeId!, raw);
    const msg = validateMessage(raw, 'toServer', this.limits);
    switch (msg.type) {
      case 'hello':
        return this.onHello(h, msg);
      case 'status':
        this.node(h.nodeId!).stats.reported = msg.metrics;
        return 'accepted';
      case 'error':
        safeLog(this.log, 'warn', 'node reported an error', { nodeId: h.nodeId, code: msg.code, message: msg.message });
        if (msg.fatal) {
          this.closeHandle(h, 1000, 'peer reported fatal error');
          return 'closed';
        }
        return 'accepted';
      case 'goodbye':
        safeLog(this.log, 'info', 'node said goodbye', { nodeId: h.nodeId, reason: msg.reason });
        this.closeHandle(h, 1000, 'goodbye');
        return 'closed';
      default:
        throw new ProtocolError('unexpected', `${msg.type} is an AsynDGAN message; this server runs fedavg-gan`, { offendingType: msg.type });
    }
  }

  // ---- messages ----------------------------------------------------------------------

  private node(id: string): NodeRec {
    let r = this.nodes.get(id);
    if (!r) {
      r = { id, connected: false, sampleCount: 0, stats: { connects: 0, updatesOnTime: 0, updatesRefused: 0, framesRejected: 0, bytesIn: 0, bytesOut: 0, lastLosses: undefined, reported: undefined } };
      this.nodes.set(id, r);
    }
    return r;
  }

  private onHello(h: ConnHandle, msg: HelloMsg): FrameOutcome {
    const previous = this.sessions.authenticate(h, msg);
    if (previous) this.closeReplaced(previous);
    this.sessions.bind(h, msg, 'f32');
    const rec = this.node(msg.nodeId);
    rec.connected = true;
    rec.stats.connects++;
    const welcome: FedWelcomeMsg = { type: 'fedWelcome', protocolVersion: PROTOCOL_VERSION, sessionId: this.sessionIdValue, nodeId: msg.nodeId, round: this.roundValue, config: this.config };
    this.send(h, welcome);
    safeLog(this.log, 'info', 'node connected', { nodeId: msg.nodeId, remote: h.remote, round: this.roundValue });
    this.notifyChange();
    return 'accepted';
  }

  private onUpdate(nodeId: string, raw: Record<string, unknown>): FrameOutcome {
    const pr = this.gathering;
    const round = raw.round;
    const rec = this.node(nodeId);
    if (!pr || round !== pr.round) {
      if (typeof round === 'number' && round <= this.roundValue + (pr ? 0 : 1)) {
        rec.stats.updatesRefused++;
        safeLog(this.log, 'warn', 'late update refused', { nodeId, round, current: this.roundValue });
        throw new ProtocolError('stale', `fedUpdate for round ${round} arrived after its deadline (server at round ${this.roundValue})`, { field: 'round', offendingType: 'fedUpdate' });
      }
      throw new ProtocolError('unexpected', `fedUpdate: round: no model for round ${String(round)} was sent to this node`, { field: 'round', offendingType: 'fedUpdate' });
    }
    if (!pr.asked.has(nodeId)) throw new ProtocolError('unexpected', `fedUpdate: this node was not asked in round ${pr.round}`, { field: 'round', offendingType: 'fedUpdate' });
    if (pr.updates.has(nodeId)) throw new ProtocolError('unexpected', `fedUpdate: round ${pr.round} was already answered`, { field: 'round', offendingType: 'fedUpdate' });
    const { msg, models } = checkFedUpdate(raw, this.opts.layouts, this.opts.maxSampleCount ?? 1e7);
    if (msg.steps !== this.config.localSteps) {
      throw new ProtocolError('invalid_field', `fedUpdate: steps: ${msg.steps} local steps, the session asks for ${this.config.localSteps}`, { field: 'steps', offendingType: 'fedUpdate' });
    }
    if (rec.sampleCount === 0) rec.sampleCount = msg.sampleCount;
    else if (msg.sampleCount !== rec.sampleCount) {
      safeLog(this.log, 'warn', 'node changed its sample count; the first claim is kept', { nodeId, first: rec.sampleCount, now: msg.sampleCount });
    }
    pr.updates.set(nodeId, { nodeId, sampleCount: rec.sampleCount, G: models.G, D: models.D, losses: msg.losses });
    rec.stats.updatesOnTime++;
    rec.stats.lastLosses = msg.losses;
    if (pr.outstanding.delete(nodeId) && pr.outstanding.size === 0) pr.wake();
    return 'accepted';
  }

  // ---- rounds ------------------------------------------------------------------------

  protected async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.opts.maxRounds !== undefined && this.roundValue >= this.opts.maxRounds) {
        this.trainingDone = true;
        safeLog(this.log, 'info', 'training done: telling the nodes', { round: this.roundValue });
        for (const h of this.sessions.handles) this.send(h, this.trainingDoneGoodbye());
        return;
      }
      const ready = [...this.sessions.connected()].map(([id]) => id).sort();
      if (ready.length < Math.max(1, this.opts.minNodes ?? 1)) {
        await this.waitForChange();
        continue;
      }
      const averaged = await this.runRound(ready);
      if (!averaged && !this.stopping) await this.waitForChange(1000);
    }
  }

  /** One round; false when no update could be averaged (the round is then repeated). */
  private async runRound(ready: string[]): Promise<boolean> {
    const t0 = Date.now();
    const in0 = this.totals.bytesIn;
    const out0 = this.totals.bytesOut;
    const round = this.roundValue + 1;
    // configure: one frame, the same bytes for every node.
    const frame = encodeFrame({ type: 'fedModel', round, models: { G: wireModel(this.global.G, this.opts.layouts.G), D: wireModel(this.global.D, this.opts.layouts.D) } });
    let wake!: () => void;
    const woken = new Promise<void>((r) => (wake = r));
    const pr: PendingRound = { round, asked: new Set(), outstanding: new Set(), updates: new Map(), wake };
    this.gathering = pr;
    for (const id of ready) {
      const h = this.sessions.connectionOf(id);
      if (h && !h.closed && this.sendBytes(h, frame)) {
        pr.asked.add(id);
        pr.outstanding.add(id);
      }
    }
    // fit: wait for every asked node, a disconnect, the deadline or stop.
    if (pr.outstanding.size > 0 && !this.stopping) {
      const timer = setTimeout(wake, this.config.roundTimeoutMs);
      await woken;
      clearTimeout(timer);
    }
    this.gathering = undefined;
    for (const id of pr.outstanding) safeLog(this.log, 'warn', 'no update before the deadline', { nodeId: id, round, timeoutMs: this.config.roundTimeoutMs });
    const ups = [...pr.updates.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    if (ups.length === 0) {
      if (!this.stopping) safeLog(this.log, 'warn', 'round had no update; repeating it', { round, asked: [...pr.asked] });
      return false;
    }
    // aggregate: each model separately, the same sample shares.
    const asUpdates = (k: 'G' | 'D'): ModelUpdate[] => ups.map((u) => ({ nodeId: u.nodeId, sampleCount: u.sampleCount, tensors: u[k] }));
    const g = fedAvgModel(this.global.G, asUpdates('G'), this.policy);
    const d = fedAvgModel(this.global.D, asUpdates('D'), this.policy);
    this.global = { G: g.tensors, D: d.tensors };
    this.roundValue = round;
    this.totals.steps++;
    const shares: Record<string, number> = {};
    const clipped: Record<string, number> = {};
    ups.forEach((u, i) => {
      shares[u.nodeId] = g.shares[i]!;
      const s = Math.min(g.scales[i]!, d.scales[i]!);
      if (s < 1) {
        clipped[u.nodeId] = s;
        safeLog(this.log, 'warn', 'update scaled down to its norm bound', { nodeId: u.nodeId, round, scaleG: g.scales[i], scaleD: d.scales[i], deltaNormG: g.deltaNorms[i], deltaNormD: d.deltaNorms[i] });
      }
    });
    const losses = (['dReal', 'dFake', 'gGan', 'gL1'] as const).reduce((acc, k) => {
      acc[k] = ups.reduce((s, u, i) => s + g.shares[i]! * u.losses[k], 0);
      return acc;
    }, {} as Losses);
    const summary: FedRoundSummary = {
      round, asked: [...pr.asked].sort(), onTime: ups.map((u) => u.nodeId), shares, clipped, losses,
      durationMs: Date.now() - t0, bytesIn: this.totals.bytesIn - in0, bytesOut: this.totals.bytesOut - out0,
    };
    this.recent.push(summary);
    if (this.recent.length > 20) this.recent.shift();
    try {
      this.opts.onRound?.(summary);
    } catch {
      /* hook errors are not ours */
    }
    this.roundWaiters.reached(round);
    const every = this.opts.checkpointEvery ?? 10;
    if (every > 0 && round % every === 0) await this.saveCheckpoint();
    return true;
  }

  // ---- checkpoints -------------------------------------------------------------------

  /** Round, session, global G and D, and the nodes' sample counts, as one msgpack blob. */
  checkpointBytes(): Uint8Array {
    const L = this.opts.layouts;
    return encodeFrame({
      format: CHECKPOINT_FORMAT, version: 1, sessionId: this.sessionIdValue, round: this.roundValue,
      models: { G: wireModel(this.global.G, L.G), D: wireModel(this.global.D, L.D) },
      nodes: [...this.nodes.values()].map((n) => ({ id: n.id, sampleCount: n.sampleCount })),
    });
  }


  protected restore(bytes: Uint8Array): void {
    const c = decodeFrame(bytes, Number.MAX_SAFE_INTEGER) as { format?: unknown; version?: unknown; sessionId?: unknown; round?: unknown; models?: unknown; nodes?: unknown };
    if (c.format !== CHECKPOINT_FORMAT || c.version !== 1) throw new Error('not an asyndgan fedavg-gan server checkpoint (version 1)');
    if (typeof c.round !== 'number' || typeof c.sessionId !== 'string' || !Array.isArray(c.nodes)) throw new Error('checkpoint is missing fields');
    // The same checks as a node's update: a model of another shape, or with NaN, is refused.
    const models = decodeModels('checkpoint', c.models, this.opts.layouts);
    this.global = models;
    for (const n of c.nodes as { id?: unknown; sampleCount?: unknown }[]) {
      if (typeof n.id === 'string' && typeof n.sampleCount === 'number') this.node(n.id).sampleCount = n.sampleCount;
    }
    this.roundValue = c.round;
    this.sessionIdValue = c.sessionId;
    safeLog(this.log, 'info', 'resumed from checkpoint', { round: c.round, nodes: this.nodes.size });
  }

  // ---- metrics -----------------------------------------------------------------------

  metrics(): FedAvgMetrics {
    const nodes = [...this.nodes.values()].map((r) => ({ id: r.id, connected: r.connected, sampleCount: r.sampleCount, stats: { ...r.stats } }));
    return {
      algorithm: 'fedavg-gan', sessionId: this.sessionIdValue, round: this.roundValue, nodesConnected: nodes.filter((n) => n.connected).length, nodes,
      totals: { ...this.totals }, lastRound: this.recent[this.recent.length - 1], recentRounds: [...this.recent], checkpoint: { ...this.checkpointHealth },
    };
  }
}
