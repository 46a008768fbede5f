/**
 * How the process waits for the GPU.
 *
 * dawn.node settles its promises (onSubmittedWorkDone, mapAsync, popErrorScope) by polling the
 * device from `setImmediate` callbacks that re-schedule themselves until nothing is pending: a
 * busy loop that keeps one CPU core at 100% for the whole wait. With a real GPU that core would
 * idle anyway. With a CPU adapter (lavapipe) it is taken from the "GPU" itself: on a 2-core
 * machine a convolution ran 1.85x slower because of it (10 forward passes: 653 ms with the main
 * thread spinning for 500 ms of them, 354 ms with this module's polling).
 *
 * While the engine waits, `globalThis.setImmediate` is therefore replaced by a timer of
 * `intervalMs` (dawn.node looks the function up at every poll). Other code that calls
 * setImmediate during such a wait is delayed by up to that interval too; outside waits nothing
 * changes. Waits nest and overlap safely (the original is restored when the last one ends).
 */

let depth = 0;
let original: typeof setImmediate | null = null;

function install(intervalMs: number): void {
  if (depth++ > 0) return;
  original = globalThis.setImmediate;
  const throttled = (callback: (...args: unknown[]) => void, ...args: unknown[]) => setTimeout(callback, intervalMs, ...args);
  globalThis.setImmediate = Object.assign(throttled, { __promisify__: original.__promisify__ }) as unknown as typeof setImmediate;
}

function uninstall(): void {
  if (--depth > 0) return;
  globalThis.setImmediate = original!;
  original = null;
}

/** Runs `work` (which awaits Dawn) with the device polled every `intervalMs` ms; 0: Dawn's busy loop. */
export async function waitGently<T>(intervalMs: number, work: () => Promise<T>): Promise<T> {
  if (!(intervalMs > 0)) return work();
  install(intervalMs);
  try {
    return await work();
  } finally {
    uninstall();
  }
}

/** Default interval: 1 ms on CPU adapters, busy polling (0) on GPUs. Env: ASYNDGAN_POLL_MS. */
export function defaultPollInterval(software: boolean, override?: number): number {
  const env = process.env.ASYNDGAN_POLL_MS;
  const value = override ?? (env !== undefined && env !== '' ? Number(env) : software ? 1 : 0);
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`poll interval must be a number of milliseconds >= 0, got ${override ?? env}`);
  }
  return value;
}
