/**
 * The command stream. Ops record dispatches into one open command encoder; it is submitted when a
 * value is needed on the CPU (a readback), an upload must be ordered after recorded work, the user
 * calls `flush()`, or `flushEvery` dispatches have piled up. A training step therefore becomes a
 * few large submissions: the device starts on the first while the CPU still records the rest
 * (on a real GPU recording a step costs about a fifth of the step, and would otherwise add to it).
 *
 * Uniform parameters of all dispatches in a submission live in one "arena" buffer, written with a
 * single `writeBuffer` just before the submit, so recording never touches the queue.
 */
import { KernelError } from './errors.js';
import type { CachedPipeline } from './kernels.js';

const UNIFORM_ALIGN = 256;
const ARENA_BYTES = 1 << 20;
/** Bind groups kept for reuse; the cache is emptied when it outgrows this. */
const BIND_GROUP_CACHE = 8192;
/** Default for `Recorder.flushEvery`. */
export const DEFAULT_FLUSH_EVERY = 128;

/** One storage binding: a buffer and the byte range a kernel may touch. */
export interface Binding {
  buffer: GPUBuffer;
  size: number;
  /** Byte offset in `buffer` (a multiple of 256; default 0). */
  offset?: number;
}

/** Timing hook used by the profiler; each dispatch then gets its own compute pass. */
export interface DispatchTimer {
  /** Returns timestampWrites for the pass of this dispatch, or undefined to skip. */
  begin(label: string, flops: number, bytes: number): GPUComputePassTimestampWrites | undefined;
  /** Called with the encoder right before it is finished, to resolve queries. */
  resolve(encoder: GPUCommandEncoder): void;
  /** Called after submission. */
  submitted(): void;
}

export class Recorder {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: GPUBuffer;
  private readonly arenaBytes = new Uint8Array(ARENA_BYTES);
  private arenaUsed = 0;
  private batchFiles = new Set<string>();
  private readonly scopes: Promise<KernelError | null>[] = [];
  private scopeOpen = false;
  private readonly staging = new Map<number, GPUBuffer[]>();
  /** Counters: submissions, dispatches and buffer copies since creation. */
  submits = 0;
  dispatches = 0;
  copies = 0;
  timer: DispatchTimer | null = null;
  /** Wraps every wait on the device (set by the engine: polling.ts). */
  waitFor: <T>(work: () => Promise<T>) => Promise<T> = (work) => work();
  /** Submit after this many dispatches in one encoder (0: only on demand). */
  flushEvery = DEFAULT_FLUSH_EVERY;
  private pending = 0;
  /**
   * Bind groups by (pipeline, uniform range, storage buffers): creating one costs about as much as
   * the rest of a dispatch's recording together, and a training loop's steps repeat the same
   * pipelines on the same pooled buffers at the same arena offsets, so nearly all are reused.
   */
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  /** Bind groups created and reused (the steady state should only reuse). */
  readonly bindGroupStats = { created: 0, reused: 0 };

  constructor(private readonly device: GPUDevice) {
    this.arena = this.newArena();
  }

  /** Records one compute dispatch. */
  dispatch(
    kernel: CachedPipeline,
    uniforms: Uint8Array | null,
    storage: Binding[],
    workgroups: readonly [number, number?, number?],
    cost?: { flops: number; bytes: number },
    tag?: string,
  ): void {
    if (uniforms && this.arenaUsed + uniforms.byteLength > ARENA_BYTES) this.flush();
    const encoder = this.open();
    const uniformOffset = this.arenaUsed;
    if (uniforms) {
      this.arenaBytes.set(uniforms, uniformOffset);
      this.arenaUsed += Math.ceil(uniforms.byteLength / UNIFORM_ALIGN) * UNIFORM_ALIGN;
    }
    const group = this.bindGroup(kernel, uniforms ? uniformOffset : -1, uniforms?.byteLength ?? 0, storage);
    this.batchFiles.add(kernel.file);

    const timestampWrites = this.timer?.begin(tag ? `${kernel.label}[${tag}]` : kernel.label, cost?.flops ?? 0, cost?.bytes ?? 0);
    if (timestampWrites) {
      this.endPass();
      const pass = encoder.beginComputePass({ timestampWrites });
      this.encodeDispatch(pass, kernel, group, workgroups);
      pass.end();
    } else {
      this.pass ??= encoder.beginComputePass();
      this.encodeDispatch(this.pass, kernel, group, workgroups);
    }
    this.dispatches++;
    if (++this.pending >= this.flushEvery && this.flushEvery > 0) this.flush();
  }

  private bindGroup(kernel: CachedPipeline, uniformOffset: number, uniformBytes: number, storage: Binding[]): GPUBindGroup {
    let key = `${kernel.id}:${uniformOffset}:${uniformBytes}`;
    for (const b of storage) key += `:${this.bufferId(b.buffer)}@${b.offset ?? 0}/${b.size}`;
    const hit = this.groups.get(key);
    if (hit) {
      this.bindGroupStats.reused++;
      return hit;
    }
    const entries: GPUBindGroupEntry[] = [];
    if (uniformOffset >= 0) {
      entries.push({ binding: 0, resource: { buffer: this.arena, offset: uniformOffset, size: uniformBytes } });
    }
    storage.forEach((b, i) =>
      entries.push({ binding: i + 1, resource: { buffer: b.buffer, offset: b.offset ?? 0, size: alignUp(b.size, 4) } }),
    );
    const group = this.device.createBindGroup({ layout: kernel.layout, entries });
    if (this.groups.size >= BIND_GROUP_CACHE) this.groups.clear();
    this.groups.set(key, group);
    this.bindGroupStats.created++;
    return group;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) this.bufferIds.set(buffer, (id = this.nextBufferId++));
    return id;
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    const encoder = this.open();
    this.endPass();
    encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.copies++;
  }

  /** Uploads bytes into a buffer, ordered after everything recorded so far. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    if (this.encoder) this.flush();
    let view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // Dawn crashes on views of SharedArrayBuffer (see NOTES.md): copy those.
    if (typeof SharedArrayBuffer !== 'undefined' && data.buffer instanceof SharedArrayBuffer) view = view.slice();
    if (view.byteLength % 4 !== 0) {
      const padded = new Uint8Array(alignUp(view.byteLength, 4));
      padded.set(view);
      view = padded;
    }
    this.device.queue.writeBuffer(buffer, offset, view);
  }

  /** Submits everything recorded. Cheap when nothing is pending. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    this.timer?.resolve(this.encoder);
    const commands = this.encoder.finish();
    if (this.arenaUsed > 0) this.device.queue.writeBuffer(this.arena, 0, this.arenaBytes, 0, this.arenaUsed);
    this.device.queue.submit([commands]);
    this.timer?.submitted();
    this.encoder = null;
    this.arenaUsed = 0;
    this.pending = 0;
    this.submits++;
    // The arena may still be read by the submitted work; writeBuffer for the next batch is ordered
    // after this submit on the queue timeline, so the same arena buffer can be reused.
  }

  /** Submits pending work, waits for the GPU, and throws any error the GPU reported. */
  async sync(): Promise<void> {
    this.flush();
    await this.waitFor(async () => {
      await this.device.queue.onSubmittedWorkDone();
      await this.checkErrors();
    });
  }

  /** Copies `bytes` bytes of a buffer (from byte `offset`, a multiple of 4) back to the CPU. */
  read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    return this.waitFor(() => this.readNow(buffer, bytes, offset));
  }

  private async readNow(buffer: GPUBuffer, bytes: number, offset: number): Promise<ArrayBuffer> {
    const size = alignUp(Math.max(bytes, 4), 4);
    const stagingSize = 2 ** Math.ceil(Math.log2(Math.max(size, 256)));
    const staging = this.staging.get(stagingSize)?.pop() ??
      this.device.createBuffer({ size: stagingSize, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.copy(buffer, offset, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, size);
    } catch (err) {
      await this.checkErrors();
      throw err;
    }
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    let list = this.staging.get(stagingSize);
    if (!list) this.staging.set(stagingSize, (list = []));
    list.push(staging);
    await this.checkErrors();
    return out;
  }

  /**
   * Closes the error scope that has been open since the last sync point and throws what it caught.
   * One scope per sync point rather than per submission: a pending popErrorScope keeps dawn.node
   * polling on the main thread, which steals CPU from the (software) GPU's worker threads.
   */
  private async checkErrors(): Promise<void> {
    if (this.scopeOpen) {
      this.scopeOpen = false;
      const files = [...this.batchFiles];
      this.batchFiles = new Set();
      this.scopes.push(
        this.device.popErrorScope().then((err) =>
          err ? new KernelError(`GPU error in work using shaders ${files.join(', ')}: ${err.message}`, files) : null,
        ),
      );
    }
    const results = await Promise.all(this.scopes.splice(0));
    const errors = results.filter((e): e is KernelError => e !== null);
    if (errors.length > 0) {
      throw new KernelError(errors.map((e) => e.message).join('\n'), errors.flatMap((e) => e.shaderFiles));
    }
  }

  private open(): GPUCommandEncoder {
    if (!this.encoder) {
      if (!this.scopeOpen) {
        this.device.pushErrorScope('validation');
        this.scopeOpen = true;
      }
      this.encoder = this.device.createCommandEncoder();
    }
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private encodeDispatch(
    pass: GPUComputePassEncoder,
    kernel: CachedPipeline,
    group: GPUBindGroup,
    [x, y = 1, z = 1]: readonly [number, number?, number?],
  ): void {
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(x, y, z);
  }

  private newArena(): GPUBuffer {
    return this.device.createBuffer({ size: ARENA_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
