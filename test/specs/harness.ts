/**
 * Finite-difference gradient checking. For a case y = f(x1..xk), the scalar L = sum(y * R) with a
 * fixed random R is differentiated two ways: autograd (backward(y, R)) and central differences
 * (L(x + eps) - L(x - eps)) / 2 eps in float64 on the CPU side. Elements are sampled per input.
 */
import * as E from '../../src/engine/index.js';
import { Rng } from '../../src/engine/random.js';

export interface InputSpec {
  shape: number[];
  /** Sampler range; with `awayFromZero`, |x| is kept >= that margin (for kinks at 0). */
  low?: number;
  high?: number;
  awayFromZero?: number;
  /** false for inputs that are not differentiated (targets, masks). */
  grad?: boolean;
  /** Fixed values instead of random ones. */
  values?: ArrayLike<number>;
}

export interface GradCase {
  /** The op under test (cases of one op share this name; `gradcheck: N ops` counts these). */
  op: string;
  /** What this case covers, e.g. "stride 2, 3x5 input". */
  name: string;
  inputs: InputSpec[];
  fn: (...xs: E.Tensor[]) => E.Tensor;
  eps?: number;
  rtol?: number;
  atol?: number;
  /** Elements checked per input (all if smaller). */
  samples?: number;
}

export interface CaseResult {
  ok: boolean;
  message: string;
}

function makeInput(spec: InputSpec, seed: number): Float32Array {
  if (spec.values) return Float32Array.from(spec.values);
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed);
  const lo = spec.low ?? -1;
  const hi = spec.high ?? 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v = lo + (hi - lo) * rng.uniform();
    const m = spec.awayFromZero;
    if (m !== undefined && Math.abs(v) < m) v = v < 0 ? -m - rng.uniform() * m : m + rng.uniform() * m;
    out[i] = v;
  }
  return out;
}

async function lossOf(c: GradCase, values: Float32Array[], r: Float32Array | null): Promise<{ y: Float32Array; l: number }> {
  return E.tidy(async () => {
    const xs = values.map((v, i) => E.tensor(v, c.inputs[i]!.shape));
    const y = await E.noGrad(() => c.fn(...xs)).read();
    let l = 0;
    if (r) for (let i = 0; i < y.length; i++) l += y[i]! * r[i]!;
    return { y, l };
  });
}

export async function checkCase(c: GradCase, seed = 1): Promise<CaseResult> {
  const eps = c.eps ?? 1e-2;
  const rtol = c.rtol ?? 2e-2;
  const atol = c.atol ?? 1e-3;
  const values = c.inputs.map((s, i) => makeInput(s, seed * 101 + i));
  const { y } = await lossOf(c, values, null);
  const r = new Rng(seed + 7).uniformArray(y.length, -1, 1);

  // Analytic gradients.
  const analytic = await E.tidy(async () => {
    const xs = values.map((v, i) => {
      const t = E.tensor(v, c.inputs[i]!.shape);
      t.requiresGrad = c.inputs[i]!.grad !== false;
      return t;
    });
    const out = c.fn(...xs);
    if (!out.requiresGrad) throw new Error(`${c.op}: output does not require grad`);
    E.backward(out, E.tensor(r, out.shape));
    return Promise.all(
      xs.map(async (x) => {
        if (!x.requiresGrad) return null;
        if (!x.grad) throw new Error(`${c.op}: no gradient reached an input`);
        return x.grad.read();
      }),
    );
  });

  const rng = new Rng(seed + 13);
  let worst = 0;
  let worstMsg = '';
  for (let k = 0; k < values.length; k++) {
    const g = analytic[k];
    if (!g) continue;
    const n = values[k]!.length;
    const count = Math.min(n, c.samples ?? 24);
    const picks = count === n ? [...Array(n).keys()] : [...Array(count)].map(() => rng.nextU32() % n);
    for (const i of picks) {
      const orig = values[k]![i]!;
      values[k]![i] = orig + eps;
      const plus = (await lossOf(c, values, r)).l;
      values[k]![i] = orig - eps;
      const minus = (await lossOf(c, values, r)).l;
      values[k]![i] = orig;
      const numeric = (plus - minus) / (2 * eps);
      const err = Math.abs(g[i]! - numeric) / (atol + rtol * Math.abs(numeric));
      if (!(err <= worst) || Number.isNaN(err)) {
        worst = Number.isNaN(err) ? Infinity : err;
        worstMsg = `input ${k} element ${i}: autograd ${g[i]}, finite difference ${numeric}`;
      }
    }
  }
  return { ok: worst <= 1, message: worst <= 1 ? `ok (worst ratio ${worst.toFixed(3)})` : worstMsg };
}
