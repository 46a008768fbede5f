/**
 * What both coordinators (the AsynDGAN Coordinator and the FedAvg-GAN one in src/fedavg) do the
 * same way with connections: attach (turn a newcomer away while stopping or after training, else
 * start its hello deadline), detach, receive (count, decode, hello-first rule, one reject path),
 * send (count and record), start (resume from the checkpoint, start the loop), stop (wake the loop,
 * await it, checkpoint, goodbye and close) and checkpoint saving with its health record.
 * The subclass keeps its rounds, its per-node records and its messages, reached through the
 * abstract hooks below.
 */
import { randomUUID } from 'node:crypto';
import type { CheckpointStore } from './checkpoint.js';
import { decodeFrame, encodeFrame } from './codec.js';
import { StartupError, oneLine } from './errors.js';
import { ChangeSignal, closeConnection, RoundWaiters, sayGoodbyeAndClose, sendOrLog, startHelloTimer } from './lifecycle.js';
import { safeLog, type Logger } from './log.js';
import { GOODBYE_TRAINING_DONE, ProtocolError, errorMessageFor, type GoodbyeMsg, type ValidationLimits } from './protocol.js';
import { ConnHandle, type Connection, type Sessions } from './sessions.js';

/**
 * Per-frame hook (debugging, audits, tests). `bytes` is only valid during the call: copy it to
 * keep it. Incoming hello frames carry the node's token: treat recordings as secrets.
 */
export type FrameRecorder = (e: { direction: 'in' | 'out'; nodeId: string | undefined; bytes: Uint8Array }) => void;

/** What became of one received frame. */
export type FrameOutcome = 'accepted' | 'rejected' | 'closed';

/** The options of either coordinator that this base reads. */
export interface SessionCoordinatorOptions {
  maxErrorsPerConnection?: number;
  helloTimeoutMs?: number;
  onFrame?: FrameRecorder;
  checkpoint?: CheckpointStore;
}

/** Checkpoint writing as /metrics shows it: failures are visible without reading logs. */
export interface CheckpointHealth {
  saves: number;
  failures: number;
  /** Failures since the last successful save (0: healthy). */
  consecutiveFailures: number;
  lastSavedRound: number | undefined;
  lastSavedAt: string | undefined;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
}

/** Byte and rejection counters of one node, as both coordinators keep them. */
export interface FrameStats {
  bytesIn: number;
  bytesOut: number;
  framesRejected: number;
}

export abstract class SessionCoordinator {
  protected abstract readonly opts: SessionCoordinatorOptions;
  protected abstract readonly limits: ValidationLimits;
  protected abstract readonly log: Logger;
  /** Connections and which node each speaks for (sessions.ts). */
  protected abstract readonly sessions: Sessions;
  protected sessionIdValue: string = randomUUID();
  protected roundValue = 0;
  protected started = false;
  protected stopping = false;
  /** maxRounds reached: nodes are told so and sent away. */
  protected trainingDone = false;
  protected loopDone: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  protected readonly changes = new ChangeSignal();
  protected readonly roundWaiters = new RoundWaiters();
  protected readonly totals = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesRejected: 0, steps: 0 };
  protected readonly checkpointHealth: CheckpointHealth = {
    saves: 0, failures: 0, consecutiveFailures: 0, lastSavedRound: undefined, lastSavedAt: undefined, lastError: undefined, lastErrorAt: undefined,
  };

  /** Last finished round. */
  get round(): number {
    return this.roundValue;
  }
  get sessionId(): string {
    return this.sessionIdValue;
  }

  // ---- hooks -------------------------------------------------------------------------

  /** The record of node `nodeId`, when it has one. */
  protected abstract nodeRecord(nodeId: string): { connected: boolean; stats: FrameStats } | undefined;
  /** The round being gathered now: nodes still to answer, and how to end the wait. */
  protected abstract gatheringRound(): { outstanding: Set<string>; wake: () => void } | undefined;
  /** A decoded frame that passed the hello-first rule: validate it and act on it (throw ProtocolError to refuse). */
  protected abstract dispatchFrame(h: ConnHandle, raw: Record<string, unknown>, type: string | undefined): FrameOutcome;
  /** A refused frame (not a stale one) from `h`: count it on the node's record. */
  protected abstract countRejected(h: ConnHandle, type: string | undefined): void;
  /** The round loop start() runs in the background until stop or training done. */
  protected abstract loop(): Promise<void>;
  /** Take over the state in checkpoint `bytes`; throw (one line) when they cannot be resumed from. */
  protected abstract restore(bytes: Uint8Array): void | Promise<void>;
  /** The whole resumable state as one blob. */
  abstract checkpointBytes(): Uint8Array | Promise<Uint8Array>;
  /** start(): after the checkpoint (if any) was loaded, before the loop starts. */
  protected beforeLoop(): void {}
  /** The error log line of a failed checkpoint save. */
  protected checkpointFailedMessage(_c: CheckpointHealth): string {
    return 'checkpoint failed';
  }

  // ---- lifecycle ---------------------------------------------------------------------

  /** Resume from the checkpoint (if any) and start the round loop in the background. */
  async start(): Promise<void> {
    if (this.started) throw new Error('coordinator already started');
    this.started = true;
    const store = this.opts.checkpoint;
    const bytes = await store?.load();
    if (bytes) {
      try {
        await this.restore(bytes);
      } catch (e) {
        if (e instanceof StartupError) throw e;
        throw new StartupError(`checkpoint ${store?.location ?? '(store)'}: cannot resume from it: ${oneLine(e)}`);
      }
    }
    this.beforeLoop();
    this.loopDone = this.loop().catch((e) => safeLog(this.log, 'error', 'round loop crashed', { error: String(e) }));
  }

  /**
   * Stop training, write a final checkpoint, say goodbye to every node, give them `graceMs`
   * to close their side, then close the rest (why wait: see sayGoodbyeAndClose). Idempotent.
   */
  async stop(opts: { reason?: string; graceMs?: number; checkpoint?: boolean } = {}): Promise<void> {
    const reason = opts.reason ?? 'server shutdown';
    const graceMs = opts.graceMs ?? 2000;
    if (this.stopping) {
      await this.stopped;
      return;
    }
    this.stopping = true;
    this.stopped = (async () => {
      this.gatheringRound()?.wake();
      this.notifyChange();
      await this.loopDone;
      if (this.started && opts.checkpoint !== false) await this.saveCheckpoint();
      const bye = this.trainingDone ? this.trainingDoneGoodbye() : { type: 'goodbye' as const, reason };
      await sayGoodbyeAndClose(this.sessions.handles, graceMs, (h) => this.send(h, bye), (h) => {
        this.closeHandle(h, 1001, reason);
        this.detach(h);
      });
      this.roundWaiters.releaseAll();
    })();
    await this.stopped;
  }

  /** Resolves once round `n` has finished (or the coordinator stops); rejects after `timeoutMs`. */
  waitForRound(n: number, timeoutMs: number): Promise<void> {
    return this.roundWaiters.wait(n, () => this.roundValue, this.stopping, timeoutMs);
  }

  // ---- transport entry points --------------------------------------------------------

  /**
   * A connection opened. `identity`: the node id the transport authenticated; the hello must then
   * name it (its token is still checked).
   */
  attach(conn: Connection, remote = '', identity?: string): ConnHandle {
    const h = new ConnHandle(conn, remote, identity);
    this.sessions.handles.add(h);
    if (this.stopping || this.trainingDone) {
      // After the last round a (re)connecting node learns at once that the run is over.
      this.send(h, this.trainingDone ? this.trainingDoneGoodbye() : { type: 'goodbye', reason: 'server shutting down' });
      this.closeHandle(h, 1001, 'server shutting down');
      this.detach(h);
      return h;
    }
    const ms = this.opts.helloTimeoutMs ?? 10000;
    startHelloTimer(h, ms, () => this.reject(h, new ProtocolError('not_authenticated', `no hello within ${ms} ms`, { fatal: true })));
    return h;
  }

  /** A connection closed (by either side). */
  detach(h: ConnHandle): void {
    if (!this.sessions.handles.has(h)) return;
    h.closed = true;
    clearTimeout(h.helloTimer);
    const id = this.sessions.remove(h);
    if (id === undefined) return;
    const rec = this.nodeRecord(id);
    if (rec) rec.connected = false;
    safeLog(this.log, 'info', 'node disconnected', { nodeId: id });
    // The round need not wait for a node that is gone.
    const g = this.gatheringRound();
    if (g && g.outstanding.delete(id) && g.outstanding.size === 0) g.wake();
  }

  /** onDuplicateId 'replace': the connection a new hello took the node's place from is told and closed. */
  protected closeReplaced(previous: ConnHandle): void {
    this.send(previous, errorMessageFor(new ProtocolError('replaced', 'another connection authenticated as this node'), { fatal: true }));
    this.closeHandle(previous, 1008, 'replaced');
    this.detach(previous);
  }

  /** One frame arrived. Never throws. */
  receive(h: ConnHandle, bytes: Uint8Array, isBinary = true): FrameOutcome {
    if (h.closed) return 'closed';
    this.totals.framesIn++;
    this.totals.bytesIn += bytes.byteLength;
    const rec = this.authedStats(h);
    if (rec) rec.bytesIn += bytes.byteLength;
    this.record('in', h.nodeId, bytes);
    let type: string | undefined;
    try {
      if (!isBinary) throw new ProtocolError('bad_frame', 'text frames are not part of the protocol; send binary msgpack');
      const raw = decodeFrame(bytes, this.limits.maxFrameBytes);
      type = typeof raw.type === 'string' ? raw.type.slice(0, 64) : undefined;
      // Before hello nothing else is even validated: an unauthenticated peer learns nothing more.
      if (!h.authed && type !== 'hello') throw new ProtocolError('not_authenticated', `expected hello first, got ${type === undefined ? 'a frame without type' : JSON.stringify(type)}`, { fatal: true });
      // A second hello is refused as such, whatever it contains (even a version we would refuse).
      if (h.authed && type === 'hello') throw new ProtocolError('unexpected', 'already authenticated', { offendingType: 'hello' });
      return this.dispatchFrame(h, raw, type);
    } catch (e) {
      return this.reject(h, e, type);
    }
  }

  // ---- refusing, sending, closing ----------------------------------------------------

  /** Answer a bad frame with an error frame; close on fatal errors, before auth, or on abuse. */
  protected reject(h: ConnHandle, e: unknown, type?: string): FrameOutcome {
    const pe = e instanceof ProtocolError ? e : undefined;
    if (!pe) safeLog(this.log, 'error', 'internal error while handling a frame', { nodeId: h.nodeId, error: String(e) });
    if (pe?.code !== 'stale') {
      h.errors++;
      this.totals.framesRejected++;
      this.countRejected(h, type);
    }
    const tooMany = h.errors > (this.opts.maxErrorsPerConnection ?? 50);
    const fatal = (pe?.fatal ?? false) || !h.authed || tooMany;
    const err = tooMany && !pe?.fatal
      ? errorMessageFor(new ProtocolError('too_many_errors', `closing after ${h.errors} rejected frames; last: ${pe?.message ?? String(e)}`), { fatal: true, ...(type ? { offendingType: type } : {}) })
      : errorMessageFor(e, { fatal, ...(type ? { offendingType: type } : {}) });
    if (pe?.code === 'non_finite' || pe?.code === 'shape_mismatch' || pe?.code === 'invalid_field') {
      safeLog(this.log, 'warn', 'frame rejected', { nodeId: h.nodeId, code: err.code, field: err.field, message: err.message });
    }
    this.send(h, err);
    if (fatal) {
      this.closeHandle(h, pe?.code === 'auth_failed' || tooMany ? 1008 : 1002, err.code);
      return 'closed';
    }
    return 'rejected';
  }

  /** The counters of the node `h` is authenticated as. */
  private authedStats(h: ConnHandle): FrameStats | undefined {
    return h.authed && h.nodeId !== undefined ? this.nodeRecord(h.nodeId)?.stats : undefined;
  }

  private record(direction: 'in' | 'out', nodeId: string | undefined, bytes: Uint8Array): void {
    if (!this.opts.onFrame) return;
    try {
      this.opts.onFrame({ direction, nodeId, bytes });
    } catch {
      /* a faulty recorder must not break the protocol */
    }
  }

  /** Encode and send one message (any message type of either protocol). */
  protected send<M extends { type: string }>(h: ConnHandle, msg: M): boolean {
    return this.sendBytes(h, encodeFrame(msg as unknown as Record<string, unknown>));
  }

  /** Send an encoded frame, counted and recorded; false when closed or the transport refused it. */
  protected sendBytes(h: ConnHandle, bytes: Uint8Array): boolean {
    if (h.closed) return false;
    this.record('out', h.nodeId, bytes);
    this.totals.bytesOut += bytes.byteLength;
    const rec = this.authedStats(h);
    if (rec) rec.bytesOut += bytes.byteLength;
    return sendOrLog(h, bytes, this.log);
  }

  protected closeHandle(h: ConnHandle, code: number, reason: string): void {
    closeConnection(h, code, reason);
  }

  /** Wake the round loop (a join, an upload, stop). */
  protected notifyChange(): void {
    this.changes.notify();
  }

  /** Resolve on the next change, or after `timeoutMs`. No polling. */
  protected waitForChange(timeoutMs?: number): Promise<void> {
    return this.changes.wait(timeoutMs);
  }

  /** Training goes on when a checkpoint cannot be written, but every failure is an error log line and shows in /metrics. */
  protected async saveCheckpoint(): Promise<void> {
    const store = this.opts.checkpoint;
    if (!store) return;
    const c = this.checkpointHealth;
    try {
      await store.save(await this.checkpointBytes());
      c.saves++;
      c.consecutiveFailures = 0;
      c.lastSavedRound = this.roundValue;
      c.lastSavedAt = new Date().toISOString();
      safeLog(this.log, 'info', 'checkpoint saved', { round: this.roundValue });
    } catch (e) {
      c.failures++;
      c.consecutiveFailures++;
      c.lastError = oneLine(e);
      c.lastErrorAt = new Date().toISOString();
      safeLog(this.log, 'error', this.checkpointFailedMessage(c), { round: this.roundValue, location: store.location, error: c.lastError, lastSavedRound: c.lastSavedRound });
    }
  }

  protected trainingDoneGoodbye(): GoodbyeMsg {
    return { type: 'goodbye', reason: `training done: ${this.roundValue} rounds`, code: GOODBYE_TRAINING_DONE };
  }
}
