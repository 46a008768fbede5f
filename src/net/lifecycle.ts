/**
 * Connection and round lifecycle pieces both coordinators share (the AsynDGAN Coordinator and the
 * FedAvg-GAN one in src/fedavg): promises for "round n finished", the hello deadline of a new
 * connection, and the goodbye-then-grace close of every connection on stop.
 */
import { safeLog, type Logger } from './log.js';
import type { ConnHandle } from './sessions.js';

/** Callers waiting for a round to finish (waitForRound). */
export class RoundWaiters {
  private waiters: { n: number; resolve: () => void }[] = [];

  /**
   * Resolves once round `n` has finished (at once when `current >= n` or `stopping`); rejects
   * after `timeoutMs`. `current` is read again for the error message.
   */
  wait(n: number, current: () => number, stopping: boolean, timeoutMs: number): Promise<void> {
    if (current() >= n || stopping) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const entry = { n, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== entry);
        reject(new Error(`round ${n} not reached within ${timeoutMs} ms (at ${current()})`));
      }, timeoutMs);
      this.waiters.push(entry);
    });
  }

  /** Round `round` finished: release everyone waiting for it or an earlier one. */
  reached(round: number): void {
    this.waiters = this.waiters.filter((w) => {
      if (round >= w.n) w.resolve();
      return round < w.n;
    });
  }

  /** The coordinator stopped: release everyone. */
  releaseAll(): void {
    for (const w of this.waiters.splice(0)) w.resolve();
  }
}

/** Give a new connection `ms` to authenticate; `onTimeout` runs if it has not by then (and is still open). */
export function startHelloTimer(h: ConnHandle, ms: number, onTimeout: () => void): void {
  h.helloTimer = setTimeout(() => {
    if (!h.authed && !h.closed) onTimeout();
  }, ms);
  h.helloTimer.unref?.();
}

/**
 * Send `bye` on every connection, give the nodes `graceMs` to close their side, then close the rest.
 * Why wait: the side that closes a TCP connection first keeps its port in TIME_WAIT; when the
 * nodes close first, a restarted server can bind the same port at once.
 */
export async function sayGoodbyeAndClose(
  handles: Set<ConnHandle>, graceMs: number,
  sendBye: (h: ConnHandle) => void, close: (h: ConnHandle) => void,
): Promise<void> {
  for (const h of handles) sendBye(h);
  const deadline = Date.now() + graceMs;
  while (handles.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const h of [...handles]) close(h);
}

/** Close a connection once (after flushing what was sent); a connection already gone is fine. */
export function closeConnection(h: ConnHandle, code: number, reason: string): void {
  if (h.closed) return;
  h.closed = true;
  clearTimeout(h.helloTimer);
  try {
    h.conn.close(code, reason);
  } catch {
    /* already gone */
  }
}

/** Send one encoded frame; false (logged) when the transport throws. */
export function sendOrLog(h: ConnHandle, bytes: Uint8Array, log: Logger): boolean {
  try {
    return h.conn.send(bytes);
  } catch (e) {
    safeLog(log, 'warn', 'send failed', { nodeId: h.nodeId, error: String(e) });
    return false;
  }
}

/** Wakes the round loop on a join, an upload or stop, without polling. */
export class ChangeSignal {
  private waiters: (() => void)[] = [];

  /** Something changed: wake every waiter. */
  notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolve on the next notify(), or after `timeoutMs`. */
  wait(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve();
      }, timeoutMs);
      this.waiters.push(done);
    });
  }
}
