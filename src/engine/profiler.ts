/**
 * Per-dispatch GPU profiler.
 *
 * ```ts
 * const p = Profiler.start(engine());
 * trainStep();
 * const report = await p.stop();
 * console.log(formatTable(report));                                      // profile-render.ts
 * writeFileSync('trace.json', JSON.stringify(toChromeTrace(report)));   // Perfetto / chrome://tracing
 * ```
 *
 * While attached, the profiler is the recorder's `timer` (see recorder.ts): every dispatch gets its
 * own compute pass. With the device feature 'timestamp-query' (lavapipe and real GPUs grant it),
 * each pass writes a timestamp at its beginning and end into a query set; query sets, their resolve
 * buffers and their readback buffers come in chunks of CHUNK_DISPATCHES dispatches that are
 * recycled once read, so a steady-state loop allocates no GPU object. Timestamps are nanoseconds
 * (Dawn converts the device's ticks with its timestamp period). By default Dawn quantizes them
 * (to 2^16 ns = 65.5 us) against timing attacks; start the engine with PROFILER_DAWN_FLAGS to get
 * nanosecond resolution (the report states the resolution it detected).
 *
 * Without the feature (or with `{ timing: 'cpu' }`), the profiler measures the wall time of each
 * submission on the CPU (submit to `onSubmittedWorkDone`, queued work back to back) and splits it
 * evenly over the dispatches of that submission: per-kernel times are then only a rough estimate,
 * and the report says so.
 *
 * Detached (`engine.recorder.timer === null`), the recorder keeps all dispatches in one pass and
 * the profiler costs nothing.
 */
import type { Engine } from './engine.js';
import type { DispatchTimer } from './recorder.js';

/** Dispatches per query-set chunk (two timestamps each). */
export const CHUNK_DISPATCHES = 256;

/**
 * Dawn flags for `init({ dawnFlags })` that turn off timestamp quantization, so that the profiler
 * sees nanoseconds instead of multiples of 65.5 us. Only for profiling runs.
 */
export const PROFILER_DAWN_FLAGS: readonly string[] = ['disable-dawn-features=timestamp_quantization'];

/** Timestamps at least this coarse are reported as quantized. */
const QUANTIZED_NS = 1000;

export type TimingSource = 'gpu' | 'cpu';

export interface ProfilerOptions {
  /**
   * 'auto' (default): GPU timestamps when the device has 'timestamp-query', else CPU timing.
   * 'gpu' throws without the feature; 'cpu' forces the CPU fallback.
   */
  timing?: 'auto' | TimingSource;
}

/** One profiled dispatch. */
export interface ProfileEvent {
  /** Kernel label "file:entry", e.g. "elementwise.wgsl:unary_forward". */
  kernel: string;
  /** Dispatch order within the profile, from 0. */
  seq: number;
  /** Submission (command buffer) within the profile, from 0. */
  submission: number;
  /** Start, in ms from the first event's start. */
  startMs: number;
  durationMs: number;
  /** The dispatch's declared cost (0 when the op declared none). */
  flops: number;
  bytes: number;
}

/** Aggregate over the dispatches of one kernel (file:entry). */
export interface KernelRow {
  kernel: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  /** Fraction of the summed time of all kernels, 0..1. */
  share: number;
  flops: number;
  bytes: number;
  /** flops / totalMs (0 when the time is 0). */
  gflops: number;
  /** bytes / totalMs (0 when the time is 0). */
  gbps: number;
}

export interface ProfileReport {
  timing: TimingSource;
  /** How to read the times (CPU-side estimate, quantization, pass-per-dispatch overhead). */
  note: string;
  adapter: string;
  /** Detected timestamp granularity in ns (gpu timing; 1 when no coarser quantum was found). */
  resolutionNs: number;
  dispatches: number;
  submissions: number;
  /** Sum of all kernel times. */
  kernelMs: number;
  /** Wall-clock time from start() to the end of stop()'s wait, on the CPU. */
  wallMs: number;
  /** Per kernel, sorted by total time (largest first). */
  rows: KernelRow[];
  /** Every dispatch in order. */
  events: ProfileEvent[];
}

interface DispatchMeta {
  kernel: string;
  seq: number;
  flops: number;
  bytes: number;
}

/** A query set with its resolve and readback buffers, for CHUNK_DISPATCHES dispatches. */
interface Chunk {
  readonly querySet: GPUQuerySet;
  readonly resolveBuffer: GPUBuffer;
  readonly readBuffer: GPUBuffer;
  /** Preallocated timestampWrites, one per slot (no allocation per dispatch). */
  readonly writes: GPUComputePassTimestampWrites[];
  meta: DispatchMeta[];
  submission: number;
}

/** Raw result of one dispatch before normalization. */
interface RawEvent extends DispatchMeta {
  submission: number;
  startNs: number;
  endNs: number;
}

export class Profiler implements DispatchTimer {
  readonly timing: TimingSource;
  /** Query-set chunks ever created (steady-state loops must not increase it). */
  chunksCreated = 0;
  private readonly device: GPUDevice;
  private readonly free: Chunk[] = [];
  /** Chunks written by the command encoder being recorded. */
  private open: Chunk[] = [];
  /** Chunks resolved into the encoder that is being submitted. */
  private resolved: Chunk[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly raw: RawEvent[] = [];
  private readonly allChunks: Chunk[] = [];
  private readonly stamps: bigint[] = [];
  /** CPU timing: dispatches recorded since the last submission. */
  private cpuBatch: DispatchMeta[] = [];
  private cpuLastDone = 0;
  private seq = 0;
  private submission = 0;
  private readonly t0 = performance.now();
  private stopped = false;

  private constructor(private readonly engine: Engine, timing: TimingSource) {
    this.device = engine.device;
    this.timing = timing;
  }

  /**
   * Attaches a profiler to the engine's recorder. Work recorded before this call is submitted
   * first and is not profiled. Only one profiler may be attached at a time.
   */
  static start(engine: Engine, options: ProfilerOptions = {}): Profiler {
    const hasTimestamps = engine.gpu.features.has('timestamp-query');
    const wanted = options.timing ?? 'auto';
    if (wanted === 'gpu' && !hasTimestamps) {
      throw new Error(`Profiler: timing 'gpu' needs the 'timestamp-query' feature, which ${engine.gpu.adapterName} does not offer`);
    }
    if (engine.recorder.timer) throw new Error('Profiler: another profiler (or timer) is already attached to this engine');
    const timing: TimingSource = wanted === 'cpu' || !hasTimestamps ? 'cpu' : 'gpu';
    engine.flush();
    const p = new Profiler(engine, timing);
    engine.recorder.timer = p;
    return p;
  }

  /** Whether this profiler is still attached. */
  get active(): boolean {
    return !this.stopped;
  }

  /** Submits pending work, detaches, waits for every result, and builds the report. */
  async stop(): Promise<ProfileReport> {
    if (this.stopped) throw new Error('Profiler: stop() called twice');
    this.stopped = true;
    try {
      this.engine.flush();
    } finally {
      if (this.engine.recorder.timer === this) this.engine.recorder.timer = null;
    }
    await this.engine.sync();
    await this.engine.waitFor(() => Promise.all(this.pending));
    const wallMs = performance.now() - this.t0;
    for (const c of this.allChunks) {
      c.querySet.destroy();
      c.resolveBuffer.destroy();
      c.readBuffer.destroy();
    }
    this.free.length = 0;
    return this.report(wallMs);
  }

  // --- DispatchTimer -------------------------------------------------------------------------

  /** @internal Called by the recorder for every dispatch while attached. */
  begin(label: string, flops: number, bytes: number): GPUComputePassTimestampWrites | undefined {
    const meta: DispatchMeta = { kernel: label, seq: this.seq++, flops, bytes };
    if (this.timing === 'cpu') {
      this.cpuBatch.push(meta);
      return undefined;
    }
    let chunk = this.open[this.open.length - 1];
    if (!chunk || chunk.meta.length === CHUNK_DISPATCHES) {
      chunk = this.free.pop() ?? this.newChunk();
      this.open.push(chunk);
    }
    const slot = chunk.meta.length;
    chunk.meta.push(meta);
    return chunk.writes[slot];
  }

  /** @internal Resolves this encoder's queries into buffers the CPU can map. */
  resolve(encoder: GPUCommandEncoder): void {
    for (const c of this.open) {
      const bytes = c.meta.length * 16;
      encoder.resolveQuerySet(c.querySet, 0, c.meta.length * 2, c.resolveBuffer, 0);
      encoder.copyBufferToBuffer(c.resolveBuffer, 0, c.readBuffer, 0, bytes);
      c.submission = this.submission;
    }
    this.resolved.push(...this.open);
    this.open = [];
  }

  /** @internal Starts reading the results of the submission that was just made. */
  submitted(): void {
    const submission = this.submission++;
    if (this.timing === 'cpu') {
      this.submittedCpu(submission);
      return;
    }
    for (const c of this.resolved) this.pending.push(this.collect(c));
    this.resolved = [];
  }

  // --- internals -----------------------------------------------------------------------------

  private newChunk(): Chunk {
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * CHUNK_DISPATCHES, label: 'profiler' });
    const size = 16 * CHUNK_DISPATCHES;
    const chunk: Chunk = {
      querySet,
      resolveBuffer: this.device.createBuffer({ size, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }),
      readBuffer: this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      writes: Array.from({ length: CHUNK_DISPATCHES }, (_, k) => ({
        querySet,
        beginningOfPassWriteIndex: 2 * k,
        endOfPassWriteIndex: 2 * k + 1,
      })),
      meta: [],
      submission: 0,
    };
    this.chunksCreated++;
    this.allChunks.push(chunk);
    return chunk;
  }

  private async collect(c: Chunk): Promise<void> {
    const bytes = c.meta.length * 16;
    await c.readBuffer.mapAsync(GPUMapMode.READ, 0, bytes);
    const t = new BigUint64Array(c.readBuffer.getMappedRange(0, bytes));
    c.meta.forEach((m, k) => {
      const start = t[2 * k]!;
      const end = t[2 * k + 1]!;
      this.stamps.push(start, end);
      // Unwritten queries read 0; a reversed pair would be a driver bug: both count as 0 ms.
      const ok = start > 0n && end >= start;
      this.raw.push({ ...m, submission: c.submission, startNs: Number(start), endNs: ok ? Number(end) : Number(start) });
    });
    c.readBuffer.unmap();
    c.meta = [];
    if (!this.stopped) this.free.push(c);
  }

  private submittedCpu(submission: number): void {
    const batch = this.cpuBatch;
    this.cpuBatch = [];
    const submittedAt = performance.now();
    this.pending.push(
      this.device.queue.onSubmittedWorkDone().then(() => {
        const done = performance.now();
        // Work queued behind an earlier submission starts when that one is done.
        const start = Math.max(submittedAt, this.cpuLastDone);
        this.cpuLastDone = done;
        const each = batch.length > 0 ? (done - start) / batch.length : 0;
        batch.forEach((m, k) => {
          const s = (start + k * each) * 1e6;
          this.raw.push({ ...m, submission, startNs: s, endNs: s + each * 1e6 });
        });
      }),
    );
  }

  private resolution(): number {
    if (this.timing === 'cpu' || this.stamps.length < 4) return 1;
    let common = 0n;
    for (const s of this.stamps) if (s > 0n) common |= s;
    if (common === 0n) return 1;
    let q = 1n;
    while ((common & q) === 0n && q < 1n << 40n) q <<= 1n;
    return Number(q);
  }

  private report(wallMs: number): ProfileReport {
    const raw = [...this.raw].sort((a, b) => a.seq - b.seq);
    const origin = raw.reduce((m, e) => Math.min(m, e.startNs), Infinity);
    const events: ProfileEvent[] = raw.map((e) => ({
      kernel: e.kernel,
      seq: e.seq,
      submission: e.submission,
      startMs: (e.startNs - origin) / 1e6,
      durationMs: (e.endNs - e.startNs) / 1e6,
      flops: e.flops,
      bytes: e.bytes,
    }));
    const byKernel = new Map<string, KernelRow>();
    for (const e of events) {
      let row = byKernel.get(e.kernel);
      if (!row) {
        row = { kernel: e.kernel, calls: 0, totalMs: 0, meanMs: 0, share: 0, flops: 0, bytes: 0, gflops: 0, gbps: 0 };
        byKernel.set(e.kernel, row);
      }
      row.calls++;
      row.totalMs += e.durationMs;
      row.flops += e.flops;
      row.bytes += e.bytes;
    }
    const rows = [...byKernel.values()];
    const kernelMs = rows.reduce((s, r) => s + r.totalMs, 0);
    for (const r of rows) {
      r.meanMs = r.totalMs / r.calls;
      r.share = kernelMs > 0 ? r.totalMs / kernelMs : 0;
      r.gflops = r.totalMs > 0 ? r.flops / (r.totalMs * 1e6) : 0;
      r.gbps = r.totalMs > 0 ? r.bytes / (r.totalMs * 1e6) : 0;
    }
    rows.sort((a, b) => b.totalMs - a.totalMs || a.kernel.localeCompare(b.kernel));
    const resolutionNs = this.resolution();
    return {
      timing: this.timing,
      note: this.note(resolutionNs),
      adapter: this.engine.gpu.adapterName,
      resolutionNs,
      dispatches: events.length,
      submissions: this.submission,
      kernelMs,
      wallMs,
      rows,
      events,
    };
  }

  private note(resolutionNs: number): string {
    if (this.timing === 'cpu') {
      return (
        'CPU-side timing: no timestamp queries, so each submission was timed on the CPU (submit to ' +
        'onSubmittedWorkDone) and its time split evenly over its dispatches; per-kernel times are rough estimates.'
      );
    }
    const parts = ['GPU timestamp queries, one compute pass per dispatch (adds pass overhead; compare totals with an unprofiled run).'];
    if (resolutionNs >= QUANTIZED_NS) {
      parts.push(
        `Timestamps are quantized to ${(resolutionNs / 1000).toFixed(1)} us: short kernels read 0 or one quantum, ` +
          'only totals over many calls are meaningful. Start the engine with PROFILER_DAWN_FLAGS for ns resolution.',
      );
    }
    return parts.join(' ');
  }
}
