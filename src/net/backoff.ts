/** Reconnect delays: exponential, capped, jittered (so restarted servers are not stampeded). */

export interface BackoffOptions {
  /** First delay (ms). Default 200. */
  initialDelayMs?: number;
  /** Cap (ms). Default 5000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay that is randomized, 0..1: delay * (1 - jitter * u), u uniform. Default 0.5. */
  jitter?: number;
}

/** Delay before reconnect attempt `attempt` (0-based). `rand` returns uniform [0, 1). */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, rand: () => number = Math.random): number {
  const initial = opts.initialDelayMs ?? 200;
  const max = opts.maxDelayMs ?? 5000;
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const base = Math.min(max, initial * factor ** Math.min(attempt, 64));
  return Math.max(0, Math.round(base * (1 - jitter * rand())));
}
