/**
 * conv2d with padMode 'reflect' (ReflectionPad2d folded into the convolution's index math) against
 * a plain TypeScript reference of pad-then-convolve, forward, d/dx, d/dw and d/dbias, on both
 * kernel families, with odd image sizes, pads up to 3 and 1-2 channels. (Finite differences of
 * the same op: test/specs/cases-conv.ts, run by gradcheck.test.ts.)
 */
import t from 'tap';
import * as E from '../src/engine/index.js';
import { conv2d, conv2dGeometry, convTuning, type ConvGeometry } from '../src/engine/ops/conv.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { eachConvProduct } from './helpers/conv-reference.js';

await gpu();

/** Every product of the reflect-padded convolution. */
const eachProduct = (g: ConvGeometry, f: (xi: number, yi: number, wi: number) => void) => eachConvProduct(g, f, 'reflect');

interface Case {
  x: [number, number, number, number];
  co: number;
  k: [number, number];
  padding: [number, number];
  stride?: number;
  dilation?: number;
  bias?: boolean;
}

const cases: Case[] = [
  { x: [1, 1, 5, 7], co: 1, k: [3, 3], padding: [1, 1], bias: true },
  { x: [2, 2, 5, 7], co: 3, k: [7, 7], padding: [3, 3], bias: true },
  { x: [1, 2, 7, 5], co: 2, k: [3, 3], padding: [2, 1], stride: 2 },
  // Width a multiple of 4 (the zero-padded forward would take the cooperative loads).
  { x: [1, 2, 5, 8], co: 17, k: [3, 3], padding: [1, 1], dilation: 2, bias: true },
  // "Same" stride-1 kernels (K = 2p + 1), whose data gradient adds the mirrored positions in the
  // kernel: rows and columns that take both mirrors (3 wide), a pad of 3 on 4, every width mod 4
  // (the mirrored columns of a row's end fall in its last or its last two quads), more than 16
  // rows (two row tiles), unequal pads.
  { x: [1, 2, 3, 3], co: 2, k: [3, 3], padding: [1, 1] },
  { x: [1, 1, 4, 4], co: 2, k: [7, 7], padding: [3, 3] },
  { x: [1, 3, 6, 9], co: 2, k: [5, 5], padding: [2, 2] },
  { x: [2, 2, 9, 6], co: 3, k: [3, 3], padding: [1, 1] },
  { x: [1, 2, 13, 10], co: 2, k: [7, 7], padding: [3, 3] },
  { x: [1, 18, 6, 11], co: 3, k: [3, 3], padding: [1, 1] },
  { x: [1, 2, 5, 13], co: 2, k: [3, 7], padding: [1, 3] },
  // Rows of whole quads (the neighbour windows, NBR): 4 quads (a residual block's 16 columns) and
  // two row tiles; 2 quads; 10 quads, where a group of 8 lanes spans two rows and the lanes next
  // to a group edge load their neighbour's columns themselves.
  { x: [1, 3, 5, 16], co: 17, k: [3, 3], padding: [1, 1], bias: true },
  { x: [1, 2, 4, 8], co: 2, k: [5, 5], padding: [2, 2] },
  { x: [2, 2, 4, 40], co: 3, k: [7, 7], padding: [3, 3] },
  // Weight gradients from vec4 blocks (XV). "Same" rows take the mirrored columns from the
  // carried blocks (XMIRROR; here also a row of one quad, both ends in one block); others, and
  // on the 'subgroup packed' path all, load them one by one (from rows of 32 columns; on that
  // path every width).
  { x: [1, 2, 3, 32], co: 3, k: [3, 3], padding: [1, 1] },
  { x: [1, 2, 3, 4], co: 2, k: [3, 3], padding: [1, 1] },
  { x: [1, 2, 6, 12], co: 3, k: [2, 4], padding: [1, 2] },
];

const PATHS = ['subgroup', 'subgroup packed', 'tiled'] as const;
const DIRECT_MAX = convTuning.directMaxFlops;
t.teardown(() => {
  E.engine().convKernels = 'auto';
  convTuning.directMaxFlops = DIRECT_MAX;
  convTuning.xvReflectMinWidth = null;
  convTuning.xvMirror = true;
});

for (const path of PATHS) for (const [ci, c] of cases.entries()) {
  t.test(`[${path}] reflect conv2d: x ${JSON.stringify(c.x)} co ${c.co} k ${c.k} p ${c.padding} s ${c.stride ?? 1} d ${c.dilation ?? 1}`, async (t) => {
    E.engine().convKernels = path === 'tiled' ? 'tiled' : 'subgroup';
    convTuning.directMaxFlops = path === 'subgroup packed' ? -1 : DIRECT_MAX;
    convTuning.xvReflectMinWidth = path === 'subgroup packed' ? 0 : null;
    convTuning.xvMirror = path !== 'subgroup packed';
    const wshape = [c.co, c.x[1], c.k[0], c.k[1]];
    const opts = { padding: c.padding, stride: c.stride, dilation: c.dilation, padMode: 'reflect' as const };
    const g = conv2dGeometry('test', c.x, wshape, opts);
    t.ok(g.reflect, 'geometry records the reflection');
    const xd = randomArray(c.x.reduce((a, b) => a * b, 1), 50 + ci);
    const wd = randomArray(wshape.reduce((a, b) => a * b, 1), 60 + ci);
    const bd = c.bias ? randomArray(c.co, 70 + ci) : null;
    const gyd = randomArray(g.nb * g.co * g.oh * g.ow, 80 + ci);
    const y = new Float64Array(gyd.length);
    const gx = new Float64Array(xd.length);
    const gw = new Float64Array(wd.length);
    eachProduct(g, (xi, yi, wi) => {
      y[yi]! += xd[xi]! * wd[wi]!;
      gx[xi]! += gyd[yi]! * wd[wi]!;
      gw[wi]! += gyd[yi]! * xd[xi]!;
    });
    if (bd) for (let i = 0; i < y.length; i++) y[i]! += bd[Math.floor(i / (g.oh * g.ow)) % c.co]!;
    await E.tidy(async () => {
      const x = E.parameter(E.tensor(xd, c.x));
      const w = E.parameter(E.tensor(wd, wshape));
      const b = bd ? E.parameter(E.tensor(bd, [c.co])) : null;
      const out = conv2d(x, w, b, opts);
      t.same(out.shape, [g.nb, g.co, g.oh, g.ow], 'output shape');
      const fy = closeness(await out.read(), y, 2e-4, 2e-5);
      t.ok(fy.ok, `forward: ${fy.msg}`);
      E.backward(out, E.tensor(gyd, out.shape));
      const fx = closeness(await x.grad!.read(), gx, 2e-4, 2e-5);
      t.ok(fx.ok, `d/dx (every padded position's gradient summed onto its source): ${fx.msg}`);
      const fw = closeness(await w.grad!.read(), gw, 2e-4, 2e-5);
      t.ok(fw.ok, `d/dw: ${fw.msg}`);
      if (b) {
        const gb = new Float64Array(c.co);
        gyd.forEach((v, i) => (gb[Math.floor(i / (g.oh * g.ow)) % c.co]! += v));
        t.ok(closeness(await b.grad!.read(), gb, 2e-4, 2e-5).ok, 'd/dbias');
      }
    });
  });
}

t.test('reflect conv2d: one launch forward, where pad2d then conv2d take two; equal values', async (t) => {
  E.engine().convKernels = 'auto';
  convTuning.directMaxFlops = DIRECT_MAX;
  const eng = E.engine();
  await E.tidy(async () => {
    const x = E.randn([1, 2, 5, 7], 1);
    const w = E.randn([3, 2, 3, 3], 2);
    const d0 = eng.recorder.dispatches;
    const fused = conv2d(x, w, null, { padding: 1, padMode: 'reflect' });
    t.equal(eng.recorder.dispatches - d0, 1, 'one launch');
    const composed = conv2d(E.pad2d(x, 1, 'reflect'), w, null);
    const c = closeness(await fused.read(), await composed.read(), 1e-5, 1e-6);
    t.ok(c.ok, `same as pad2d + conv2d: ${c.msg}`);
  });
});

t.test('a residual x + conv(reflect-pad(x)): the data gradient adds the residual gradient (no accumulation launch), same values', async (t) => {
  E.engine().convKernels = 'auto';
  convTuning.directMaxFlops = DIRECT_MAX;
  const eng = E.engine();
  const xd = randomArray(2 * 5 * 7, 91);
  const wd = randomArray(2 * 2 * 9, 92);
  const gyd = randomArray(2 * 5 * 7, 93);
  // Reference: d/dx of sum(gy * (x + conv(pad(x)))) = gy + the reflect conv's data gradient.
  const g = conv2dGeometry('test', [1, 2, 5, 7], [2, 2, 3, 3], { padding: 1, padMode: 'reflect' });
  const want = Float64Array.from(gyd);
  eachProduct(g, (xi, yi, wi) => (want[xi]! += gyd[yi]! * wd[wi]!));
  // [name, op, backward launches]: the reflect convolution's data gradient takes the mirrored
  // positions and the residual in its one kernel; pad2d then conv2d takes the padded geometry's
  // data gradient and the fold (which adds the residual). The add's backward launches nothing.
  const variants: [string, (x: E.Tensor, w: E.Tensor) => E.Tensor, number][] = [
    ['conv2d padMode reflect', (x, w) => conv2d(x, w, null, { padding: 1, padMode: 'reflect' }), 1],
    ['pad2d reflect then conv2d', (x, w) => conv2d(E.pad2d(x, 1, 'reflect'), w, null), 2],
  ];
  for (const [name, f, expected] of variants) {
    await E.tidy(async () => {
      const x = E.parameter(E.tensor(xd, [1, 2, 5, 7]));
      const w = E.tensor(wd, [2, 2, 3, 3]);
      const out = E.add(x, f(x, w));
      const gy = E.tensor(gyd, out.shape);
      const axpby0 = eng.recorder.dispatches;
      E.backward(out, gy);
      const launches = eng.recorder.dispatches - axpby0;
      const c = closeness(await x.grad!.read(), want, 2e-4, 2e-5);
      t.ok(c.ok, `${name}: d/dx = residual + convolution gradient: ${c.msg}`);
      t.equal(launches, expected, `${name}: ${expected} backward launch(es) (no separate accumulation)`);
    });
  }
});

t.test('reflect conv2d: a pad not smaller than the image is refused in one line', async (t) => {
  const x = E.zeros([1, 1, 3, 6]);
  const w = E.zeros([1, 1, 3, 3]);
  t.throws(() => conv2d(x, w, null, { padding: 3, padMode: 'reflect' }), /reflect padding 3x3 must be smaller than the padded dimensions of input \[1, 1, 3, 6\]/);
  t.throws(() => conv2d(x, w, null, { padding: 1, padMode: 'mirror' as 'reflect' }), /unknown padMode 'mirror'/);
  x.dispose();
  w.dispose();
});
