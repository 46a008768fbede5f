/**
 * The op specs' checker: one table of cases (cases-*.ts: the op, its inputs' shapes and ranges, and
 * where written a CPU reference), run by both `npm test` (test/gradcheck.test.ts) and
 * `npm run gradcheck` (tools/gradcheck.ts), in the spirit of tinygrad's helper_test_op.
 *
 * For a case y = f(x1..xk), the scalar L = sum(y * R) with a fixed random R is differentiated two
 * ways: autograd (backward(y, R)) and central differences. With a CPU `reference`, the forward is
 * compared with it and the differences are taken of the reference in float64 (precise); without
 * one, of the GPU op itself, (L(x + eps) - L(x - eps)) / 2 eps accumulated in float64. Elements are
 * sampled per input. `referenceGradient` is the same float64 differencing for the op tests that
 * keep their own references (norm, loss).
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
  /** CPU float64 reference of `fn`: the forward must match it, and gradients are checked against its differences. */
  reference?: (inputs: Float64Array[], shapes: number[][]) => ArrayLike<number>;
  /** Tolerance of the forward against the reference. Default 1e-4 relative, 1e-5 absolute. */
  forwardRtol?: number;
}

/**
 * Gradient of L = sum(r * f(inputs)) with respect to inputs[which], by central differences in
 * float64 on a CPU reference `f` (h small: float64 keeps the truncation and rounding error tiny).
 * `only` restricts it to some elements (the others are left 0).
 */
export function referenceGradient(
  f: (inputs: Float64Array[]) => ArrayLike<number>,
  inputs: Float64Array[],
  r: ArrayLike<number>,
  which: number,
  h = 1e-6,
  only?: readonly number[],
): Float64Array {
  const loss = (): number => {
    const y = f(inputs);
    let l = 0;
    for (let i = 0; i < y.length; i++) l += y[i]! * r[i]!;
    return l;
  };
  const x = inputs[which]!;
  const g = new Float64Array(x.length);
  for (const i of only ?? x.keys()) {
    const v = x[i]!;
    x[i] = v + h;
    const plus = loss();
    x[i] = v - h;
    const minus = loss();
    x[i] = v;
    g[i] = (plus - minus) / (2 * h);
  }
  return g;
}

/** y = f(a, b) elementwise with numpy broadcasting (right-aligned), in float64: for binary-op references. */
export function broadcastBinary(f: (a: number, b: number) => number) {
  return ([a, b]: Float64Array[], [sa, sb]: number[][]): Float64Array => {
    const r = Math.max(sa!.length, sb!.length);
    const pa = [...Array(r - sa!.length).fill(1), ...sa!];
    const pb = [...Array(r - sb!.length).fill(1), ...sb!];
    const out = pa.map((d, i) => Math.max(d, pb[i]!));
    const n = out.reduce((x, y) => x * y, 1);
    const y = new Float64Array(n);
    const index = (p: number[], flat: number): number => {
      let idx = 0;
      let rest = flat;
      let pstride = 1;
      for (let d = r - 1; d >= 0; d--) {
        const c = rest % out[d]!;
        rest = Math.floor(rest / out[d]!);
        idx += (p[d] === 1 ? 0 : c) * pstride;
        pstride *= p[d]!;
      }
      return idx;
    };
    for (let i = 0; i < n; i++) y[i] = f(a![index(pa, i)]!, b![index(pb, i)]!);
    return y;
  };
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
  const shapes = c.inputs.map((s) => s.shape);
  const ref = c.reference;
  const refInputs = values.map((v) => Float64Array.from(v));
  if (ref) {
    const expected = ref(refInputs, shapes);
    const fr = c.forwardRtol ?? 1e-4;
    if (expected.length !== y.length) return { ok: false, message: `forward: ${y.length} values, the reference gives ${expected.length}` };
    for (let i = 0; i < y.length; i++) {
      const err = Math.abs(y[i]! - expected[i]!) / (1e-5 + fr * Math.abs(expected[i]!));
      if (!(err <= 1)) return { ok: false, message: `forward element ${i}: ${y[i]}, reference ${expected[i]}` };
    }
  }
  for (let k = 0; k < values.length; k++) {
    const g = analytic[k];
    if (!g) continue;
    const n = values[k]!.length;
    const count = Math.min(n, c.samples ?? 24);
    const picks = count === n ? [...Array(n).keys()] : [...Array(count)].map(() => rng.nextU32() % n);
    const fromReference = ref ? referenceGradient((xs) => ref(xs, shapes), refInputs, r, k, 1e-6, picks) : null;
    for (const i of picks) {
      let numeric: number;
      if (fromReference) numeric = fromReference[i]!;
      else {
        const orig = values[k]![i]!;
        values[k]![i] = orig + eps;
        const plus = (await lossOf(c, values, r)).l;
        values[k]![i] = orig - eps;
        const minus = (await lossOf(c, values, r)).l;
        values[k]![i] = orig;
        numeric = (plus - minus) / (2 * eps);
      }
      const err = Math.abs(g[i]! - numeric) / (atol + rtol * Math.abs(numeric));
      if (!(err <= worst) || Number.isNaN(err)) {
        worst = Number.isNaN(err) ? Infinity : err;
        worstMsg = `input ${k} element ${i}: autograd ${g[i]}, finite difference ${numeric}${fromReference ? ' (of the CPU reference)' : ''}`;
      }
    }
  }
  return { ok: worst <= 1, message: worst <= 1 ? `ok (worst ratio ${worst.toFixed(3)})` : worstMsg };
}
