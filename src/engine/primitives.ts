/**
 * The engine's raw primitives: kernel launches with no autograd record (fill, in-place axpby and
 * accumulate, broadcasting binary arithmetic, expand, reductions and `sumTo`). Autograd and the
 * differentiable ops are built on these, so the import order is tensor -> primitives -> autograd
 * -> ops, without cycles.
 */
import { oneSubgroupHolds } from './device.js';
import { engine, grid } from './engine.js';
import { ShapeError } from './errors.js';
import { Params } from './params.js';
import { Tensor } from './tensor.js';
import { fmtShape, launch1d, WG } from './ops/launch.js';
import { defineInclude, opIdConstants } from './wgsl-include.js';

const ELEMENTWISE = 'elementwise.wgsl';
const REDUCE = 'reduce.wgsl';
/** Below this many elements per output, one thread per output beats one workgroup per output. */
const SHORT_REDUCTION = 512;
/**
 * Workgroup width of the one-workgroup-per-output reduction on CPU adapters: one 8-wide SIMD row
 * of lavapipe and one subgroup, summed by subgroupAdd without barriers (reduce_subgroup.wgsl).
 */
const REDUCE_WG_CPU = 8;
/** @internal For tests: `subgroupSums` false keeps reduce.wgsl's workgroup tree everywhere. */
export const reduceTuning = { subgroupSums: true };

/**
 * Op ids: the OP override of elementwise.wgsl's unary and binary entries. The shader's named
 * cases (UNARY_RELU, BINARY_ADD, ...) are generated from these tables, so the two cannot drift.
 */
export const UNARY = {
  relu: 0, leakyRelu: 1, tanh: 2, sigmoid: 3, exp: 4, log: 5, abs: 6, sqrt: 7, affine: 8, square: 9,
} as const;
export const BINARY = { add: 0, sub: 1, mul: 2, div: 3 } as const;
defineInclude('elementwise_ops.wgsl', `${opIdConstants('UNARY', UNARY)}\n${opIdConstants('BINARY', BINARY)}`);

/** Broadcast shape of a and b (numpy rules, right-aligned), at most 4 dimensions. */
export function broadcastShape(op: string, a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  if (r > 4) throw new ShapeError(`${op}: at most 4 dimensions are supported, got ${fmtShape(a)} and ${fmtShape(b)}`);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot broadcast (dim ${i}: ${da} vs ${db})`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Element strides of `shape` seen through the 4-D broadcast `out` shape (0 on broadcast dims). */
function broadcastStrides(shape: readonly number[], out4: readonly number[]): number[] {
  const s4 = [...Array(4 - shape.length).fill(1), ...shape];
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = s4[i] === 1 && out4[i] !== 1 ? 0 : stride;
    stride *= s4[i]!;
  }
  return strides;
}

function binaryParams(shape: readonly number[], a: readonly number[], b: readonly number[], scale = 1): Uint8Array {
  const out4 = [...Array(4 - shape.length).fill(1), ...shape];
  const n = out4.reduce((x, y) => x * y, 1);
  return new Params()
    .u32(n, out4[1]!, out4[2]!, out4[3]!)
    .u32(...broadcastStrides(a, out4))
    .u32(...broadcastStrides(b, out4))
    .f32(scale)
    .data();
}

export function binaryRaw(name: keyof typeof BINARY, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(name, a.shape, b.shape);
  const out = Tensor.empty(shape);
  const params = binaryParams(shape, a.shape, b.shape);
  launch1d(out.size, {
    file: ELEMENTWISE,
    entry: 'binary',
    constants: { OP: BINARY[name], SAME_SHAPE: a.size === out.size && b.size === out.size ? 1 : 0 },
    params,
    buffers: [a.binding(), b.binding(), out.binding()],
    cost: { flops: out.size, bytes: 4 * (a.size + b.size + out.size) },
  });
  return out;
}

/** @internal scale * x broadcast to `shape` (x must broadcast to it). */
export function expandScaled(x: Tensor, shape: readonly number[], scale = 1): Tensor {
  const target = broadcastShape('expand', x.shape, shape);
  if (target.length !== shape.length || target.some((d, i) => d !== shape[i])) {
    throw new ShapeError(`expand: ${fmtShape(x.shape)} does not broadcast to ${fmtShape(shape)}`);
  }
  const out = Tensor.empty(shape);
  launch1d(out.size, {
    file: ELEMENTWISE,
    entry: 'expand',
    params: binaryParams(shape, x.shape, x.shape.length === 0 ? [1] : x.shape, scale),
    buffers: [x.binding(), out.binding()],
    cost: { flops: out.size, bytes: 4 * (x.size + out.size) },
  });
  return out;
}

/** Broadcasts x to `shape` (numpy rules); the gradient sums back. */
/** A new tensor of `shape` filled with `value`. */
export function fill(shape: readonly number[], value: number): Tensor {
  const t = Tensor.empty(shape);
  fillInPlace(t, value);
  return t;
}

/** @internal Sets every element of `t` to `value` in place. */
export function fillInPlace(t: Tensor, value: number): void {
  launch1d(t.size, {
    file: ELEMENTWISE,
    entry: 'fill',
    params: new Params().u32(t.size).f32(value, 0).data(),
    buffers: [t.binding()],
  });
}

/** @internal acc = alpha * acc + beta * x, in place (same number of elements). */
export function axpby(acc: Tensor, alpha: number, x: Tensor, beta: number): void {
  if (acc.size !== x.size) throw new ShapeError(`axpby: sizes ${acc.size} and ${x.size} differ`);
  launch1d(acc.size, {
    file: ELEMENTWISE,
    entry: 'axpby',
    params: new Params().u32(acc.size).f32(alpha, beta).data(),
    buffers: [acc.binding(), x.binding()],
    cost: { flops: 3 * acc.size, bytes: 12 * acc.size },
  });
}

/** @internal acc += x in place (gradient accumulation). */
export function accumulate(acc: Tensor, x: Tensor): void {
  axpby(acc, 1, x, 1);
}

/** Raw reduction kernel launch: sum over `axes` times `scale`; output keeps dims as size 1. */
export function reduceRaw(x: Tensor, axes: readonly number[], scale: number): Tensor {
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
  const gpu = engine().gpu;
  const subgroupSum = perGroup && reduceTuning.subgroupSums && gpu.software && oneSubgroupHolds(gpu, REDUCE_WG_CPU);
  engine().launch({
    file: subgroupSum ? 'reduce_subgroup.wgsl' : REDUCE,
    entry: perGroup ? 'per_group' : 'per_thread',
    ...(subgroupSum ? { constants: { WG: REDUCE_WG_CPU } } : {}),
    params,
    buffers: [x.binding(), out.binding()],
    workgroups: grid(perGroup ? out.size : Math.ceil(out.size / WG)),
    cost: { flops: x.size, bytes: 4 * (x.size + out.size) },
  });
  return out;
}

export function reshapeRaw(t: Tensor, shape: readonly number[]): Tensor {
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

