/** Small helpers shared by op files: 1-D launches and shape checks. */
import { engine, grid, type Launch } from '../engine.js';
import { ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';

export const WG = 256;

/** Launches a one-thread-per-element kernel over `n` elements (workgroup size WG). */
export function launch1d(n: number, l: Omit<Launch, 'workgroups'>): void {
  engine().launch({ ...l, workgroups: grid(Math.ceil(Math.max(n, 1) / WG)) });
}

export function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}

export function rank(op: string, t: Tensor, r: number, what = 'input'): void {
  if (t.shape.length !== r) {
    throw new ShapeError(`${op}: ${what} must have ${r} dimensions, got [${t.shape.join(', ')}]`);
  }
}

export function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}
