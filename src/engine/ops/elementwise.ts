/**
 * Elementwise ops: unary activations and maps, broadcasting binary arithmetic, scalar ops,
 * and the in-place helpers used by autograd and optimizers.
 */
import { record } from '../autograd.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { UNARY, binaryRaw, expandScaled, sumTo } from '../primitives.js';
import { launch1d } from './launch.js';

const FILE = 'elementwise.wgsl';

/** Which value each unary op's derivative reads: its input x or its output y. */
const SAVES: Readonly<Record<keyof typeof UNARY, 'x' | 'y'>> = {
  relu: 'x', leakyRelu: 'x', tanh: 'y', sigmoid: 'y', exp: 'y', log: 'x', abs: 'x', sqrt: 'y', affine: 'x', square: 'x',
};
type UnaryName = keyof typeof UNARY;

function unaryForwardRaw(name: UnaryName, x: Tensor, alpha = 0, beta = 0): Tensor {
  const y = Tensor.empty(x.shape);
  launch1d(x.size, {
    file: FILE,
    entry: 'unary_forward',
    constants: { OP: UNARY[name] },
    params: new Params().u32(x.size).f32(alpha, beta).data(),
    buffers: [x.binding(), y.binding()],
    cost: { flops: x.size, bytes: 8 * x.size },
  });
  return y;
}

/** gx = g * f'(s), s the saved value SAVES names. */
function unaryBackwardRaw(name: UnaryName, s: Tensor, g: Tensor, alpha = 0, beta = 0): Tensor {
  const gx = Tensor.empty(s.shape);
  launch1d(s.size, {
    file: FILE,
    entry: 'unary_backward',
    constants: { OP: UNARY[name] },
    params: new Params().u32(s.size).f32(alpha, beta).data(),
    buffers: [s.binding(), g.binding(), gx.binding()],
    cost: { flops: 2 * s.size, bytes: 12 * s.size },
  });
  return gx;
}

function unary(name: UnaryName, x: Tensor, alpha = 0, beta = 0): Tensor {
  const y = unaryForwardRaw(name, x, alpha, beta);
  return record(name, y, [x], [SAVES[name] === 'x' ? x : y], (g, [s]) => [unaryBackwardRaw(name, s!, g, alpha, beta)]);
}

/**
 * @internal gx = g * f'(y) for an activation whose derivative follows from its output y: tanh, and
 * (leaky) ReLU with slope >= 0 (y > 0 exactly where x > 0). For ops that apply the activation in
 * their own kernel (conv2d's epilogue).
 */
export const activationBackwardRaw = (name: 'tanh' | 'leakyRelu', y: Tensor, g: Tensor, slope = 0): Tensor =>
  unaryBackwardRaw(name, y, g, slope);

/** @internal y = f(x) for those activations, without autograd (conv2d's paths without the epilogue). */
export const activationForwardRaw = (name: 'tanh' | 'leakyRelu', x: Tensor, slope = 0): Tensor => unaryForwardRaw(name, x, slope);

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
