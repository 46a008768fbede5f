/** Sum and mean over dimensions, and `sumTo` (the adjoint of broadcasting). */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { expandScaled, reduceRaw, reshapeRaw } from '../primitives.js';


function normalizeAxes(op: string, rank: number, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  return list.map((a) => {
    const ax = a < 0 ? a + rank : a;
    if (ax < 0 || ax >= rank) throw new ShapeError(`${op}: axis ${a} out of range for rank ${rank}`);
    return ax;
  });
}

/** Sum over `axes` (all by default). With keepDim false the reduced dims are removed. */
export function sum(x: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  return reduceOp('sum', x, axes, keepDim, false);
}

/** Mean over `axes` (all by default). */
export function mean(x: Tensor, axes?: number | readonly number[], keepDim = false): Tensor {
  return reduceOp('mean', x, axes, keepDim, true);
}

function reduceOp(op: string, x: Tensor, axes: number | readonly number[] | undefined, keepDim: boolean, isMean: boolean): Tensor {
  const list = normalizeAxes(op, x.shape.length, axes);
  const count = list.reduce((a, i) => a * x.shape[i]!, 1);
  const scale = isMean ? 1 / Math.max(count, 1) : 1;
  const kept = reduceRaw(x, list, scale);
  const shape = keepDim ? kept.shape : x.shape.filter((_, i) => !list.includes(i));
  const out = keepDim ? kept : reshapeRaw(kept, shape);
  const keptShape = kept.shape;
  return record(op, out, [x], [], (g) => {
    const gk = g.share(keptShape);
    const gx = expandScaled(gk, x.shape, scale);
    gk.dispose();
    return [gx];
  });
}
