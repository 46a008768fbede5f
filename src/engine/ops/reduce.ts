/** Sum and mean over dimensions, and `sumTo` (the adjoint of broadcasting). */
import { record } from '../autograd.js';
import { engine, grid } from '../engine.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { expandScaled } from './elementwise.js';
import { fmtShape, WG } from './launch.js';

const FILE = 'reduce.wgsl';
/** Below this many elements per output, one thread per output beats one workgroup per output. */
const SHORT_REDUCTION = 512;

function normalizeAxes(op: string, rank: number, axes?: number | readonly number[]): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  return list.map((a) => {
    const ax = a < 0 ? a + rank : a;
    if (ax < 0 || ax >= rank) throw new ShapeError(`${op}: axis ${a} out of range for rank ${rank}`);
    return ax;
  });
}

/** Raw reduction kernel launch: sum over `axes` times `scale`; output keeps dims as size 1. */
function reduceRaw(x: Tensor, axes: readonly number[], scale: number): Tensor {
  if (x.shape.length > 4) throw new ShapeError(`reduce: at most 4 dimensions, got ${fmtShape(x.shape)}`);
  const shape4 = [...Array(4 - x.shape.length).fill(1), ...x.shape] as number[];
  const ax4 = new Set(axes.map((a) => a + 4 - x.shape.length));
  const strides = [0, 0, 0, 0];
  for (let i = 3, s = 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape4[i]!;
  }
  const kept = [1, 1, 1, 1];
  const keptStride = [0, 0, 0, 0];
  const red = [1, 1, 1, 1];
  const redStride = [0, 0, 0, 0];
  // Pack kept and reduced dims right-aligned, preserving order.
  let ki = 3;
  let ri = 3;
  for (let i = 3; i >= 0; i--) {
    if (ax4.has(i)) {
      red[ri] = shape4[i]!;
      redStride[ri--] = strides[i]!;
    } else {
      kept[ki] = shape4[i]!;
      keptStride[ki--] = strides[i]!;
    }
  }
  const outShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = Tensor.empty(outShape);
  const count = red.reduce((a, b) => a * b, 1);
  const params = new Params()
    .u32(out.size, count)
    .f32(scale)
    .u32(kept[1]!, kept[2]!, kept[3]!, ...keptStride)
    .u32(red[1]!, red[2]!, red[3]!, ...redStride)
    .data();
  const perGroup = count >= SHORT_REDUCTION || out.size < 64;
  engine().launch({
    file: FILE,
    entry: perGroup ? 'per_group' : 'per_thread',
    params,
    buffers: [x.binding(), out.binding()],
    workgroups: grid(perGroup ? out.size : Math.ceil(out.size / WG)),
    cost: { flops: x.size, bytes: 4 * (x.size + out.size) },
  });
  return out;
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

function reshapeRaw(t: Tensor, shape: readonly number[]): Tensor {
  const v = t.share(shape);
  t.dispose();
  return v;
}

/**
 * Sums `g` down to `shape` (the gradient of broadcasting `shape` up to g's shape). Returns a new
 * tensor (a shared view when nothing needs summing).
 */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  const r = g.shape.length;
  const padded = [...Array(r - shape.length).fill(1), ...shape];
  const axes: number[] = [];
  for (let i = 0; i < r; i++) {
    if (padded[i] === 1 && g.shape[i] !== 1) axes.push(i);
    else if (padded[i] !== g.shape[i]) throw new ShapeError(`sumTo: cannot reduce ${fmtShape(g.shape)} to ${fmtShape(shape)}`);
  }
  if (axes.length === 0) return g.share(shape);
  return reshapeRaw(reduceRaw(g, axes, 1), shape);
}

