/**
 * The query guard: how often, and with what, the server may ask about a key.
 *  - Each key is answered at most `maxQueries` times within any `window` consecutive replies of
 *    this node. The clock is the node's own count of replies sent (not the server's round
 *    numbers, which the server could jump ahead to open a fresh window), and refused requests
 *    do not advance it.
 *  - Fakes must lie in the generator's output range ([-1, 1] for tanh, with a small tolerance for
 *    f16 rounding): values outside it can only come from a crafted request.
 * What a refusal reveals depends only on what the server sent, never on the node's images.
 */

export interface QueryGuardState {
  /** For each key, the reply numbers (clock values) at which it was answered, within the window. */
  answered: Record<string, number[]>;
}

export class QueryGuard {
  private readonly answered = new Map<string, number[]>();

  constructor(readonly maxQueries: number, readonly window: number) {
    if (!Number.isInteger(maxQueries) || maxQueries < 1) throw new RangeError(`max queries per key must be an integer >= 1, got ${maxQueries}`);
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`query window must be an integer >= 1 (replies), got ${window}`);
  }

  /**
   * Why answering `keys` as reply number `clock` would break the limit, or undefined when it
   * would not. Nothing is recorded.
   */
  check(keys: readonly string[], clock: number): string | undefined {
    for (const k of new Set(keys)) {
      const recent = this.recent(k, clock);
      const asked = keys.filter((x) => x === k).length;
      if (recent.length + asked > this.maxQueries) {
        return `key ${JSON.stringify(k)} was answered ${recent.length} time(s) in the last ${this.window} replies; ` +
          `this node answers a key at most ${this.maxQueries} time(s) per ${this.window} replies`;
      }
    }
    return undefined;
  }

  /** Record that `keys` were answered in reply number `clock`. */
  record(keys: readonly string[], clock: number): void {
    for (const k of keys) {
      const recent = this.recent(k, clock);
      recent.push(clock);
      this.answered.set(k, recent);
    }
  }

  /** The answers still inside the window ending at reply `clock` (older ones are dropped: the state stays <= keys x K). */
  toState(clock: number): QueryGuardState {
    const answered: Record<string, number[]> = {};
    for (const [k, v] of this.answered) {
      const kept = v.filter((c) => c > clock - this.window);
      if (kept.length > 0) answered[k] = kept;
    }
    return { answered };
  }

  restore(state: unknown): void {
    const s = state as Partial<QueryGuardState> | undefined;
    if (!s || typeof s.answered !== 'object' || s.answered === null) throw new Error('query guard state: missing "answered"');
    this.answered.clear();
    for (const [k, v] of Object.entries(s.answered)) {
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new Error(`query guard state: bad entry for key ${JSON.stringify(k)}`);
      this.answered.set(k, [...v]);
    }
  }

  /** Answers of `key` inside the window ending at `clock` (older ones are forgotten). */
  private recent(key: string, clock: number): number[] {
    const all = this.answered.get(key) ?? [];
    const kept = all.filter((c) => c > clock - this.window);
    if (kept.length !== all.length) {
      if (kept.length === 0) this.answered.delete(key);
      else this.answered.set(key, kept);
    }
    return kept;
  }
}

/** Tolerance on the [-1, 1] range: f16 rounds values near 1 by up to 2^-11; 1e-3 covers it. */
export const RANGE_TOLERANCE = 1e-3;

/** Index and value of the first element outside [-limit - tol, limit + tol], or undefined. */
export function firstOutOfRange(x: Float32Array, limit = 1, tol = RANGE_TOLERANCE): { index: number; value: number } | undefined {
  const hi = limit + tol;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!(v >= -hi && v <= hi)) return { index: i, value: v };
  }
  return undefined;
}
