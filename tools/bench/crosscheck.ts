/**
 * Before timing anything, the benchmark checks that this engine and tfjs compute the same values
 * on small odd shapes (convolution forward, input and weight gradients, matmul): a kernel that
 * silently fails can look very fast, and a peer on a broken path would make every ratio wrong.
 */
import type * as TF from '@tensorflow/tfjs';
import { backward, noGrad } from '../../src/engine/autograd.js';
import { tensor } from '../../src/engine/ops/create.js';
import { conv2d } from '../../src/engine/ops/conv.js';
import { Rng } from '../../src/engine/random.js';
import type { MatmulFn } from './ours.js';
import type { TfjsPeer } from './tfjs.js';

export interface CrossCheck {
  name: string;
  /** max |ours - tfjs| / max |tfjs|. */
  relErr: number;
  ok: boolean;
}

const TOL = 1e-4;

function relErr(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return Number.isFinite(diff) ? diff / Math.max(scale, 1e-30) : Infinity;
}

async function tfData(t: TF.Tensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

/** Conv (stride 2, pad 1, 3x3 and 4x4) and matmul on odd shapes, ours vs tfjs. */
export async function crossCheck(peer: TfjsPeer, matmul: MatmulFn | null): Promise<CrossCheck[]> {
  const { tf } = peer;
  const out: CrossCheck[] = [];
  const rng = new Rng(7);
  const cases = [
    { n: 2, ci: 5, h: 9, w: 11, co: 7, k: 3, stride: 2, pad: 1 },
    { n: 1, ci: 4, h: 12, w: 10, co: 6, k: 4, stride: 2, pad: 1 },
    { n: 1, ci: 3, h: 13, w: 13, co: 8, k: 7, stride: 1, pad: 3 },
  ];
  for (const c of cases) {
    const oh = Math.floor((c.h + 2 * c.pad - c.k) / c.stride) + 1;
    const ow = Math.floor((c.w + 2 * c.pad - c.k) / c.stride) + 1;
    const xs = rng.uniformArray(c.n * c.ci * c.h * c.w, -1, 1);
    const ws = rng.uniformArray(c.co * c.ci * c.k * c.k, -1, 1);
    const dys = rng.uniformArray(c.n * c.co * oh * ow, -1, 1);
    const label = `conv ${c.k}x${c.k}/${c.stride} [${c.n},${c.ci},${c.h},${c.w}]->${c.co}`;

    const x = tensor(xs, [c.n, c.ci, c.h, c.w]);
    const w = tensor(ws, [c.co, c.ci, c.k, c.k]);
    const dy = tensor(dys, [c.n, c.co, oh, ow]);
    const opts = { stride: c.stride, padding: c.pad };
    const y = noGrad(() => conv2d(x, w, null, opts));
    const yOurs = await y.read();
    x.requiresGrad = true;
    w.requiresGrad = true;
    const y2 = conv2d(x, w, null, opts);
    backward(y2, dy);
    const dxOurs = await x.grad!.read();
    const dwOurs = await w.grad!.read();
    [x, w, dy, y, y2].forEach((t) => t.dispose());

    const pad = [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]] as TF.backend_util.ExplicitPadding;
    const tx = tf.tidy(() => tf.transpose(tf.tensor4d(xs, [c.n, c.ci, c.h, c.w]), [0, 2, 3, 1])) as TF.Tensor4D;
    const tw = tf.tidy(() => tf.transpose(tf.tensor4d(ws, [c.co, c.ci, c.k, c.k]), [2, 3, 1, 0])) as TF.Tensor4D;
    const tdy = tf.tidy(() => tf.transpose(tf.tensor4d(dys, [c.n, c.co, oh, ow]), [0, 2, 3, 1])) as TF.Tensor4D;
    const f = (a: TF.Tensor, b: TF.Tensor) => tf.conv2d(a as TF.Tensor4D, b as TF.Tensor4D, c.stride, pad);
    const yTf = await tfData(tf.tidy(() => tf.transpose(f(tx, tw), [0, 3, 1, 2])));
    const [gx, gw] = tf.grads(f)([tx, tw], tdy);
    const dxTf = await tfData(tf.tidy(() => tf.transpose(gx!, [0, 3, 1, 2])));
    const dwTf = await tfData(tf.tidy(() => tf.transpose(gw!, [3, 2, 0, 1])));
    [tx, tw, tdy, gx!, gw!].forEach((t) => t.dispose());

    for (const [what, a, b] of [['fwd', yOurs, yTf], ['dgrad', dxOurs, dxTf], ['wgrad', dwOurs, dwTf]] as const) {
      const e = relErr(a, b);
      out.push({ name: `${label} ${what}`, relErr: e, ok: e <= TOL });
    }
  }
  if (matmul) {
    const [m, k, n] = [37, 29, 23];
    const as = rng.uniformArray(m * k, -1, 1);
    const bs = rng.uniformArray(k * n, -1, 1);
    const a = tensor(as, [m, k]);
    const b = tensor(bs, [k, n]);
    const c = noGrad(() => matmul(a, b));
    const ours = await c.read();
    [a, b, c].forEach((t) => t.dispose());
    const ref = await tfData(tf.tidy(() => tf.matMul(tf.tensor2d(as, [m, k]), tf.tensor2d(bs, [k, n]))));
    const e = relErr(ours, ref);
    out.push({ name: `matmul ${m}x${k}x${n}`, relErr: e, ok: e <= TOL });
  }
  return out;
}
