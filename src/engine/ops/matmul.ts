/** Matrix multiplication with optional transposes (shaders/matmul.wgsl), with gradients. */
import { record } from '../autograd.js';
import { subgroupMinSize } from '../device.js';
import { engine, MAX_GROUPS } from '../engine.js';
import { KernelError, ShapeError } from '../errors.js';
import type { Binding } from '../recorder.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { fillInPlace } from '../primitives.js';
import { fmtShape, rank } from './launch.js';

const FILE = 'matmul.wgsl';
const WG = 64;

export interface MatmulOptions {
  /** Use A^T: `a` is stored [K, M]. */
  transposeA?: boolean;
  /** Use B^T: `b` is stored [N, K]. */
  transposeB?: boolean;
}

/** The same storage seen as an array of vec4 (binding size rounded up to 16 bytes). */
function vec4Binding(t: Tensor): Binding {
  return { ...t.binding(), size: Math.max(16, Math.ceil(t.size / 4) * 16) };
}

/** @internal C = op(A) op(B) without autograd. */
export function matmulRaw(a: Tensor, b: Tensor, ta: boolean, tb: boolean): Tensor {
  const [m, k] = ta ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
  const [kb, n] = tb ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  if (k !== kb) {
    throw new ShapeError(
      `matmul: inner dimensions differ: a ${fmtShape(a.shape)}${ta ? '^T' : ''} and b ${fmtShape(b.shape)}${tb ? '^T' : ''}`,
    );
  }
  const c = Tensor.empty([m, n]);
  if (c.size === 0) return c;
  if (k === 0) {
    fillInPlace(c, 0); // an empty sum
    return c;
  }
  const gpu = engine().gpu;
  const minSize = subgroupMinSize(gpu) ?? 8;
  if (!gpu.features.has('subgroups') || minSize < 8) {
    throw new KernelError(`matmul needs the WebGPU "subgroups" feature with subgroups of >= 8 invocations (adapter ${gpu.adapterName})`, [FILE]);
  }
  const tm = m > 8 ? 16 : 8;
  const qn = Math.ceil(n / 4);
  const gx = Math.ceil(qn / WG);
  const gy = Math.ceil(m / tm);
  if (gx > MAX_GROUPS || gy > MAX_GROUPS) throw new ShapeError(`matmul: [${m}, ${k}] x [${k}, ${n}] is too large for one dispatch`);
  const va = !ta && k % 4 === 0;
  const vb = tb ? k % 4 === 0 : n % 4 === 0;
  engine().launch({
    file: FILE,
    constants: { TM: tm, WG, TA: ta ? 1 : 0, TB: tb ? 1 : 0, VA: va ? 1 : 0, VB: vb ? 1 : 0 },
    params: new Params(8).u32(m, n, k, qn, tm).data(),
    buffers: [a.binding(), vec4Binding(a), b.binding(), vec4Binding(b), c.binding()],
    workgroups: [gx, gy, 1],
    cost: { flops: 2 * m * n * k, bytes: 4 * (a.size + b.size + c.size) },
  });
  return c;
}

/**
 * Matrix product: a [M, K] (or [K, M] with transposeA), b [K, N] (or [N, K] with transposeB)
 * -> [M, N]. Differentiable in both inputs.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  rank('matmul', a, 2, 'a');
  rank('matmul', b, 2, 'b');
  const ta = opts.transposeA ?? false;
  const tb = opts.transposeB ?? false;
  const c = matmulRaw(a, b, ta, tb);
  return record('matmul', c, [a, b], [a, b], (g, [sa, sb]) => {
    // C = op(A) op(B): d op(A) = G op(B)^T, d op(B) = op(A)^T G; transpose back where stored so.
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (a.requiresGrad) ga = ta ? matmulRaw(sb!, g, tb, true) : matmulRaw(g, sb!, false, !tb);
    if (b.requiresGrad) gb = tb ? matmulRaw(g, sa!, true, ta) : matmulRaw(sa!, g, !ta, false);
    return [ga, gb];
  });
}
