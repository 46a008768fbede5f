import t from 'tap';
import * as E from '../src/engine/index.js';
import { conv2d, convTranspose2d, convTuning, naive, conv2dGeometry } from '../src/engine/ops/conv.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { eachConvProduct, type ConvRefGeometry } from './helpers/conv-reference.js';

await gpu();

// ---------------------------------------------------------------------------------------------
// Plain TypeScript references (float64 accumulation, written from the definitions).

type Geo = ConvRefGeometry;
const eachProduct = eachConvProduct;

function refForward(g: Geo, x: Float32Array, w: Float32Array, bias: Float32Array | null): Float64Array {
  const y = new Float64Array(g.nb * g.co * g.oh * g.ow);
  eachProduct(g, (xi, yi, wi) => (y[yi]! += x[xi]! * w[wi]!));
  if (bias) for (let i = 0; i < y.length; i++) y[i]! += bias[Math.floor(i / (g.oh * g.ow)) % g.co]!;
  return y;
}

function refDataGrad(g: Geo, gy: Float32Array, w: Float32Array): Float64Array {
  const gx = new Float64Array(g.nb * g.ci * g.h * g.w);
  eachProduct(g, (xi, yi, wi) => (gx[xi]! += gy[yi]! * w[wi]!));
  return gx;
}

function refWeightGrad(g: Geo, x: Float32Array, gy: Float32Array): Float64Array {
  const gw = new Float64Array(g.co * g.ci * g.kh * g.kw);
  eachProduct(g, (xi, yi, wi) => (gw[wi]! += gy[yi]! * x[xi]!));
  return gw;
}

/** ConvTranspose2d by its scatter definition: each input pixel spreads x * w over the output. */
function refConvTranspose(
  x: Float32Array, [nb, cin, h, wd]: number[], w: Float32Array, [, cout, kh, kw]: number[], bias: Float32Array | null,
  [sh, sw]: number[], [ph, pw]: number[], [oph, opw]: number[], [dh, dw]: number[],
): { out: Float64Array; shape: number[] } {
  const hout = (h! - 1) * sh! - 2 * ph! + dh! * (kh! - 1) + oph! + 1;
  const wout = (wd! - 1) * sw! - 2 * pw! + dw! * (kw! - 1) + opw! + 1;
  const out = new Float64Array(nb! * cout! * hout * wout);
  for (let b = 0; b < nb!; b++)
    for (let ci = 0; ci < cin!; ci++)
      for (let ih = 0; ih < h!; ih++)
        for (let iw = 0; iw < wd!; iw++) {
          const v = x[((b * cin! + ci) * h! + ih) * wd! + iw]!;
          for (let co = 0; co < cout!; co++)
            for (let a = 0; a < kh!; a++) {
              const oh = ih * sh! - ph! + a * dh!;
              if (oh < 0 || oh >= hout) continue;
              for (let c = 0; c < kw!; c++) {
                const ow = iw * sw! - pw! + c * dw!;
                if (ow < 0 || ow >= wout) continue;
                out[((b * cout! + co) * hout + oh) * wout + ow]! += v * w[((ci * cout! + co) * kh! + a) * kw! + c]!;
              }
            }
        }
  if (bias) for (let i = 0; i < out.length; i++) out[i]! += bias[Math.floor(i / (hout * wout)) % cout!]!;
  return { out, shape: [nb!, cout!, hout, wout] };
}

const close = (a: Float32Array, b: ArrayLike<number>) => closeness(a, b, 2e-4, 2e-5);

// ---------------------------------------------------------------------------------------------

interface Case {
  x: [number, number, number, number];
  co: number;
  k: [number, number];
  stride?: [number, number];
  padding?: [number, number];
  dilation?: [number, number];
  bias?: boolean;
}

// Widths that are multiples of 4 can take the cooperative aligned-load path of the fast kernel,
// the others the per-invocation window path. The kernel picks cooperative loads only for rows
// that (nearly: convTuning.coopMaxPadding) fill whole strips of 32 pixels, which few of these
// cases have: the 'subgroup coop' path forces them wherever rows are aligned. (Each distinct
// kernel geometry compiles its own pipelines, which dominates this file's run time on a cold
// shader cache, so every case covers several things at once.)
const cases: Case[] = [
  { x: [1, 1, 5, 7], co: 1, k: [3, 3], padding: [1, 1], bias: true },
  { x: [3, 3, 9, 16], co: 7, k: [3, 3], padding: [1, 1], bias: true },
  { x: [1, 7, 11, 13], co: 3, k: [1, 1] },
  { x: [3, 3, 10, 17], co: 7, k: [4, 4], stride: [2, 2], padding: [1, 1], bias: true },
  { x: [3, 7, 13, 9], co: 3, k: [3, 3], stride: [2, 2], padding: [1, 1] },
  { x: [1, 3, 11, 36], co: 7, k: [7, 7], padding: [3, 3] },
  { x: [1, 3, 9, 11], co: 1, k: [3, 5], stride: [1, 2], padding: [0, 3] },
  { x: [3, 1, 8, 5], co: 3, k: [2, 3], stride: [2, 1], padding: [2, 0], dilation: [1, 2] },
  { x: [1, 2, 8, 24], co: 3, k: [3, 3], padding: [2, 2], dilation: [2, 2] },
  // Neighbour windows (NBR) with unequal halos (1 column before a quad, 3 after) and a partial
  // last quad: 12 columns in, 10 out.
  { x: [1, 2, 6, 12], co: 5, k: [3, 5], padding: [1, 1] },
  // Tile boundaries: 17 and 9 rows (16-row tiles + a partial one); strips of 32 pixels, partial
  // strips, 1..3 aligned loads per lane.
  { x: [1, 5, 11, 21], co: 17, k: [3, 3], padding: [1, 1], bias: true },
  { x: [2, 4, 7, 40], co: 17, k: [3, 3], padding: [1, 1], bias: true },
  { x: [1, 19, 9, 72], co: 9, k: [4, 4], stride: [2, 2], padding: [1, 1], bias: true },
  // Many columns: several workgroups along the pixels.
  { x: [3, 3, 33, 35], co: 7, k: [3, 3], padding: [1, 1], bias: true },
  // Weight gradients from vec4 blocks carried along the row (XV: one tap group, stride 1, rows
  // of whole quads): windows of 1, 2 and 3 blocks, starting 0 and 1 elements into a block.
  { x: [1, 4, 3, 8], co: 3, k: [1, 1] },
  { x: [2, 3, 5, 8], co: 5, k: [2, 4], padding: [1, 3] },
  // Kernel wider than the fast kernel's unrolled 7 taps (reference-kernel fallback).
  { x: [1, 2, 5, 12], co: 3, k: [1, 9], padding: [0, 4] },
  // Tiled kernel: more rows than a 128-row tile, ragged K, several column tiles, and a weight
  // gradient long enough (K = 2 * 33 * 37) to be split into partial sums.
  { x: [2, 5, 33, 37], co: 130, k: [3, 3], padding: [1, 1], bias: true },
  // One output channel, few pixels, long K: the tiled forward splits K (bias added once).
  { x: [1, 40, 9, 10], co: 1, k: [4, 4], padding: [1, 1], bias: true },
];

// Every case runs on both kernel families: the CPU-shaped subgroup kernels (conv2d.wgsl) and the
// GPU-shaped tiled kernels (conv2d_tiled.wgsl); 'auto' would test only one of them per machine.
// The subgroup kernels read small convolutions' weights directly (every case here) and pack
// large ones first: 'subgroup packed' forces packing, on every third case. On software adapters
// the subgroup kernels schedule their tiles dynamically (one workgroup per worker thread, see DYN
// in conv2d.wgsl): 'subgroup coop' runs 5 workgroups per dispatch instead (every group's last
// grab, the counter's reset, more groups than threads), and 'subgroup static' the one-workgroup-
// per-tile grid GPUs take, on every third case.
const PATHS = ['subgroup', 'subgroup coop', 'subgroup packed', 'subgroup static', 'tiled'] as const;
const DIRECT_MAX = convTuning.directMaxFlops;
const COOP_MAX = convTuning.coopMaxPadding;
const WGRAD_TARGET = convTuning.wgradTarget;
function usePath(path: (typeof PATHS)[number]): void {
  E.engine().convKernels = path === 'tiled' ? 'tiled' : 'subgroup';
  convTuning.directMaxFlops = path === 'subgroup packed' ? -1 : DIRECT_MAX;
  convTuning.coopMaxPadding = path === 'subgroup coop' ? Infinity : COOP_MAX;
  convTuning.dynGroups = path === 'subgroup coop' ? 5 : null;
  convTuning.dyn = path === 'subgroup static' ? false : null;
}
t.teardown(() => {
  E.engine().convKernels = 'auto';
  convTuning.directMaxFlops = DIRECT_MAX;
  convTuning.coopMaxPadding = COOP_MAX;
  convTuning.dynGroups = null;
  convTuning.dyn = null;
});

function label(c: Case): string {
  return `x ${JSON.stringify(c.x)} co ${c.co} k ${c.k} s ${c.stride ?? [1, 1]} p ${c.padding ?? [0, 0]} d ${c.dilation ?? [1, 1]}${c.bias ? ' +bias' : ''}`;
}

for (const path of PATHS) for (const [ci, c] of cases.entries()) {
  if (path === 'subgroup packed' && ci % 3 !== 0) continue;
  if (path === 'subgroup static' && ci % 3 !== 1) continue;
  // (aligned source rows: x in the forward and weight gradient, dy in the data gradient)
  const ow = conv2dGeometry('test', c.x, [c.co, c.x[1], ...c.k], c).ow;
  if (path === 'subgroup coop' && c.x[3] % 4 !== 0 && ow % 4 !== 0) continue;
  t.test(`[${path}] conv2d forward and gradients: ${label(c)}`, async (t) => {
    usePath(path);
    const wshape = [c.co, c.x[1], c.k[0], c.k[1]];
    const opts = { stride: c.stride, padding: c.padding, dilation: c.dilation };
    const g = conv2dGeometry('test', c.x, wshape, opts);
    const nx = c.x.reduce((a, b) => a * b, 1);
    const xd = randomArray(nx, 10 + ci);
    const wd = randomArray(wshape.reduce((a, b) => a * b, 1), 20 + ci);
    const bd = c.bias ? randomArray(c.co, 30 + ci) : null;
    const gyd = randomArray(g.nb * g.co * g.oh * g.ow, 40 + ci);
    await E.tidy(async () => {
      const x = E.parameter(E.tensor(xd, c.x));
      const w = E.parameter(E.tensor(wd, wshape));
      const b = bd ? E.parameter(E.tensor(bd, [c.co])) : null;
      const y = conv2d(x, w, b, opts);
      t.same(y.shape, [g.nb, g.co, g.oh, g.ow], 'output shape');
      const fy = close(await y.read(), refForward(g, xd, wd, bd));
      t.ok(fy.ok, `forward: ${fy.msg}`);
      E.backward(y, E.tensor(gyd, y.shape));
      const fx = close(await x.grad!.read(), refDataGrad(g, gyd, wd));
      t.ok(fx.ok, `d/dx: ${fx.msg}`);
      const fw = close(await w.grad!.read(), refWeightGrad(g, xd, gyd));
      t.ok(fw.ok, `d/dw: ${fw.msg}`);
      if (b) {
        const gb = new Float64Array(c.co);
        gyd.forEach((v, i) => (gb[Math.floor(i / (g.oh * g.ow)) % c.co]! += v));
        const fb = close(await b.grad!.read(), gb);
        t.ok(fb.ok, `d/dbias: ${fb.msg}`);
      }
    });
  });
}

interface TCase {
  x: [number, number, number, number];
  co: number;
  k: [number, number];
  stride?: [number, number];
  padding?: [number, number];
  outputPadding?: [number, number];
  dilation?: [number, number];
  bias?: boolean;
}

const tcases: TCase[] = [
  { x: [1, 1, 4, 5], co: 1, k: [3, 3], bias: true },
  { x: [3, 7, 5, 6], co: 3, k: [3, 3], stride: [2, 2], padding: [1, 1], outputPadding: [1, 1], bias: true },
  { x: [1, 3, 6, 5], co: 7, k: [4, 4], stride: [2, 2], padding: [1, 1], bias: true },
  { x: [1, 7, 5, 5], co: 3, k: [3, 3], padding: [2, 2], dilation: [2, 2], outputPadding: [1, 1] },
  { x: [3, 17, 6, 7], co: 5, k: [3, 2], stride: [3, 2], padding: [1, 0], outputPadding: [2, 1] },
  // Aligned input rows (cooperative loads in the forward, which is a data-gradient kernel).
  { x: [1, 3, 3, 4], co: 1, k: [1, 1], stride: [3, 2] },
  { x: [1, 3, 5, 4], co: 17, k: [7, 7], stride: [1, 1], padding: [3, 3], bias: true },
  { x: [2, 3, 6, 36], co: 4, k: [4, 4], stride: [2, 2], padding: [1, 1] },
];

for (const path of PATHS) for (const [ci, c] of tcases.entries()) {
  if (path === 'subgroup packed' && ci % 3 !== 0) continue;
  if (path === 'subgroup coop' && c.x[3] % 4 !== 0) continue;
  t.test(`[${path}] convTranspose2d forward and gradients: x ${JSON.stringify(c.x)} co ${c.co} k ${c.k} s ${c.stride ?? 1} p ${c.padding ?? 0} op ${c.outputPadding ?? 0} d ${c.dilation ?? 1}`, async (t) => {
    usePath(path);
    const wshape = [c.x[1], c.co, c.k[0], c.k[1]];
    const opts = { stride: c.stride, padding: c.padding, outputPadding: c.outputPadding, dilation: c.dilation };
    const xd = randomArray(c.x.reduce((a, b) => a * b, 1), 50 + ci);
    const wd = randomArray(wshape.reduce((a, b) => a * b, 1), 60 + ci);
    const bd = c.bias ? randomArray(c.co, 70 + ci) : null;
    const s = c.stride ?? [1, 1], p = c.padding ?? [0, 0], op = c.outputPadding ?? [0, 0], d = c.dilation ?? [1, 1];
    const ref = refConvTranspose(xd, c.x, wd, wshape, bd, s, p, op, d);
    await E.tidy(async () => {
      const x = E.parameter(E.tensor(xd, c.x));
      const w = E.parameter(E.tensor(wd, wshape));
      const b = bd ? E.parameter(E.tensor(bd, [c.co])) : null;
      const y = convTranspose2d(x, w, b, opts);
      t.same(y.shape, ref.shape, 'output shape');
      const fy = close(await y.read(), ref.out);
      t.ok(fy.ok, `forward: ${fy.msg}`);
      // Gradients by the scatter definition: d/dx[b,ci,ih,iw] = sum gy[out pos] * w, d/dw = sum gy * x.
      const gyd = randomArray(y.size, 80 + ci);
      const [nb, cin, h, wd_] = c.x;
      const [, cout, hout, wout] = ref.shape as [number, number, number, number];
      const gx = new Float64Array(xd.length);
      const gw = new Float64Array(wd.length);
      for (let bb = 0; bb < nb; bb++)
        for (let i = 0; i < cin; i++)
          for (let ih = 0; ih < h; ih++)
            for (let iw = 0; iw < wd_; iw++)
              for (let o = 0; o < cout; o++)
                for (let a = 0; a < c.k[0]; a++) {
                  const oh = ih * s[0] - p[0] + a * d[0];
                  if (oh < 0 || oh >= hout) continue;
                  for (let e = 0; e < c.k[1]; e++) {
                    const ow = iw * s[1] - p[1] + e * d[1];
                    if (ow < 0 || ow >= wout) continue;
                    const gv = gyd[((bb * cout + o) * hout + oh) * wout + ow]!;
                    const xi = ((bb * cin + i) * h + ih) * wd_ + iw;
                    const wi = ((i * cout + o) * c.k[0] + a) * c.k[1] + e;
                    gx[xi]! += gv * wd[wi]!;
                    gw[wi]! += gv * xd[xi]!;
                  }
                }
      E.backward(y, E.tensor(gyd, y.shape));
      const fx = close(await x.grad!.read(), gx);
      t.ok(fx.ok, `d/dx: ${fx.msg}`);
      const fw = close(await w.grad!.read(), gw);
      t.ok(fw.ok, `d/dw: ${fw.msg}`);
      if (b) {
        const gb = new Float64Array(c.co);
        gyd.forEach((v, i) => (gb[Math.floor(i / (hout * wout)) % c.co]! += v));
        const fb = close(await b.grad!.read(), gb);
        t.ok(fb.ok, `d/dbias: ${fb.msg}`);
      }
    });
  });
}

t.test('a small convolution reads its weights directly: no packing launches', async (t) => {
  const eng = E.engine();
  const launches = async (path: 'subgroup' | 'subgroup packed') => {
    usePath(path);
    return E.tidy(async () => {
      const x = E.parameter(E.randn([1, 4, 8, 8], 1));
      const w = E.parameter(E.randn([5, 4, 3, 3], 2));
      const gy = E.ones([1, 5, 8, 8]);
      const d0 = eng.recorder.dispatches;
      const y = conv2d(x, w, null, { padding: 1 });
      const forward = eng.recorder.dispatches - d0;
      E.backward(y, gy);
      const total = eng.recorder.dispatches - d0;
      await x.grad!.read();
      return { forward, total };
    });
  };
  const direct = await launches('subgroup');
  const packed = await launches('subgroup packed');
  usePath('subgroup');
  t.equal(direct.forward, 1, 'forward: one launch');
  t.equal(packed.forward, 2, 'forced packing: pack + convolution');
  t.equal(packed.total - direct.total, 2, 'packing would add one launch to the forward and one to the data gradient');
});

t.test('a stride-2 data gradient takes one launch for its stride phases (two along the width when their rows differ)', async (t) => {
  usePath('subgroup');
  const eng = E.engine();
  t.teardown(() => void (convTuning.mergeWidthPhases = true));
  await E.tidy(async () => {
    const x = E.randn([1, 4, 5, 6], 1);
    const w = E.randn([4, 3, 3, 3], 2);
    const outs: Float32Array[] = [];
    for (const [merge, launches] of [[true, 1], [false, 2]] as const) {
      convTuning.mergeWidthPhases = merge;
      const d0 = eng.recorder.dispatches;
      const y = convTranspose2d(x, w, null, { stride: 2, padding: 1, outputPadding: 1 });
      t.equal(eng.recorder.dispatches - d0, launches, `convTranspose2d stride 2 forward, width phases ${merge ? 'merged' : 'apart'}: ${launches} launch(es), not 4`);
      t.same(y.shape, [1, 3, 10, 12]);
      outs.push(await y.read());
    }
    t.same(outs[0], outs[1], 'the same values either way');
    // An odd output width: the phases' rows have 3 and 2 quads, so they keep one launch each.
    convTuning.mergeWidthPhases = true;
    const d0 = eng.recorder.dispatches;
    convTranspose2d(E.randn([1, 4, 5, 9], 3), w, null, { stride: 2, padding: 1 });
    t.equal(eng.recorder.dispatches - d0, 2, 'output width 17: 2 launches');
  });
});

t.test('reference (naive) kernels agree with the TypeScript reference', async (t) => {
  const xs = [3, 3, 7, 9];
  const ws = [5, 3, 3, 3];
  const g = conv2dGeometry('test', xs, ws, { stride: 2, padding: 1 });
  const xd = randomArray(3 * 3 * 7 * 9, 1);
  const wd = randomArray(5 * 27, 2);
  const bd = randomArray(5, 3);
  const gyd = randomArray(g.nb * g.co * g.oh * g.ow, 4);
  await E.tidy(async () => {
    const x = E.tensor(xd, xs), w = E.tensor(wd, ws), b = E.tensor(bd, [5]), gy = E.tensor(gyd, [g.nb, g.co, g.oh, g.ow]);
    const y = E.zeros([g.nb, g.co, g.oh, g.ow]);
    naive(0, g, x, w, b, y);
    t.ok(close(await y.read(), refForward(g, xd, wd, bd)).ok, 'forward');
    const gx = E.zeros(xs);
    naive(1, g, gy, w, null, gx);
    t.ok(close(await gx.read(), refDataGrad(g, gyd, wd)).ok, 'data gradient');
    const gw = E.zeros(ws);
    naive(2, g, x, gy, null, gw);
    t.ok(close(await gw.read(), refWeightGrad(g, xd, gyd)).ok, 'weight gradient');
  });
});

t.test('shape errors name the op and the shapes', async (t) => {
  const x = E.zeros([1, 3, 8, 8]);
  t.throws(() => conv2d(x, E.zeros([4, 2, 3, 3]), null), /conv2d: input \[1, 3, 8, 8\] has 3 channels but weight \[4, 2, 3, 3\]/);
  t.throws(() => conv2d(x, E.zeros([4, 3, 9, 9]), null), /conv2d: .*empty output/);
  t.throws(() => conv2d(x, E.zeros([4, 3, 3, 3]), E.zeros([3])), /conv2d: bias must have shape \[4\]/);
  t.throws(() => conv2d(E.zeros([3, 8, 8]), E.zeros([4, 3, 3, 3]), null), /conv2d: input must have 4 dimensions/);
  t.throws(() => conv2d(x, E.zeros([4, 3, 3, 3]), null, { stride: 0 }), /conv2d: stride/);
  t.throws(() => convTranspose2d(x, E.zeros([4, 3, 3, 3]), null), /convTranspose2d: input \[1, 3, 8, 8\] has 3 channels but weight \[4, 3, 3, 3\] expects 4/);
  t.throws(() => convTranspose2d(x, E.zeros([3, 3, 3, 3]), null, { stride: 2, outputPadding: 2 }), /outputPadding/);
  E.tidy(() => undefined);
});

t.test('conv2d with an activation epilogue: the same values and gradients as conv2d then the activation, one forward launch', async (t) => {
  const eng = E.engine();
  const xd = randomArray(2 * 3 * 7 * 9, 31);
  const wd = randomArray(5 * 3 * 9, 32).map((v) => 3 * v); // large enough to reach tanh's tails
  const bd = randomArray(5, 33);
  const gyd = randomArray(2 * 5 * 7 * 9, 34);
  const variants = [
    { activation: 'tanh' as const, apart: (y: E.Tensor) => E.tanh(y), f: Math.tanh, df: (y: number) => 1 - y * y },
    { activation: 'leakyRelu' as const, negativeSlope: 0.2, apart: (y: E.Tensor) => E.leakyRelu(y, 0.2), f: (v: number) => (v > 0 ? v : 0.2 * v), df: (y: number) => (y > 0 ? 1 : 0.2) },
    { activation: 'leakyRelu' as const, negativeSlope: 0, apart: (y: E.Tensor) => E.leakyRelu(y, 0), f: (v: number) => Math.max(v, 0), df: (y: number) => (y > 0 ? 1 : 0) },
  ];
  // TypeScript reference: y = act(conv(reflect-pad(x)) + b), then the gradients of sum(gy * y).
  const g = conv2dGeometry('test', [2, 3, 7, 9], [5, 3, 3, 3], { padding: 1, padMode: 'reflect' });
  const pre = new Float64Array(gyd.length);
  eachConvProduct(g, (xi, yi, wi) => (pre[yi]! += xd[xi]! * wd[wi]!), 'reflect');
  pre.forEach((_, i) => (pre[i]! += bd[Math.floor(i / (g.oh * g.ow)) % g.co]!));
  const reference = (v: (typeof variants)[number]) => {
    const y = pre.map(v.f);
    const gpre = y.map((yv, i) => gyd[i]! * v.df(yv));
    const gx = new Float64Array(xd.length);
    const gw = new Float64Array(wd.length);
    const gb = new Float64Array(bd.length);
    eachConvProduct(g, (xi, yi, wi) => {
      gx[xi]! += gpre[yi]! * wd[wi]!;
      gw[wi]! += gpre[yi]! * xd[xi]!;
    }, 'reflect');
    gpre.forEach((d, i) => (gb[Math.floor(i / (g.oh * g.ow)) % g.co]! += d));
    return { y, gx, gw, gb };
  };
  for (const path of PATHS) for (const v of variants) {
    usePath(path);
    await E.tidy(async () => {
      const run = async (fused: boolean) => {
        const x = E.parameter(E.tensor(xd, [2, 3, 7, 9]));
        const w = E.parameter(E.tensor(wd, [5, 3, 3, 3]));
        const b = E.parameter(E.tensor(bd, [5]));
        const d0 = eng.recorder.dispatches;
        const opts = { padding: 1, padMode: 'reflect' as const };
        const y = fused
          ? conv2d(x, w, b, { ...opts, activation: v.activation, ...(v.negativeSlope === undefined ? {} : { negativeSlope: v.negativeSlope }) })
          : v.apart(conv2d(x, w, b, opts));
        const launches = eng.recorder.dispatches - d0;
        E.backward(y, E.tensor(gyd, y.shape));
        return { launches, y: await y.read(), gx: await x.grad!.read(), gw: await w.grad!.read(), gb: await b.grad!.read() };
      };
      const f = await run(true);
      const a = await run(false);
      const name = `[${path}] ${v.activation}${v.negativeSlope === undefined ? '' : ` ${v.negativeSlope}`}`;
      // The subgroup kernels apply it in their store: one launch fewer (the packed path also packs).
      const want = path === 'tiled' ? a.launches : a.launches - 1;
      t.equal(f.launches, want, `${name}: ${want} forward launch(es) (conv2d then the activation: ${a.launches})`);
      const ref = reference(v);
      for (const k of ['y', 'gx', 'gw', 'gb'] as const) {
        const r = closeness(f[k], ref[k], 2e-4, 2e-5);
        t.ok(r.ok, `${name}: ${k} against the TypeScript reference: ${r.msg}`);
        const c = closeness(f[k], a[k], 1e-5, 1e-6);
        t.ok(c.ok, `${name}: ${k} as conv2d then the activation: ${c.msg}`);
      }
    });
  }
  usePath('subgroup');
  t.throws(() => conv2d(E.zeros([1, 1, 3, 3]), E.zeros([1, 1, 3, 3]), null, { activation: 'relu' as 'tanh' }), /unknown activation 'relu'/);
  t.throws(() => conv2d(E.zeros([1, 1, 3, 3]), E.zeros([1, 1, 3, 3]), null, { activation: 'leakyRelu', negativeSlope: -1 }), /negativeSlope must be a finite number >= 0/);
  t.throws(() => conv2d(E.zeros([1, 1, 3, 3]), E.zeros([1, 1, 3, 3]), null, { negativeSlope: 0.2 }), /needs activation/);
});

// A weight used twice in one graph (the discriminator on real and on fake images): the second
// weight-gradient kernel adds the first one's result (no accumulation launch). Two geometries:
// one whose sum the kernel stores whole, one split along K (partial sums, then a separate add).
for (const [xs, split] of [[[1, 3, 6, 8], false], [[1, 2, 20, 20], true]] as [[number, number, number, number], boolean][]) {
  t.test(`a weight used twice: its gradient kernel adds the pending one, ${JSON.stringify(xs)}${split ? ', split' : ''}`, async (t) => {
    E.engine().convKernels = 'subgroup';
    // (the split into partial sums aims at this many workgroups)
    convTuning.wgradTarget = split ? 4 : 1;
    t.teardown(() => {
      convTuning.wgradTarget = WGRAD_TARGET;
      E.engine().convKernels = 'auto';
    });
    const wshape = [3, xs[1], 3, 3];
    const g = conv2dGeometry('test', xs, wshape, { padding: 1 });
    const n = xs.reduce((a, b) => a * b, 1);
    const x1 = randomArray(n, 201), x2 = randomArray(n, 202), wd = randomArray(3 * xs[1] * 9, 203);
    const gy = randomArray(g.nb * g.co * g.oh * g.ow, 204);
    const ref = refWeightGrad(g, x1, gy).map((v, i) => v + refWeightGrad(g, x2, gy)[i]!);
    const eng = E.engine();
    await E.tidy(async () => {
      const w = E.parameter(E.tensor(wd, wshape));
      const y = E.add(conv2d(E.tensor(x1, xs), w, null, { padding: 1 }), conv2d(E.tensor(x2, xs), w, null, { padding: 1 }));
      const seed = E.tensor(gy, y.shape);
      await eng.sync();
      const d0 = eng.recorder.dispatches;
      E.backward(y, seed);
      const launches = eng.recorder.dispatches - d0;
      const c = close(await w.grad!.read(), ref);
      t.ok(c.ok, `sum of both passes' gradients: ${c.msg}`);
      // Unsplit: two weight-gradient launches. Split: each also sums its partials, and the second
      // adds the pending gradient in a launch of its own.
      t.equal(launches, split ? 5 : 2, split ? 'partial sums, then one accumulation launch' : 'two launches: no accumulation launch');
    });
  });
}
