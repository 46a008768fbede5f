/**
 * The module system, in the style of PyTorch's torch.nn: a Module owns named parameters
 * (trainable tensors), buffers (running statistics, counters) and child modules, and names them
 * with PyTorch's dotted paths ("model.10.conv_block.1.weight"), so a state dict maps one to one
 * onto the reference PyTorch networks.
 *
 * Parameters and buffers are exempted from memory scopes (`keep()`), so a model built or used
 * inside `tidy()` survives it; they live until `dispose()`.
 *
 * Initialization is seeded: every constructor takes a `seed` (a number or a shared `Rng`), and each
 * parameter draws its own sub-seed from it in construction order, so the same seed gives the same
 * weights on every machine.
 */
import { Rng, keep, type Tensor } from '../engine/index.js';
import { numel } from '../engine/internal.js';

/** Where initial weights come from: a seed, or a generator shared by the modules of a network. */
export type SeedLike = number | Rng;

/** A generator for `seed`: numbers start a new stream, an `Rng` is used (and advanced) as is. */
export function toRng(seed: SeedLike = 0): Rng {
  return seed instanceof Rng ? seed : new Rng(seed);
}

/**
 * An integer buffer held on the CPU (PyTorch's BatchNorm `num_batches_tracked`). It is saved as a
 * 0-dimensional I64 tensor, as PyTorch does.
 */
export class Counter {
  constructor(public value = 0) {}
}

/** A buffer: a tensor (running_mean, running_var) or a CPU counter (num_batches_tracked). */
export type BufferValue = Tensor | Counter;

/** Element types of state-dict entries (the safetensors names). */
export type StateDtype = 'F32' | 'I64';

/** One state-dict entry: PyTorch layout (row-major, the shape of the PyTorch tensor). */
export interface StateTensor {
  dtype: StateDtype;
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/** name -> tensor, in PyTorch's state_dict order (each module's parameters, its buffers, then children). */
export type StateDict = Record<string, StateTensor>;

/**
 * A state-dict entry offered for loading. Float data may be any float typed array (converted to
 * f32); integer counters any numeric typed array. `dtype` is informative (safetensors files carry it).
 */
export interface StateTensorInput {
  dtype?: string;
  shape: readonly number[];
  data: ArrayLike<number> | BigInt64Array | BigUint64Array;
}

export interface LoadOptions {
  /** Throw when keys are missing or unexpected (default true). Shape mismatches always throw. */
  strict?: boolean;
  /** Named in error messages (e.g. the checkpoint path). */
  source?: string;
}

/** What a non-strict load skipped. */
export interface LoadResult {
  missing: string[];
  unexpected: string[];
}

/** A state dict did not fit the module: missing or unexpected keys, wrong shapes or dtypes. */
export class StateDictError extends Error {
  override name = 'StateDictError';
  constructor(
    message: string,
    readonly missing: readonly string[] = [],
    readonly unexpected: readonly string[] = [],
    readonly mismatched: readonly string[] = [],
  ) {
    super(message);
  }
}

const NAME_RE = /^[A-Za-z0-9_]+$/;

export abstract class Module {
  /** Training mode (batch statistics, active dropout) or evaluation mode; see train()/eval(). */
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly buffers = new Map<string, BufferValue>();
  private readonly children = new Map<string, Module>();
  private disposed = false;

  /**
   * The computation. Returns a new tensor (the caller owns it; run inside tidy() to release what
   * the caller does not keep). Most modules take one input; some (U-Net up blocks) take a skip too.
   */
  abstract forward(x: Tensor, ...rest: Tensor[]): Tensor;

  /** Registers a parameter under `name`: marks it trainable, keeps it out of scopes. `null` reserves the name (e.g. bias=False). */
  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.checkName(name);
    if (t) {
      keep(t);
      t.requiresGrad = true;
      t.name ??= name;
    }
    this.params.set(name, t);
    return t;
  }

  /** Registers a buffer (state saved in checkpoints but not trained). */
  protected registerBuffer<B extends BufferValue>(name: string, b: B): B {
    this.checkName(name);
    if (!(b instanceof Counter)) {
      keep(b);
      b.name ??= name;
    }
    this.buffers.set(name, b);
    return b;
  }

  /** Registers a child module; its entries are named `<name>.<entry>`. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    if (m === (this as Module)) throw new Error(`${this.constructor.name}: a module cannot be its own child`);
    this.children.set(name, m);
    return m;
  }

  private checkName(name: string): void {
    if (!NAME_RE.test(name)) throw new Error(`${this.constructor.name}: invalid member name '${name}'`);
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children];
  }

  /** This module and all descendants, depth first, with dotted names ('' for this module). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, c] of this.children) out.push(...c.namedModules(join(prefix, n)));
    return out;
  }

  /** All parameters with PyTorch dotted names, in PyTorch's order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.params) if (t) out.push([join(path, n), t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** All buffers with dotted names (running_mean, running_var, num_batches_tracked, ...). */
  namedBuffers(prefix = ''): [string, BufferValue][] {
    const out: [string, BufferValue][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, b] of m.buffers) out.push([join(path, n), b]);
    }
    return out;
  }

  /** Parameters and buffers in PyTorch state_dict order: per module, parameters then buffers. */
  namedState(prefix = ''): [string, Tensor | Counter][] {
    const out: [string, Tensor | Counter][] = [];
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [n, t] of m.params) if (t) out.push([join(path, n), t]);
      for (const [n, b] of m.buffers) out.push([join(path, n), b]);
    }
    return out;
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    let n = 0;
    for (const t of this.parameters()) n += t.size;
    return n;
  }

  /** Sets `tensor.name` of every parameter and buffer to its full dotted name (for error messages). */
  nameTensors(prefix = ''): this {
    for (const [n, t] of this.namedState(prefix)) if (!(t instanceof Counter)) t.name = n;
    return this;
  }

  /** Training mode for this module and its descendants (batch statistics, dropout on). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: running statistics, dropout off. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Turns gradient tracking of every parameter on or off (PyTorch's `requires_grad_`), e.g. to
   * freeze the discriminator while the generator's loss is back-propagated through it.
   */
  requiresGrad(on = true): this {
    for (const t of this.parameters()) t.requiresGrad = on;
    return this;
  }

  /** Disposes and clears the gradients of all parameters. */
  zeroGrad(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.grad = null;
    }
  }

  /** Copies parameters and buffers to the CPU (PyTorch names, shapes and layouts). */
  async stateDict(): Promise<StateDict> {
    this.live();
    const out: StateDict = {};
    for (const [name, v] of this.namedState()) {
      if (v instanceof Counter) {
        out[name] = { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(v.value)) };
      } else {
        out[name] = { dtype: 'F32', shape: [...v.shape], data: await v.read() };
      }
    }
    return out;
  }

  /**
   * Loads values into the existing tensors (in place, so optimizers holding them stay valid).
   * Everything is validated before anything is written: a failed load changes nothing.
   */
  loadStateDict(dict: Record<string, StateTensorInput>, options: LoadOptions = {}): LoadResult {
    this.live();
    const strict = options.strict ?? true;
    const where = options.source ? ` (${options.source})` : '';
    const own = new Map(this.namedState());
    const missing = [...own.keys()].filter((k) => !Object.prototype.hasOwnProperty.call(dict, k));
    const unexpected = Object.keys(dict).filter((k) => !own.has(k));
    const problems: string[] = [];
    const mismatched: string[] = [];
    const writes: (() => void)[] = [];
    for (const [name, target] of own) {
      const entry = dict[name];
      if (!entry) continue;
      const shape = [...entry.shape];
      if (target instanceof Counter) {
        if (numel(shape) !== 1) {
          mismatched.push(name);
          problems.push(`'${name}': expected a single integer (shape []), got shape [${shape.join(', ')}]`);
          continue;
        }
        const v = Number(entry.data[0]);
        if (!Number.isSafeInteger(v) || v < 0) {
          problems.push(`'${name}': expected a non-negative integer, got ${String(entry.data[0])}`);
          continue;
        }
        writes.push(() => (target.value = v));
        continue;
      }
      if (shape.length !== target.shape.length || shape.some((d, i) => d !== target.shape[i])) {
        mismatched.push(name);
        problems.push(`'${name}': shape [${shape.join(', ')}] in the state dict, [${target.shape.join(', ')}] in the module`);
        continue;
      }
      if (entry.dtype !== undefined && !FLOAT_DTYPES.has(entry.dtype)) {
        mismatched.push(name);
        problems.push(`'${name}': dtype ${entry.dtype} is not a float type`);
        continue;
      }
      if (entry.data.length !== target.size) {
        mismatched.push(name);
        problems.push(`'${name}': ${entry.data.length} values for shape [${shape.join(', ')}] (${target.size} elements)`);
        continue;
      }
      const data = toFloat32(entry);
      if (!data) {
        problems.push(`'${name}': data is not a float array`);
        continue;
      }
      writes.push(() => {
        if (target.size > 0) target.engine.recorder.write(target.buffer, data, target.byteOffset);
      });
    }
    if (strict && (missing.length > 0 || unexpected.length > 0)) {
      const parts: string[] = [];
      if (missing.length > 0) parts.push(`missing keys: ${list(missing)}`);
      if (unexpected.length > 0) parts.push(`unexpected keys: ${list(unexpected)}`);
      problems.unshift(...parts);
    }
    if (problems.length > 0) {
      throw new StateDictError(
        `loadStateDict into ${this.constructor.name}${where}: ${problems.join('; ')}`,
        missing,
        unexpected,
        mismatched,
      );
    }
    for (const w of writes) w();
    return { missing, unexpected };
  }

  /** Releases every parameter and buffer; the module cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    for (const [, m] of this.namedModules()) {
      for (const t of m.params.values()) t?.dispose();
      for (const b of m.buffers.values()) if (!(b instanceof Counter)) b.dispose();
      m.disposed = true;
    }
  }

  private live(): void {
    if (this.disposed) throw new Error(`${this.constructor.name} used after dispose()`);
  }
}

const FLOAT_DTYPES = new Set(['F32', 'F64', 'F16', 'BF16']);

function list(names: string[]): string {
  const shown = names.slice(0, 12).map((n) => `'${n}'`).join(', ');
  return names.length > 12 ? `${shown} and ${names.length - 12} more` : shown;
}

function join(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/** f32 values of a float entry (F16/BF16 raw bits in Uint16Array are decoded). */
function toFloat32(entry: StateTensorInput): Float32Array | null {
  const d = entry.data;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return null;
  if (entry.dtype === 'F16' && d instanceof Uint16Array) return Float32Array.from(d, halfToFloat);
  if (entry.dtype === 'BF16' && d instanceof Uint16Array) {
    const out = new Float32Array(d.length);
    new Uint32Array(out.buffer).set(Uint32Array.from(d, (b) => b << 16));
    return out;
  }
  if (d instanceof Float32Array) return d;
  return Float32Array.from(d);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}
