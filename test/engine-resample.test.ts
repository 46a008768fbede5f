import t from 'tap';
import * as E from '../src/engine/index.js';
import { upsampleBilinear2x, upsampleNearest2x } from '../src/engine/ops/resample.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { adjointTaps, applyTaps, expectNoLeak, gpuGrads, nchw, prod, type Taps } from './helpers/nn.js';

await gpu();

/**
 * Per-dimension taps of PyTorch's bilinear source index (upsample_bilinear2d, scale 2). Like
 * PyTorch for float tensors, the scale and the source coordinate are rounded to float32.
 */
function axisTaps(o: number, size: number, align: boolean): [number, number][] {
  const out = 2 * size;
  const f = Math.fround;
  let s: number;
  if (align) s = out > 1 ? f(f((size - 1) / (out - 1)) * o) : 0;
  else s = Math.max((o + 0.5) / 2 - 0.5, 0);
  const i0 = Math.floor(s);
  const i1 = Math.min(i0 + 1, size - 1);
  const l = s - i0;
  return [
    [i0, 1 - l],
    [i1, l],
  ];
}

function upsampleTaps(shape: number[], kind: 'nearest' | 'bilinear', align = false): { taps: Taps; outShape: number[] } {
  const [N, C, H, W] = shape as [number, number, number, number];
  const outShape = [N, C, 2 * H, 2 * W];
  const taps: Taps = [];
  for (let o = 0; o < prod(outShape); o++) {
    const [n, c, oy, ox] = nchw(o, outShape);
    const at = (y: number, x: number) => ((n * C + c) * H + y) * W + x;
    if (kind === 'nearest') {
      taps.push([[at(Math.floor(oy / 2), Math.floor(ox / 2)), 1]]);
      continue;
    }
    const list: [number, number][] = [];
    for (const [y, wy] of axisTaps(oy, H, align)) for (const [x, wx] of axisTaps(ox, W, align)) list.push([at(y, x), wy * wx]);
    taps.push(list);
  }
  return { taps, outShape };
}

const shapes = [
  [1, 1, 1, 1],
  [1, 1, 2, 3],
  [1, 3, 5, 7],
  [3, 7, 4, 3],
  [3, 1, 7, 5],
  [2, 3, 17, 30],
  [1, 1, 150, 257], // rows wider than one workgroup
  [1, 1, 262200, 1], // more than 65535 * 8 output rows: the grid continues in z
];

const variants: [string, (x: E.Tensor) => E.Tensor, 'nearest' | 'bilinear', boolean][] = [
  ['upsampleNearest2x', upsampleNearest2x, 'nearest', false],
  ['upsampleBilinear2x', (x) => upsampleBilinear2x(x), 'bilinear', false],
  ['upsampleBilinear2x alignCorners', (x) => upsampleBilinear2x(x, { alignCorners: true }), 'bilinear', true],
];

for (const [name, fn, kind, align] of variants) {
  // The tall shape only tests the grid (shared by all entries); one bilinear mode is enough.
  for (const shape of shapes.filter((s) => !(align && s[2]! > 65535))) {
    t.test(`${name} ${JSON.stringify(shape)} forward and backward`, async (t) => {
      const n = prod(shape);
      const x = randomArray(n, 5);
      const { taps, outShape } = upsampleTaps(shape, kind, align);
      const r = randomArray(prod(outShape), 6);
      const { y, shape: got, g } = await gpuGrads(fn, [x], [shape], r);
      t.same(got, outShape);
      const c = closeness(y, applyTaps(taps, x), 1e-5, 1e-6);
      t.ok(c.ok, `forward: ${c.msg}`);
      const cg = closeness(g[0]!, adjointTaps(taps, r, n), 1e-5, 1e-5);
      t.ok(cg.ok, `backward: ${cg.msg}`);
    });
  }
}

t.test('bilinear known values (PyTorch)', async (t) => {
  // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), scale_factor=2, mode='bilinear')
  const x = E.tensor([1, 2, 3, 4], [1, 1, 2, 2]);
  const expected = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4];
  t.ok(closeness(await upsampleBilinear2x(x).read(), expected, 1e-6, 1e-6).ok, 'align_corners=False');
  // ... align_corners=True
  const third = 1 / 3;
  const row = (a: number, b: number) => [a, a + (b - a) * third, a + (b - a) * 2 * third, b];
  const r0 = row(1, 2);
  const r3 = row(3, 4);
  const expectedAc = [0, 1, 2, 3].flatMap((i) => r0.map((v, k) => v + (r3[k]! - v) * i * third));
  t.ok(closeness(await upsampleBilinear2x(x, { alignCorners: true }).read(), expectedAc, 1e-6, 1e-6).ok, 'align_corners=True');
});

t.test('upsampling rejects non-4-D input and releases intermediates', async (t) => {
  t.throws(() => upsampleNearest2x(E.zeros([3, 4, 5])), /upsampleNearest2x.*\[3, 4, 5\]/);
  t.throws(() => upsampleBilinear2x(E.zeros([3, 4, 5])), /upsampleBilinear2x.*\[3, 4, 5\]/);
  const run = () =>
    E.tidy(() => {
      const x = E.randn([3, 3, 9, 7], 1);
      x.requiresGrad = true;
      E.backward(E.sum(upsampleBilinear2x(upsampleNearest2x(x))));
      x.dispose();
    });
  await expectNoLeak(t, run);
});
