/**
 * Adam and AdamW (PyTorch's algorithms: torch.optim.Adam with L2 weight decay added to the
 * gradient, torch.optim.AdamW with decoupled weight decay; amsgrad off).
 *
 * `step()` records ONE fused kernel per parameter that has a gradient (shaders/adam.wgsl); the
 * bias corrections are computed on the CPU in float64 and passed as uniforms, the moments m and v
 * live on the GPU (kept out of every tidy scope), and nothing is read back. As in PyTorch, each
 * parameter has its own step count (a parameter whose grad is null is skipped entirely: its value,
 * moments and step count stay as they are), and the moments are created at its first update.
 *
 * Checkpoints: `exportState()` is async and returns plain Float32Arrays (one readback per moment
 * tensor), ready for safetensors or msgpack; `importState()` uploads them back. A run restored from
 * an exported state continues exactly like the uninterrupted run.
 */
import { engine } from './engine.js';
import { DisposedError, ShapeError } from './errors.js';
import { fill } from './primitives.js';
import { launch1d } from './ops/launch.js';
import { Params } from './params.js';
import { keep } from './scope.js';
import type { Tensor } from './tensor.js';

export interface AdamOptions {
  /** Learning rate (default 2e-4, the pix2pix/AsynDGAN setting). Settable later via `opt.lr`. */
  lr?: number;
  /** (beta1, beta2), default (0.5, 0.999). */
  betas?: [number, number];
  /** Added to the denominator (default 1e-8). */
  eps?: number;
  /** Weight decay (default 0 for Adam, 0.01 for AdamW). */
  weightDecay?: number;
  /** false: L2 decay added to the gradient (Adam); true: decoupled decay (AdamW). */
  decoupled?: boolean;
}

/** Everything needed to resume an optimizer, on the CPU. */
export interface AdamState {
  /** Number of `step()` calls. */
  step: number;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  /** Parameter names, in optimizer order (checked by importState). */
  names: string[];
  /** Per parameter: the number of updates it received (0: no state yet, m and v are zeros). */
  steps: number[];
  /** First and second moments per parameter (same element count as the parameter). */
  m: Float32Array[];
  v: Float32Array[];
}

export type ParamList = readonly Tensor[] | readonly { name: string; tensor: Tensor }[];

const FILE = 'adam.wgsl';

function isNamed(p: Tensor | { name: string; tensor: Tensor }): p is { name: string; tensor: Tensor } {
  return 'tensor' in p && !('binding' in p);
}

export class Adam {
  readonly params: readonly Tensor[];
  readonly names: readonly string[];
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  /** Number of `step()` calls so far. */
  stepCount = 0;
  private readonly m: (Tensor | null)[];
  private readonly v: (Tensor | null)[];
  private readonly steps: number[];

  constructor(params: ParamList, opts: AdamOptions = {}) {
    const list = params as readonly (Tensor | { name: string; tensor: Tensor })[];
    this.params = list.map((p) => (isNamed(p) ? p.tensor : p));
    this.names = list.map((p, i) => (isNamed(p) ? p.name : (p.name ?? `param${i}`)));
    const seen = new Set<Tensor>();
    for (const [i, p] of this.params.entries()) {
      if (seen.has(p)) throw new Error(`Adam: parameter ${this.names[i]} is listed twice`);
      seen.add(p);
    }
    this.lr = opts.lr ?? 2e-4;
    this.betas = [...(opts.betas ?? [0.5, 0.999])];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    this.decoupled = opts.decoupled ?? false;
    this.m = this.params.map(() => null);
    this.v = this.params.map(() => null);
    this.steps = this.params.map(() => 0);
  }

  /** Updates every parameter that has a gradient (one fused kernel each; no readback). */
  step(): void {
    const [beta1, beta2] = this.betas;
    this.stepCount++;
    for (let i = 0; i < this.params.length; i++) {
      const p = this.params[i]!;
      const g = p.grad;
      if (!g) continue;
      if (p.disposed) throw new DisposedError(`Adam: parameter ${this.names[i]} was disposed`);
      if (g.size !== p.size) {
        throw new ShapeError(`Adam: gradient of ${this.names[i]} has ${g.size} elements, parameter [${p.shape.join(', ')}] has ${p.size}`);
      }
      const m = (this.m[i] ??= keep(fill(p.shape, 0)));
      const v = (this.v[i] ??= keep(fill(p.shape, 0)));
      const t = ++this.steps[i]!;
      const bc1 = 1 - beta1 ** t;
      const bc2 = 1 - beta2 ** t;
      const params = new Params()
        .u32(p.size)
        .f32(beta2, 1 - beta1, 1 - beta2, this.lr / bc1, Math.sqrt(bc2), this.eps)
        .f32(this.decoupled ? 0 : this.weightDecay, this.decoupled ? 1 - this.lr * this.weightDecay : 1)
        .data();
      launch1d(p.size, {
        file: FILE,
        params,
        buffers: [p.binding(), g.binding(), m.binding(), v.binding()],
        cost: { flops: 14 * p.size, bytes: 28 * p.size },
      });
    }
  }

  /** Drops every parameter's gradient (sets it to null, like PyTorch's `zero_grad()`). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Copies the optimizer state to the CPU (for checkpoints). */
  async exportState(): Promise<AdamState> {
    const read = (t: Tensor | null, i: number) => (t ? t.read() : Promise.resolve(new Float32Array(this.params[i]!.size)));
    const m = await Promise.all(this.m.map(read));
    const v = await Promise.all(this.v.map(read));
    return {
      step: this.stepCount,
      lr: this.lr,
      betas: [...this.betas],
      eps: this.eps,
      weightDecay: this.weightDecay,
      decoupled: this.decoupled,
      names: [...this.names],
      steps: [...this.steps],
      m,
      v,
    };
  }

  /**
   * Restores a state from `exportState()` (hyperparameters included) for the same parameter list:
   * names and element counts must match, in order.
   */
  importState(state: AdamState): void {
    const n = this.params.length;
    if (state.names.length !== n || state.steps.length !== n || state.m.length !== n || state.v.length !== n) {
      throw new ShapeError(`Adam.importState: state holds ${state.names.length} parameters, optimizer has ${n}`);
    }
    for (let i = 0; i < n; i++) {
      const p = this.params[i]!;
      if (state.names[i] !== this.names[i]) {
        throw new ShapeError(`Adam.importState: parameter ${i} is ${this.names[i]}, state has ${state.names[i]}`);
      }
      if (state.m[i]!.length !== p.size || state.v[i]!.length !== p.size) {
        throw new ShapeError(
          `Adam.importState: ${this.names[i]} has ${p.size} elements, state has ${state.m[i]!.length} (m) and ${state.v[i]!.length} (v)`,
        );
      }
    }
    this.stepCount = state.step;
    this.lr = state.lr;
    this.betas = [...state.betas];
    this.eps = state.eps;
    this.weightDecay = state.weightDecay;
    this.decoupled = state.decoupled;
    const recorder = engine().recorder;
    for (let i = 0; i < n; i++) {
      this.steps[i] = state.steps[i]!;
      const upload = (slot: (Tensor | null)[], data: Float32Array) => {
        const t = (slot[i] ??= keep(fill(this.params[i]!.shape, 0)));
        if (data.length > 0) recorder.write(t.buffer, Float32Array.from(data));
      };
      upload(this.m, state.m[i]!);
      upload(this.v, state.v[i]!);
    }
  }

  /** Releases the moments' GPU memory (the optimizer must not be used afterwards). */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t?.dispose();
    this.m.fill(null);
    this.v.fill(null);
  }
}

/** AdamW: Adam with decoupled weight decay (default 0.01); other defaults as Adam's. */
export class AdamW extends Adam {
  constructor(params: ParamList, opts: AdamOptions = {}) {
    super(params, { ...opts, weightDecay: opts.weightDecay ?? 0.01, decoupled: opts.decoupled ?? true });
  }
}
