/**
 * Tensors: a shape over reference-counted GPU storage. `reshape` makes a view sharing the storage;
 * storage returns to the pool when its last tensor is disposed.
 */
import { engine, type Engine } from './engine.js';
import { DisposedError, ShapeError } from './errors.js';
import type { Binding } from './recorder.js';
import { track } from './scope.js';
import type { GradNode } from './autograd.js';

/** Element type. Only f32 is computed today; f16 is reserved for storage and transport. */
export type DType = 'f32';

/**
 * Reference-counted GPU memory holding a tensor's elements: a pooled buffer of its own, or (after
 * `relocate`) a 256-byte-aligned range of a buffer someone else owns, such as an optimizer's
 * parameter arena.
 */
export class Storage {
  private refs = 1;
  private buf: GPUBuffer;
  private at = 0;
  private pooled = true;
  constructor(
    readonly engine: Engine,
    buffer: GPUBuffer,
    readonly bytes: number,
  ) {
    this.buf = buffer;
  }

  get buffer(): GPUBuffer {
    return this.buf;
  }

  /** Byte offset of the elements in `buffer`. */
  get offset(): number {
    return this.at;
  }

  retain(): this {
    if (this.refs <= 0) throw new DisposedError('tensor storage used after release');
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0 && this.pooled) this.engine.pool.release(this.buf);
  }

  /**
   * Moves the elements to `buffer` at `offset` (the caller has recorded the copy): owned by the
   * caller (null) or, with `pooled`, a fresh pool buffer that returns to the pool with this storage.
   * A pooled buffer left behind returns to the pool now; work recorded earlier still reads it first.
   */
  relocate(buffer: GPUBuffer, offset: number, pooled: boolean): void {
    if (this.refs <= 0) throw new DisposedError('tensor storage used after release');
    if (this.pooled) this.engine.pool.release(this.buf);
    this.buf = buffer;
    this.at = offset;
    this.pooled = pooled;
  }
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`invalid shape [${shape.join(', ')}]`);
  }
}

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType = 'f32';
  /** Whether gradients flow to this tensor. Set on parameters; propagated by ops. */
  requiresGrad = false;
  /** Accumulated gradient (leaves only). */
  grad: Tensor | null = null;
  /** @internal The op that produced this tensor, for backward. */
  node: GradNode | null = null;
  /** Optional name (parameters), used in errors and checkpoints. */
  name?: string;
  private storage: Storage | null;

  /** @internal Use the creation ops (`tensor`, `zeros`, ...) instead. */
  constructor(shape: readonly number[], storage: Storage) {
    checkShape(shape);
    this.shape = Object.freeze([...shape]);
    this.size = numel(shape);
    if (storage.bytes < this.size * 4) throw new ShapeError('storage smaller than shape');
    this.storage = storage;
    track(this);
  }

  /** @internal A tensor with fresh (uninitialized) pooled storage. */
  static empty(shape: readonly number[], e: Engine = engine()): Tensor {
    checkShape(shape);
    const bytes = Math.max(numel(shape), 1) * 4;
    return new Tensor(shape, new Storage(e, e.pool.acquire(bytes), bytes));
  }

  get engine(): Engine {
    return this.live().engine;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  /** @internal GPU buffer with the byte range of this tensor. */
  binding(): Binding {
    const s = this.live();
    const b: Binding = { buffer: s.buffer, size: Math.max(this.size, 1) * 4 };
    if (s.offset > 0) b.offset = s.offset;
    return b;
  }

  /** @internal The GPU buffer (the elements start at `byteOffset`). */
  get buffer(): GPUBuffer {
    return this.live().buffer;
  }

  /** @internal Byte offset of the elements in `buffer` (0 unless an optimizer holds them). */
  get byteOffset(): number {
    return this.live().offset;
  }

  /** @internal The storage, for optimizers that move parameters into their arenas. */
  get storageForRelocation(): Storage {
    return this.live();
  }

  /** @internal Another tensor object sharing this storage (used to keep saved values alive). */
  share(shape: readonly number[] = this.shape): Tensor {
    if (numel(shape) !== this.size) {
      throw new ShapeError(`cannot view [${this.shape.join(', ')}] as [${shape.join(', ')}]`);
    }
    return new Tensor(shape, this.live().retain());
  }

  /** Copies the elements back to the CPU (submits pending GPU work). */
  async read(): Promise<Float32Array> {
    const s = this.live();
    const bytes = await s.engine.recorder.read(s.buffer, this.size * 4, s.offset);
    return new Float32Array(bytes);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item() needs one element, tensor has shape [${this.shape.join(', ')}]`);
    return (await this.read())[0]!;
  }

  /** Releases the GPU storage (shared storage is kept until its last tensor is disposed). */
  dispose(): void {
    if (!this.storage) return;
    this.storage.release();
    this.storage = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}]${this.name ? `, ${this.name}` : ''})`;
  }

  private live(): Storage {
    if (!this.storage) throw new DisposedError(`${this.toString()} used after dispose()`);
    return this.storage;
  }
}
