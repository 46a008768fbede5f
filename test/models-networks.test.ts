/**
 * The AsynDGAN networks (ResnetGenerator, PatchDiscriminator, UNet): parameter counts of the
 * reference configurations, PyTorch names, and forward passes checked against plain TypeScript
 * re-implementations of the reference PyTorch code (float64 loops written from networks.py and
 * UNet.py, reading the weights by their PyTorch names), in training and evaluation mode.
 */
import t from 'tap';
import * as E from '../src/engine/index.js';
import { type Module, PatchDiscriminator, patchOutputSize, ResnetGenerator, UNet, type StateDict } from '../src/models/index.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

await gpu();

// ---------------------------------------------------------------------------------------------
// Float64 reference layers on NCHW arrays.

interface T4 {
  s: [number, number, number, number];
  d: Float64Array;
}

const mk = (s: [number, number, number, number]): T4 => ({ s, d: new Float64Array(s[0] * s[1] * s[2] * s[3]) });
const at = (x: T4, n: number, c: number, h: number, w: number) => ((n * x.s[1] + c) * x.s[2] + h) * x.s[3] + w;
const map = (x: T4, f: (v: number) => number): T4 => ({ s: x.s, d: x.d.map(f) });

function conv(x: T4, w: ArrayLike<number>, wShape: number[], b: ArrayLike<number> | null, stride: number, pad: number): T4 {
  const [co, ci, kh, kw] = wShape as [number, number, number, number];
  const [n, , h, wd] = x.s;
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const y = mk([n, co, oh, ow]);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < co; o++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let acc = b ? b[o]! : 0;
          for (let i = 0; i < ci; i++)
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * stride - pad + ky;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * stride - pad + kx;
                if (ix < 0 || ix >= wd) continue;
                acc += x.d[at(x, b0, i, iy, ix)]! * w[((o * ci + i) * kh + ky) * kw + kx]!;
              }
            }
          y.d[at(y, b0, o, oy, ox)] = acc;
        }
  return y;
}

/** PyTorch ConvTranspose2d: weight [Ci, Co, kh, kw]; out = (H - 1) s - 2p + k + output_padding. */
function convT(x: T4, w: ArrayLike<number>, wShape: number[], b: ArrayLike<number> | null, stride: number, pad: number, outPad: number): T4 {
  const [ci, co, kh, kw] = wShape as [number, number, number, number];
  const [n, , h, wd] = x.s;
  const oh = (h - 1) * stride - 2 * pad + kh + outPad;
  const ow = (wd - 1) * stride - 2 * pad + kw + outPad;
  const y = mk([n, co, oh, ow]);
  for (let b0 = 0; b0 < n; b0++)
    for (let o = 0; o < co; o++) for (let p = 0; p < oh * ow; p++) y.d[at(y, b0, o, 0, 0) + p] = b ? b[o]! : 0;
  for (let b0 = 0; b0 < n; b0++)
    for (let i = 0; i < ci; i++)
      for (let iy = 0; iy < h; iy++)
        for (let ix = 0; ix < wd; ix++) {
          const v = x.d[at(x, b0, i, iy, ix)]!;
          for (let o = 0; o < co; o++)
            for (let ky = 0; ky < kh; ky++) {
              const oy = iy * stride - pad + ky;
              if (oy < 0 || oy >= oh) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ox = ix * stride - pad + kx;
                if (ox < 0 || ox >= ow) continue;
                y.d[at(y, b0, o, oy, ox)] += v * w[((i * co + o) * kh + ky) * kw + kx]!;
              }
            }
        }
  return y;
}

function reflectPad(x: T4, p: number): T4 {
  const [n, c, h, w] = x.s;
  const y = mk([n, c, h + 2 * p, w + 2 * p]);
  const r = (i: number, size: number) => (i < 0 ? -i : i >= size ? 2 * (size - 1) - i : i);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let yy = 0; yy < h + 2 * p; yy++)
        for (let xx = 0; xx < w + 2 * p; xx++) y.d[at(y, b, ch, yy, xx)] = x.d[at(x, b, ch, r(yy - p, h), r(xx - p, w))]!;
  return y;
}

/** Per-channel statistics over `groups` (N,H,W for batch norm, H,W per sample for instance norm). */
function normalize(x: T4, perSample: boolean, stats: (c: number, n: number) => [number, number], gamma?: ArrayLike<number>, beta?: ArrayLike<number>): T4 {
  const [n, c, h, w] = x.s;
  const y = mk(x.s);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++) {
      const [mean, variance] = stats(ch, perSample ? b : 0);
      const inv = 1 / Math.sqrt(variance + 1e-5);
      for (let p = 0; p < h * w; p++) {
        const i = at(x, b, ch, 0, 0) + p;
        y.d[i] = (x.d[i]! - mean) * inv * (gamma ? gamma[ch]! : 1) + (beta ? beta[ch]! : 0);
      }
    }
  return y;
}

function moments(x: T4, ch: number, samples: number[]): [number, number, number] {
  const [, , h, w] = x.s;
  let s = 0;
  let cnt = 0;
  for (const b of samples) for (let p = 0; p < h * w; p++) (s += x.d[at(x, b, ch, 0, 0) + p]!), cnt++;
  const mean = s / cnt;
  let v = 0;
  for (const b of samples) for (let p = 0; p < h * w; p++) v += (x.d[at(x, b, ch, 0, 0) + p]! - mean) ** 2;
  return [mean, v / cnt, cnt];
}

/**
 * Reference BatchNorm2d / InstanceNorm2d(affine=False) by PyTorch name prefix. In batch training
 * mode, the expected updated running statistics are recorded in `updates`.
 */
/** Weights by PyTorch name: a module's state dict, or float64 copies for finite differences. */
type RefState = Record<string, { shape: number[]; data: ArrayLike<number> | BigInt64Array }>;
const F = (sd: RefState, name: string) => sd[name]!.data as ArrayLike<number>;

function makeNorm(sd: RefState, kind: 'batch' | 'instance', training: boolean, updates: Map<string, [number[], number[]]>) {
  return (prefix: string, x: T4): T4 => {
    const [n, c] = x.s;
    if (kind === 'instance') {
      return normalize(x, true, (ch, b) => {
        const [m, v] = moments(x, ch, [b]);
        return [m, v];
      });
    }
    const g = F(sd, `${prefix}.weight`);
    const be = F(sd, `${prefix}.bias`);
    const rm = F(sd, `${prefix}.running_mean`);
    const rv = F(sd, `${prefix}.running_var`);
    if (!training) return normalize(x, false, (ch) => [rm[ch]!, rv[ch]!], g, be);
    const all = [...Array(n).keys()];
    const newMean: number[] = [];
    const newVar: number[] = [];
    for (let ch = 0; ch < c; ch++) {
      const [m, v, cnt] = moments(x, ch, all);
      newMean.push(0.9 * rm[ch]! + 0.1 * m);
      newVar.push(0.9 * rv[ch]! + 0.1 * (v * cnt) / (cnt - 1));
    }
    updates.set(prefix, [newMean, newVar]);
    return normalize(x, false, (ch) => moments(x, ch, all).slice(0, 2) as [number, number], g, be);
  };
}

const relu = (x: T4) => map(x, (v) => Math.max(v, 0));
const lrelu = (x: T4) => map(x, (v) => (v > 0 ? v : 0.2 * v));
const addT = (a: T4, b: T4): T4 => ({ s: a.s, d: a.d.map((v, i) => v + b.d[i]!) });

function W(sd: RefState, name: string): [ArrayLike<number>, number[]] {
  const e = sd[name];
  if (!e) throw new Error(`reference: no tensor '${name}' in the state dict`);
  return [e.data as ArrayLike<number>, e.shape];
}
const B = (sd: RefState, name: string) => (sd[name] ? F(sd, name) : null);

/** networks.py ResnetGenerator.forward, written from the Python (indices as in nn.Sequential). */
function refGenerator(sd: RefState, x: T4, o: { blocks: number; norm: 'batch' | 'instance'; training: boolean; dropout: boolean }) {
  const updates = new Map<string, [number[], number[]]>();
  const norm = makeNorm(sd, o.norm, o.training, updates);
  const cv = (i: number, h: T4, stride: number, pad: number) => conv(h, ...W(sd, `model.${i}.weight`), B(sd, `model.${i}.bias`), stride, pad);
  let h = relu(norm('model.2', cv(1, reflectPad(x, 3), 1, 0)));
  h = relu(norm('model.5', cv(4, h, 2, 1)));
  h = relu(norm('model.8', cv(7, h, 2, 1)));
  let i = 10;
  for (let k = 0; k < o.blocks; k++, i++) {
    const p = `model.${i}.conv_block`;
    const c2 = o.dropout ? 6 : 5; // [pad, conv, norm, relu, (dropout), pad, conv, norm]
    let r = conv(reflectPad(h, 1), ...W(sd, `${p}.1.weight`), B(sd, `${p}.1.bias`), 1, 0);
    r = relu(norm(`${p}.2`, r));
    r = conv(reflectPad(r, 1), ...W(sd, `${p}.${c2}.weight`), B(sd, `${p}.${c2}.bias`), 1, 0);
    r = norm(`${p}.${c2 + 1}`, r);
    h = addT(h, r);
  }
  for (let k = 0; k < 2; k++, i += 3) {
    h = convT(h, ...W(sd, `model.${i}.weight`), B(sd, `model.${i}.bias`), 2, 1, 1);
    h = relu(norm(`model.${i + 1}`, h));
  }
  h = cv(i + 1, reflectPad(h, 3), 1, 0);
  return { y: map(h, Math.tanh), updates };
}

/** networks.py NLayerDiscriminator.forward. */
function refDiscriminator(sd: RefState, x: T4, o: { layers: number; norm: 'batch' | 'instance'; training: boolean }) {
  const updates = new Map<string, [number[], number[]]>();
  const norm = makeNorm(sd, o.norm, o.training, updates);
  const cv = (i: number, h: T4, stride: number) => conv(h, ...W(sd, `model.${i}.weight`), B(sd, `model.${i}.bias`), stride, 1);
  let h = lrelu(cv(0, x, 2));
  let i = 2;
  for (let n = 1; n < o.layers; n++, i += 3) h = lrelu(norm(`model.${i + 1}`, cv(i, h, 2)));
  h = lrelu(norm(`model.${i + 1}`, cv(i, h, 1)));
  return { y: cv(i + 3, h, 1), updates };
}

function maxPool(x: T4): T4 {
  const [n, c, h, w] = x.s;
  const y = mk([n, c, h >> 1, w >> 1]);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let yy = 0; yy < h >> 1; yy++)
        for (let xx = 0; xx < w >> 1; xx++) {
          let m = -Infinity;
          for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) m = Math.max(m, x.d[at(x, b, ch, 2 * yy + dy, 2 * xx + dx)]!);
          y.d[at(y, b, ch, yy, xx)] = m;
        }
  return y;
}

function cat(a: T4, b: T4): T4 {
  const [n, ca, h, w] = a.s;
  const cb = b.s[1];
  const y = mk([n, ca + cb, h, w]);
  for (let s = 0; s < n; s++) {
    y.d.set(a.d.subarray(at(a, s, 0, 0, 0), at(a, s, ca - 1, h - 1, w - 1) + 1), at(y, s, 0, 0, 0));
    y.d.set(b.d.subarray(at(b, s, 0, 0, 0), at(b, s, cb - 1, h - 1, w - 1) + 1), at(y, s, ca, 0, 0));
  }
  return y;
}

/** UNet.py UNet.forward (dropout at the bottleneck is off in evaluation mode, which this covers). */
function refUNet(sd: RefState, x: T4, depth: number, training: boolean) {
  const updates = new Map<string, [number[], number[]]>();
  const norm = makeNorm(sd, 'batch', training, updates);
  const dconv = (p: string, h: T4) => norm(`${p}.norm`, relu(conv(h, ...W(sd, `${p}.conv.weight`), B(sd, `${p}.conv.bias`), 1, 1)));
  const block = (p: string, h: T4) => dconv(`${p}.conv2`, dconv(`${p}.conv1`, h));
  const skips: T4[] = [];
  let h = x;
  for (let i = 1; i <= depth; i++) {
    const f = block(`c${i}`, h);
    skips.push(f);
    h = maxPool(f);
  }
  h = block('cu', h);
  for (let i = depth + 1; i <= 2 * depth; i++) {
    const u = convT(h, ...W(sd, `u${i}.up.weight`), B(sd, `u${i}.up.bias`), 2, 0, 0);
    h = block(`u${i}`, cat(u, skips.pop()!));
  }
  return { y: conv(h, ...W(sd, 'ce.weight'), B(sd, 'ce.bias'), 1, 0), updates };
}

// ---------------------------------------------------------------------------------------------

function input(shape: [number, number, number, number], seed: number): { gpu: E.Tensor; ref: T4 } {
  const data = randomArray(shape[0] * shape[1] * shape[2] * shape[3], seed);
  return { gpu: E.tensor(data, shape), ref: { s: shape, d: Float64Array.from(data) } };
}

/** Compares the module's running statistics after one training pass with the reference updates. */
function checkUpdates(before: StateDict, after: StateDict, updates: Map<string, [number[], number[]]>): [boolean, string][] {
  const out: [boolean, string][] = [[updates.size > 0, 'the reference saw batch norm layers']];
  for (const [prefix, [m, v]] of updates) {
    const cm = closeness(after[`${prefix}.running_mean`]!.data as Float32Array, m, 1e-3, 1e-5);
    const cv = closeness(after[`${prefix}.running_var`]!.data as Float32Array, v, 1e-3, 1e-5);
    out.push([cm.ok && cv.ok, `${prefix} running stats: ${cm.msg}; ${cv.msg}`]);
    const n0 = before[`${prefix}.num_batches_tracked`]!.data[0] as bigint;
    const n1 = after[`${prefix}.num_batches_tracked`]!.data[0] as bigint;
    out.push([n1 === n0 + 1n, `${prefix}.num_batches_tracked ${n0} -> ${n1}`]);
  }
  return out;
}

// Loosen to f32 accumulation over a few hundred terms and normalizations by small batches.
const RTOL = 2e-3;
const ATOL = 2e-4;

t.test('parameter counts of the reference configurations', async (t) => {
  const g = new ResnetGenerator(3, 3, { seed: 1 });
  t.equal(g.numParameters(), 11_383_427, 'resnet_9blocks, ngf 64, batch norm (pix2pix/AsynDGAN)');
  const names = g.namedParameters().map(([n]) => n);
  t.equal(names[0], 'model.1.weight');
  t.notOk(names.includes('model.1.bias'), 'no conv bias before batch norm');
  t.ok(names.includes('model.10.conv_block.1.weight'));
  t.ok(names.includes('model.18.conv_block.6.bias'), 'block 9 second norm (no dropout)');
  t.ok(names.includes('model.19.weight') && names.includes('model.26.bias'));
  t.same(g.namedParameters().find(([n]) => n === 'model.19.weight')![1].shape, [256, 128, 3, 3], 'transposed conv weight [in, out, k, k]');
  t.same(g.namedParameters().find(([n]) => n === 'model.26.weight')![1].shape, [3, 64, 7, 7]);
  t.equal(g.namedBuffers().length, 3 * (2 + 1 + 2 + 18), 'running_mean/var + num_batches_tracked per BatchNorm2d');
  g.dispose();

  const gd = new ResnetGenerator(3, 3, { seed: 1, dropout: true, ngf: 8, blocks: 2 });
  const dn = gd.namedParameters().map(([n]) => n);
  t.ok(dn.includes('model.10.conv_block.6.weight') && dn.includes('model.10.conv_block.7.weight'), 'dropout shifts the second conv to index 6');
  gd.dispose();

  // Instance norm: convs get biases, norms have no parameters:
  // 3*64*49+64 + 64*128*9+128 + 128*256*9+256 + 9*2*(256*256*9+256) + 256*128*9+128 + 128*64*9+64 + 64*3*49+3
  const gi = new ResnetGenerator(3, 3, { seed: 1, norm: 'instance' });
  t.equal(gi.numParameters(), 11_378_179);
  t.equal(gi.namedBuffers().length, 0);
  gi.dispose();

  // PatchGAN, 3 layers, ndf 64, 4 input channels (mask + image), batch norm:
  // 4*64*16+64 | 64*128*16 + 2*128 | 128*256*16 + 2*256 | 256*512*16 + 2*512 | 512*1*16+1
  const d = new PatchDiscriminator(4, { seed: 2 });
  t.equal(d.numParameters(), 4160 + 131328 + 524800 + 2098176 + 8193);
  t.equal(d.numParameters(), 2_766_657);
  t.same(d.namedParameters().map(([n]) => n), [
    'model.0.weight', 'model.0.bias', 'model.2.weight', 'model.3.weight', 'model.3.bias',
    'model.5.weight', 'model.6.weight', 'model.6.bias', 'model.8.weight', 'model.9.weight', 'model.9.bias',
    'model.11.weight', 'model.11.bias',
  ]);
  d.dispose();
  const di = new PatchDiscriminator(4, { seed: 2, norm: 'instance' });
  t.equal(di.numParameters(), 4160 + 131072 + 128 + 524288 + 256 + 2097152 + 512 + 8193);
  di.dispose();

  // The reference UNet.py UNet(in_c=3, out_c=2): depth 4, width 64 (dilated_conv = conv bias + BN).
  const dc = (i: number, o: number) => i * o * 9 + o + 2 * o;
  const down = (i: number, o: number) => dc(i, o) + dc(o, o);
  const up = (i: number, o: number) => i * (i / 2) * 4 + i / 2 + dc(i / 2 + o, o) + dc(o, o);
  const expected = down(3, 64) + down(64, 128) + down(128, 256) + down(256, 512) + down(512, 1024) +
    up(1024, 512) + up(512, 256) + up(256, 128) + up(128, 64) + 64 * 2 + 2;
  t.equal(expected, 31_043_586);
  const u = new UNet(3, 2, { width: 64, depth: 4, seed: 3 });
  t.equal(u.numParameters(), expected);
  t.ok(u.namedParameters().some(([n]) => n === 'u5.up.weight'));
  t.ok(u.namedBuffers().some(([n]) => n === 'c1.conv1.norm.running_var'));
  t.same(u.namedParameters().find(([n]) => n === 'u5.conv1.conv.weight')![1].shape, [512, 1024, 3, 3]);
  u.dispose();
});

for (const norm of ['batch', 'instance'] as const) {
  for (const training of [true, false]) {
    t.test(`ResnetGenerator forward = reference (${norm} norm, ${training ? 'train' : 'eval'})`, async (t) => {
      const g = new ResnetGenerator(3, 2, { ngf: 4, blocks: 2, norm, seed: 5 });
      if (!training) {
        // Non-trivial running statistics for evaluation mode.
        const warm = input([2, 3, 16, 12], 77);
        E.tidy(() => g.train().forward(warm.gpu));
        warm.gpu.dispose();
        g.eval();
      }
      const sd = await g.stateDict();
      const x = input([2, 3, 16, 12], 8);
      const y = E.tidy(() => g.forward(x.gpu));
      t.same(y.shape, [2, 2, 16, 12]);
      const ref = refGenerator(sd, x.ref, { blocks: 2, norm, training, dropout: false });
      const c = closeness(await y.read(), ref.y.d, RTOL, ATOL);
      t.ok(c.ok, c.msg);
      if (training && norm === 'batch') for (const [ok, msg] of checkUpdates(sd, await g.stateDict(), ref.updates)) t.ok(ok, msg);
      if (!training) {
        const after = await g.stateDict();
        for (const k of Object.keys(sd)) t.same(after[k]!.data, sd[k]!.data, `eval leaves ${k} unchanged`);
      }
      [y, x.gpu].forEach((v) => v.dispose());
      g.dispose();
    });
  }
}

for (const norm of ['batch', 'instance'] as const) {
  t.test(`PatchDiscriminator forward = reference (${norm} norm, train) and 256x256 -> 30x30`, async (t) => {
    const d = new PatchDiscriminator(4, { ndf: 4, layers: 3, norm, seed: 6 });
    const sd = await d.stateDict();
    const x = input([2, 4, 40, 36], 9);
    const y = E.tidy(() => d.forward(x.gpu));
    t.same(y.shape, [2, 1, patchOutputSize(40), patchOutputSize(36)]);
    const ref = refDiscriminator(sd, x.ref, { layers: 3, norm, training: true });
    t.same(ref.y.s, y.shape);
    const c = closeness(await y.read(), ref.y.d, RTOL, ATOL);
    t.ok(c.ok, c.msg);
    if (norm === 'batch') for (const [ok, msg] of checkUpdates(sd, await d.stateDict(), ref.updates)) t.ok(ok, msg);
    [y, x.gpu].forEach((v) => v.dispose());

    t.equal(patchOutputSize(256), 30);
    const big = E.tidy(() => E.randn([1, 4, 256, 256], 3));
    const out = E.tidy(() => d.eval().forward(big));
    t.same(out.shape, [1, 1, 30, 30]);
    [big, out].forEach((v) => v.dispose());
    d.dispose();
  });
}

t.test('UNet forward = reference (eval, depth 2) and shapes', async (t) => {
  const u = new UNet(3, 2, { depth: 2, width: 4, seed: 7 });
  // Warm the running statistics, then compare in evaluation mode (bottleneck dropout off).
  const warm = input([2, 3, 16, 8], 70);
  E.tidy(() => u.forward(warm.gpu));
  warm.gpu.dispose();
  u.eval();
  const sd = await u.stateDict();
  const x = input([3, 3, 16, 8], 10);
  const y = E.tidy(() => u.forward(x.gpu));
  t.same(y.shape, [3, 2, 16, 8]);
  const ref = refUNet(sd, x.ref, 2, false);
  const c = closeness(await y.read(), ref.y.d, RTOL, ATOL);
  t.ok(c.ok, c.msg);
  [y, x.gpu].forEach((v) => v.dispose());
  u.dispose();

  const ub = new UNet(1, 3, { depth: 3, width: 4, upsample: 'bilinear', norm: 'instance', seed: 8 });
  const xb = E.randn([2, 1, 24, 16], 4);
  const yb = E.tidy(() => ub.forward(xb));
  t.same(yb.shape, [2, 3, 24, 16]);
  t.throws(() => ub.forward(E.randn([1, 1, 20, 16], 1)), /multiples of 8/);
  [xb, yb].forEach((v) => v.dispose());
  ub.dispose();
});

// ---------------------------------------------------------------------------------------------
// Backward through whole networks: the GPU autograd gradients (input and every parameter tensor)
// against central differences of the float64 reference forward (eps 1e-5, so no ReLU kink is
// crossed and no f32 rounding enters the finite differences).

async function gradCheck(
  t: { ok(v: boolean, msg: string): unknown },
  name: string,
  net: Module,
  ref: (sd: RefState, x: T4) => T4,
  shape: [number, number, number, number],
  seed: number,
) {
  const rng = new E.Rng(seed);
  const xs = input(shape, seed);
  xs.gpu.requiresGrad = true;
  const sd = await net.stateDict();
  const y = net.forward(xs.gpu);
  const r = rng.uniformArray(y.size, -1, 1);
  E.backward(y, E.tensor(r, y.shape));
  const gx = await xs.gpu.grad!.read();
  const grads = new Map<string, Float32Array>();
  for (const [n, p] of net.namedParameters()) grads.set(n, await p.grad!.read());
  net.zeroGrad();
  [y, xs.gpu].forEach((v) => v.dispose());

  const sd64: RefState = {};
  for (const [k, v] of Object.entries(sd)) sd64[k] = { shape: v.shape, data: v.data instanceof Float32Array ? Float64Array.from(v.data) : v.data };
  const loss = (s: RefState, x: T4) => {
    const out = ref(s, x).d;
    let l = 0;
    for (let i = 0; i < out.length; i++) l += out[i]! * r[i]!;
    return l;
  };
  const eps = 1e-5;
  const central = (arr: Float64Array, i: number, s: RefState, x: T4) => {
    const orig = arr[i]!;
    arr[i] = orig + eps;
    const plus = loss(s, x);
    arr[i] = orig - eps;
    const minus = loss(s, x);
    arr[i] = orig;
    return (plus - minus) / (2 * eps);
  };
  let worst = 0;
  let worstMsg = '';
  const compare = (what: string, analytic: number, numeric: number) => {
    const err = Math.abs(analytic - numeric) / (1e-4 + 1e-2 * Math.abs(numeric));
    if (!(err <= worst)) {
      worst = Number.isNaN(err) ? Infinity : err;
      worstMsg = `${what}: autograd ${analytic}, finite difference ${numeric}`;
    }
  };
  for (let k = 0; k < 12; k++) {
    const i = rng.nextU32() % xs.ref.d.length;
    compare(`input[${i}]`, gx[i]!, central(xs.ref.d, i, sd64, xs.ref));
  }
  let checked = 0;
  for (const [n, g] of grads) {
    const arr = sd64[n]!.data as Float64Array;
    for (let k = 0; k < 2; k++) {
      const i = rng.nextU32() % arr.length;
      compare(`${n}[${i}]`, g[i]!, central(arr, i, sd64, xs.ref));
    }
    checked++;
  }
  t.ok(worst <= 1, `${name}: input and ${checked} parameter tensors, worst ${worst <= 1 ? `ratio ${worst.toFixed(3)}` : worstMsg}`);
}

t.test('gradients through whole networks = finite differences of the float64 reference', async (t) => {
  for (const norm of ['batch', 'instance'] as const) {
    const g = new ResnetGenerator(2, 2, { ngf: 2, blocks: 1, norm, seed: 21 });
    await gradCheck(t, `ResnetGenerator (${norm})`, g, (s, x) => refGenerator(s, x, { blocks: 1, norm, training: true, dropout: false }).y, [2, 2, 8, 12], 1);
    g.dispose();
  }
  const d = new PatchDiscriminator(3, { ndf: 2, seed: 22 });
  await gradCheck(t, 'PatchDiscriminator', d, (s, x) => refDiscriminator(s, x, { layers: 3, norm: 'batch', training: true }).y, [2, 3, 24, 28], 2);
  d.dispose();
  const u = new UNet(2, 3, { depth: 2, width: 2, seed: 23, dropout: 0 });
  await gradCheck(t, 'UNet', u, (s, x) => refUNet(s, x, 2, true).y, [2, 2, 8, 12], 3);
  u.dispose();
});
