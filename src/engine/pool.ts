/**
 * GPU buffer pool. Buffers are recycled by size class so that, once a training step has run,
 * later steps find every buffer they need in the pool and allocate nothing new.
 *
 * Reuse is safe without fences because every use of a buffer is recorded into the one command
 * stream in program order (see recorder.ts): a buffer released after its last recorded reader can
 * be handed to a later op, whose writes are ordered after those reads on the GPU.
 */

// GPUBufferUsage flags (numeric, so this module loads before Dawn installs its globals).
const STORAGE_USAGE = 0x0080 | 0x0004 | 0x0008; // STORAGE | COPY_SRC | COPY_DST

/** Counters for tests and profiling. */
export interface PoolStats {
  /** GPU buffers ever created by the pool. A steady-state training step must not increase it. */
  created: number;
  /** Requests served from the free lists. */
  reused: number;
  /** Bytes held by live (acquired) buffers. */
  bytesInUse: number;
  /** High-water mark of bytesInUse. */
  peakBytesInUse: number;
  /** Bytes of every buffer the pool owns, free or in use. */
  bytesAllocated: number;
}

/** Rounds a byte size up to its class: 2^k, 1.25*2^k, 1.5*2^k or 1.75*2^k (at most 25% waste). */
export function sizeClass(bytes: number): number {
  const n = Math.max(bytes, 256);
  const top = 2 ** Math.floor(Math.log2(n));
  if (top === n) return n;
  const step = top / 4;
  return Math.ceil(n / step) * step;
}

export class BufferPool {
  /**
   * Free buffers per size class, sorted by descending creation order so that pop() returns the
   * OLDEST free buffer. Handing out buffers in a canonical order (rather than last released first)
   * makes a repeated step get the very same buffers every time, so the recorder's bind-group cache
   * hits: which buffer an op gets depends only on which are free, not on release order.
   */
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly order = new WeakMap<GPUBuffer, number>();
  private created = 0;
  readonly stats: PoolStats = { created: 0, reused: 0, bytesInUse: 0, peakBytesInUse: 0, bytesAllocated: 0 };

  constructor(private readonly device: GPUDevice) {}

  /** A storage buffer of at least `bytes` bytes; its contents are undefined. */
  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.reused++;
    } else {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
      this.order.set(buffer, this.created++);
      this.stats.created++;
      this.stats.bytesAllocated += size;
    }
    this.stats.bytesInUse += size;
    this.stats.peakBytesInUse = Math.max(this.stats.peakBytesInUse, this.stats.bytesInUse);
    return buffer;
  }

  /** Returns a buffer obtained from `acquire` to its free list. */
  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    this.stats.bytesInUse -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    const rank = this.order.get(buffer) ?? -1;
    let at = list.length; // insert before the first entry older than this buffer
    while (at > 0 && (this.order.get(list[at - 1]!) ?? -1) < rank) at--;
    list.splice(at, 0, buffer);
  }

  /** Destroys every free buffer (e.g. after a change of model size). Live buffers are untouched. */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) {
        this.stats.bytesAllocated -= b.size;
        b.destroy();
      }
    }
    this.free.clear();
  }

  /** Resets the peak counter, e.g. before measuring one step. */
  resetPeak(): void {
    this.stats.peakBytesInUse = this.stats.bytesInUse;
  }
}
