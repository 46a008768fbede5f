/**
 * Benchmark plumbing shared by the implementations: the Runner contract, interleaved timing with
 * warm-up and medians, and the result records written to JSON.
 */

/** Who is measured. 'ours' is this engine; the rest are peers on the same machine. */
export type Impl = 'ours' | 'tfjs-webgpu' | 'ort-webgpu' | 'ort-cpu' | 'torch-cpu';
export const IMPLS: readonly Impl[] = ['ours', 'tfjs-webgpu', 'ort-webgpu', 'ort-cpu', 'torch-cpu'];

/**
 * One measurable thing. `run()` is timed and must not return before the device has finished the
 * work (ours: `await engine().sync()`; tfjs: submit and await the queue; onnxruntime: `run()`
 * resolves with its outputs). `prepare()` and `after()` run untimed around every `run()`.
 */
export interface Runner {
  prepare?(): Promise<void> | void;
  run(): Promise<void>;
  after?(): Promise<void> | void;
  dispose(): Promise<void> | void;
  /** GPU memory of the runs so far (our training steps). */
  memory?(): StepMemory;
  /** Dispatches recorded by each run() so far (ours). */
  dispatches?(): number[];
}

/** Our buffer pool around repeated training steps. */
export interface StepMemory {
  /** Most bytes held by live tensors at any point of a step (weights, Adam moments and batch included). */
  peakBytesInUse: number;
  /** Bytes of every buffer the pool owns afterwards, free or in use. */
  bytesAllocated: number;
  /** Steps after the first two (which fill the pool), and the GPU buffers they created (0: nothing allocated). */
  steadySteps: number;
  buffersCreatedInSteadySteps: number;
}

export interface Timing {
  /** Median of the timed runs, ms. */
  medianMs: number;
  runsMs: number[];
}

export interface CaseResult {
  /** Workload name, e.g. "conv3x3 64->64 @128". */
  workload: string;
  /** fwd, dgrad (input gradient), wgrad (weight gradient), train (fwd + both), step, ... */
  mode: string;
  /** Nominal floating-point operations of one run (see docs/BENCHMARKS.md for the conventions). */
  flops: number;
  /** Per implementation: a timing, or why there is none. */
  impls: Partial<Record<Impl, Timing | { skipped: string }>>;
  /** Our memory over the runs (training steps only). */
  memory?: StepMemory;
  /** Our GPU dispatches per run (median over the timed and warm-up runs; training steps). */
  dispatches?: number;
  /** Peer median / our median (> 1: we are faster), per peer measured in this run. */
  speedup: Partial<Record<Exclude<Impl, 'ours'>, number>>;
  /** GFLOP/s per implementation (nominal flops / median). */
  gflops: Partial<Record<Impl, number>>;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface MeasureOptions {
  warmup: number;
  /** Upper bound on timed runs per implementation. */
  repeats: number;
  /** At least this many timed runs (when repeats allows). */
  minRepeats: number;
  /** Soft time budget for the timed runs of one case, all implementations together (ms). */
  caseBudgetMs: number;
}

/**
 * Idle time before each timed run (env BENCH_SETTLE_MS). A peer's worker threads keep spinning
 * after its run returns, on the cores the next implementation then runs on: measured for the
 * PyTorch peer's OpenMP pool (libgomp spins before it sleeps), 7 ms of CPU within 20 ms of each
 * G step's reply, none after. Without the pause that CPU was billed to whoever ran next.
 */
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 100);

async function timeOnce(r: Runner): Promise<number> {
  await r.prepare?.();
  if (SETTLE_MS > 0) await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  const t0 = performance.now();
  await r.run();
  const ms = performance.now() - t0;
  await r.after?.();
  return ms;
}

/**
 * Warms every runner up, then times them interleaved (ours, peer, peer, ours, ...), so that load
 * from elsewhere on the machine hits all implementations alike. The number of timed runs adapts to
 * the case budget: after one timed round, it is floor(budget / round time), clamped to
 * [minRepeats, repeats].
 */
export async function measure(runners: Map<Impl, Runner>, o: MeasureOptions): Promise<Map<Impl, number[]>> {
  const times = new Map<Impl, number[]>();
  for (const [impl, r] of runners) {
    for (let i = 0; i < o.warmup; i++) await timeOnce(r);
    times.set(impl, []);
  }
  let round = 0;
  let rounds = o.repeats;
  while (round < rounds) {
    let roundMs = 0;
    for (const [impl, r] of runners) {
      const ms = await timeOnce(r);
      times.get(impl)!.push(ms);
      roundMs += ms;
    }
    if (round === 0) {
      rounds = Math.max(Math.min(o.repeats, o.minRepeats), Math.min(o.repeats, Math.floor(o.caseBudgetMs / Math.max(roundMs, 1e-3))));
    }
    round++;
  }
  return times;
}

/** Fixed-width table of results: per case our time and GFLOP/s, then each peer's time and ratio. */
export function formatResults(results: readonly CaseResult[], peers: readonly Exclude<Impl, 'ours'>[]): string {
  const head = ['workload', 'mode', 'ours ms', 'GFLOP/s'];
  for (const p of peers) head.push(`${p} ms`, `GFLOP/s`, 'speedup');
  const ms = (t: Timing | { skipped: string } | undefined) =>
    !t ? '-' : 'medianMs' in t ? (t.medianMs >= 100 ? t.medianMs.toFixed(0) : t.medianMs.toFixed(2)) : 'n/a';
  const gf = (v: number | undefined) => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v.toFixed(2));
  const body = results.map((r) => {
    const row = [r.workload, r.mode, ms(r.impls.ours), gf(r.gflops.ours)];
    for (const p of peers) {
      const s = r.speedup[p];
      row.push(ms(r.impls[p]), gf(r.gflops[p]), s === undefined ? '-' : `${s.toFixed(2)}x`);
    }
    return row;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** Builds a CaseResult from the raw times. */
export function summarize(workload: string, mode: string, flops: number, times: Map<Impl, number[]>, skipped: Map<Impl, string>): CaseResult {
  const r: CaseResult = { workload, mode, flops, impls: {}, speedup: {}, gflops: {} };
  for (const [impl, runs] of times) {
    const m = median(runs);
    r.impls[impl] = { medianMs: m, runsMs: runs.map((x) => Math.round(x * 1000) / 1000) };
    if (flops > 0) r.gflops[impl] = flops / (m * 1e6);
  }
  for (const [impl, why] of skipped) r.impls[impl] = { skipped: why };
  const ours = times.get('ours');
  if (ours) {
    const o = median(ours);
    for (const [impl, runs] of times) if (impl !== 'ours') r.speedup[impl as Exclude<Impl, 'ours'>] = median(runs) / o;
  }
  return r;
}
