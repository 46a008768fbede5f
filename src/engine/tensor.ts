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

/** Reference-counted GPU buffer holding a tensor's elements. */
export class Storage {
  private refs = 1;
  constructor(
    readonly engine: Engine,
    readonly buffer: GPUBuffer,
    readonly bytes: number,
  ) {}

  retain(): this {
    if (this.refs <= 0) throw new DisposedError('tensor storage used after release');
    this.refs++;
    return this;
  }

  release(): void {
    if (--this.refs === 0) this.engine.pool.release(this.buffer);
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
    return { buffer: s.buffer, size: Math.max(this.size, 1) * 4 };
  }

  /** @internal The GPU buffer. */
  get buffer(): GPUBuffer {
    return this.live().buffer;
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
    const bytes = await s.engine.recorder.read(s.buffer, this.size * 4);
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
