/** Reference helpers for the neural-network layer op tests (norm, pool, resample, pad, concat, dropout). */
import * as E from '../../src/engine/index.js';
import type { Test } from 'tap';

/** Plain float64 copy. */
export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}

export function prod(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Central differences of a CPU reference in float64: the op specs' routine (test/specs/harness.ts). */
export { referenceGradient as numericGrad } from '../specs/harness.js';

/**
 * Runs `fn` on GPU tensors made from `values` (all requiring grad where `grads[k]`), back-propagates
 * `r` and returns the output and the gradients read back. Everything is released afterwards.
 */
export async function gpuGrads(
  fn: (...xs: E.Tensor[]) => E.Tensor,
  values: ArrayLike<number>[],
  shapes: number[][],
  r: ArrayLike<number>,
  grads: boolean[] = values.map(() => true),
): Promise<{ y: Float32Array; shape: readonly number[]; g: (Float32Array | null)[] }> {
  return E.tidy(async () => {
    const xs = values.map((v, k) => {
      const t = E.tensor(Float32Array.from(v), shapes[k]!);
      t.requiresGrad = grads[k]!;
      return t;
    });
    const out = fn(...xs);
    const y = await out.read();
    E.backward(out, E.tensor(Float32Array.from(r), out.shape));
    const g = await Promise.all(xs.map((x) => (x.requiresGrad && x.grad ? x.grad.read() : null)));
    xs.forEach((x) => x.dispose());
    return { y, shape: out.shape, g };
  });
}

/** Bytes of GPU memory held by live tensors (for leak checks). */
export function bytesInUse(): number {
  return E.engine().pool.stats.bytesInUse;
}

/** Runs `step` twice and checks that the second run leaves no more bytes in use than the first. */
export async function expectNoLeak(t: Test, step: () => void): Promise<void> {
  step();
  await E.engine().sync();
  const before = bytesInUse();
  step();
  await E.engine().sync();
  t.equal(bytesInUse(), before, 'a repeated step holds no more GPU memory');
}

/** A linear map given by its taps: output element o = sum of weight * input[index] over taps[o]. */
export type Taps = [index: number, weight: number][][];

/** Forward (y = A x) and adjoint (gx = A^T gy) of a tap list, in float64. */
export function applyTaps(taps: Taps, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(taps, (list) => list.reduce((s, [i, w]) => s + w * x[i]!, 0));
}

export function adjointTaps(taps: Taps, gy: ArrayLike<number>, inputSize: number): Float64Array {
  const gx = new Float64Array(inputSize);
  taps.forEach((list, o) => {
    for (const [i, w] of list) gx[i]! += w * gy[o]!;
  });
  return gx;
}

/** Unravels flat index i of an NCHW shape. */
export function nchw(i: number, [, C, H, W]: readonly number[]): [number, number, number, number] {
  const w = i % W!;
  const h = Math.floor(i / W!) % H!;
  const c = Math.floor(i / (W! * H!)) % C!;
  const n = Math.floor(i / (W! * H! * C!));
  return [n, c, h, w];
}

/** Positions where two arrays differ after rounding `expected` to float32 (fast on large arrays). */
export function mismatchesF32(actual: ArrayLike<number>, expected: ArrayLike<number>): string {
  if (actual.length !== expected.length) return `length ${actual.length} != ${expected.length}`;
  let count = 0;
  let first = -1;
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== Math.fround(expected[i]!)) {
      if (first < 0) first = i;
      count++;
    }
  }
  return count === 0 ? 'identical' : `${count} differ, first at ${first}: got ${actual[first]}, expected ${expected[first]}`;
}
