/**
 * Elementwise ops: unary activations and maps, broadcasting binary arithmetic, scalar ops,
 * and the in-place helpers used by autograd and optimizers.
 */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { fmtShape, launch1d } from './launch.js';
import { sumTo } from './reduce.js';

const FILE = 'elementwise.wgsl';

/** Unary op ids (the OP override of elementwise.wgsl) and which value their derivative reads. */
const UNARY = {
  relu: { id: 0, saves: 'x' },
  leakyRelu: { id: 1, saves: 'x' },
  tanh: { id: 2, saves: 'y' },
  sigmoid: { id: 3, saves: 'y' },
  exp: { id: 4, saves: 'y' },
  log: { id: 5, saves: 'x' },
  abs: { id: 6, saves: 'x' },
  sqrt: { id: 7, saves: 'y' },
  affine: { id: 8, saves: 'x' },
  square: { id: 9, saves: 'x' },
} as const;
type UnaryName = keyof typeof UNARY;

function unary(name: UnaryName, x: Tensor, alpha = 0, beta = 0): Tensor {
  const { id, saves } = UNARY[name];
  const y = Tensor.empty(x.shape);
  const params = new Params().u32(x.size).f32(alpha, beta).data();
  launch1d(x.size, {
    file: FILE,
    entry: 'unary_forward',
    constants: { OP: id },
    params,
    buffers: [x.binding(), y.binding()],
    cost: { flops: x.size, bytes: 8 * x.size },
  });
  return record(name, y, [x], [saves === 'x' ? x : y], (g, [s]) => {
    const gx = Tensor.empty(x.shape);
    launch1d(x.size, {
      file: FILE,
      entry: 'unary_backward',
      constants: { OP: id },
      params,
      buffers: [s!.binding(), g.binding(), gx.binding()],
      cost: { flops: 2 * x.size, bytes: 12 * x.size },
    });
    return [gx];
  });
}

export const relu = (x: Tensor): Tensor => unary('relu', x);
export const leakyRelu = (x: Tensor, slope = 0.01): Tensor => unary('leakyRelu', x, slope);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const square = (x: Tensor): Tensor => unary('square', x);
/** alpha * x + beta. */
export const affine = (x: Tensor, alpha: number, beta = 0): Tensor => unary('affine', x, alpha, beta);
export const scale = (x: Tensor, s: number): Tensor => unary('affine', x, s, 0);
export const addScalar = (x: Tensor, s: number): Tensor => unary('affine', x, 1, s);
export const neg = (x: Tensor): Tensor => unary('affine', x, -1, 0);

const BINARY = { add: 0, sub: 1, mul: 2, div: 3 } as const;

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

function binaryRaw(name: keyof typeof BINARY, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShape(name, a.shape, b.shape);
  const out = Tensor.empty(shape);
  const params = binaryParams(shape, a.shape, b.shape);
  launch1d(out.size, {
    file: FILE,
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
    file: FILE,
    entry: 'expand',
    params: binaryParams(shape, x.shape, x.shape.length === 0 ? [1] : x.shape, scale),
    buffers: [x.binding(), out.binding()],
    cost: { flops: out.size, bytes: 4 * (x.size + out.size) },
  });
  return out;
}

/** Broadcasts x to `shape` (numpy rules); the gradient sums back. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  return record('expand', expandScaled(x, shape), [x], [], (g) => [sumTo(g, x.shape)]);
}

/** a + b with broadcasting. */
export function add(a: Tensor, b: Tensor): Tensor {
  return record('add', binaryRaw('add', a, b), [a, b], [], (g) => [sumTo(g, a.shape), sumTo(g, b.shape)]);
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Tensor): Tensor {
  return record('sub', binaryRaw('sub', a, b), [a, b], [], (g) => {
    const gb = sumTo(g, b.shape);
    const ngb = affine(gb, -1);
    gb.dispose();
    return [sumTo(g, a.shape), ngb];
  });
}

/** a * b with broadcasting. */
export function mul(a: Tensor, b: Tensor): Tensor {
  return record('mul', binaryRaw('mul', a, b), [a, b], [a, b], (g, [sa, sb]) => [
    a.requiresGrad ? productSumTo(g, sb!, a.shape) : null,
    b.requiresGrad ? productSumTo(g, sa!, b.shape) : null,
  ]);
}

/** a / b with broadcasting. */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryRaw('div', a, b);
  return record('div', out, [a, b], [b, out], (g, [sb, so]) => {
    const ga = a.requiresGrad ? quotientSumTo(g, sb!, a.shape) : null;
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      // d(a/b)/db = -(a/b)/b = -out/b
      const t = binaryRaw('mul', g, so!);
      const t2 = binaryRaw('div', t, sb!);
      const s = sumTo(t2, b.shape);
      gb = affine(s, -1);
      [t, t2, s].forEach((x) => x.dispose());
    }
    return [ga, gb];
  });
}

function productSumTo(g: Tensor, other: Tensor, shape: readonly number[]): Tensor {
  const p = binaryRaw('mul', g, other);
  const s = sumTo(p, shape);
  if (s !== p) p.dispose();
  return s;
}

function quotientSumTo(g: Tensor, other: Tensor, shape: readonly number[]): Tensor {
  const p = binaryRaw('div', g, other);
  const s = sumTo(p, shape);
  if (s !== p) p.dispose();
  return s;
}

/** A new tensor of `shape` filled with `value`. */
export function fill(shape: readonly number[], value: number): Tensor {
  const t = Tensor.empty(shape);
  fillInPlace(t, value);
  return t;
}

/** @internal Sets every element of `t` to `value` in place. */
export function fillInPlace(t: Tensor, value: number): void {
  launch1d(t.size, {
    file: FILE,
    entry: 'fill',
    params: new Params().u32(t.size).f32(value, 0).data(),
    buffers: [t.binding()],
  });
}

/** @internal acc = alpha * acc + beta * x, in place (same number of elements). */
export function axpby(acc: Tensor, alpha: number, x: Tensor, beta: number): void {
  if (acc.size !== x.size) throw new ShapeError(`axpby: sizes ${acc.size} and ${x.size} differ`);
  launch1d(acc.size, {
    file: FILE,
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
