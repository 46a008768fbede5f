import t from 'tap';
import * as E from '../src/engine/index.js';
import { pad2d } from '../src/engine/ops/pad.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { adjointTaps, applyTaps, expectNoLeak, gpuGrads, mismatchesF32, nchw, prod, type Taps } from './helpers/nn.js';

await gpu();

type Pads = [number, number, number, number];

/** Reference padding as taps: reflection mirrors around the edge without repeating it. */
function padTaps(shape: number[], [l, r, tp, b]: Pads, mode: 'zero' | 'reflect'): { taps: Taps; outShape: number[] } {
  const [N, C, H, W] = shape as [number, number, number, number];
  const outShape = [N, C, H + tp + b, W + l + r];
  const src = (o: number, size: number): number => {
    if (mode === 'zero') return o >= 0 && o < size ? o : -1;
    if (o < 0) return -o;
    if (o >= size) return 2 * (size - 1) - o;
    return o;
  };
  const taps: Taps = [];
  for (let o = 0; o < prod(outShape); o++) {
    const [n, c, oy, ox] = nchw(o, outShape);
    const y = src(oy - tp, H);
    const x = src(ox - l, W);
    taps.push(y < 0 || x < 0 ? [] : [[((n * C + c) * H + y) * W + x, 1]]);
  }
  return { taps, outShape };
}

const cases: [number[], number | Pads][] = [
  [[1, 1, 2, 2], 1],
  [[1, 3, 5, 7], 2],
  [[3, 1, 4, 5], 3],
  [[3, 7, 4, 4], [1, 2, 3, 0]],
  [[1, 3, 6, 9], [3, 1, 0, 2]],
  [[2, 3, 5, 4], [0, 3, 2, 4]],
  [[1, 2, 17, 30], [3, 3, 3, 3]],
  [[1, 1, 3, 300], [3, 3, 1, 1]], // rows wider than one workgroup
  [[1, 1, 524300, 2], [1, 0, 1, 1]], // more than 65535 * 8 rows: the grid continues in z
];

for (const mode of ['zero', 'reflect'] as const) {
  for (const [shape, pad] of cases) {
    const pads: Pads = typeof pad === 'number' ? [pad, pad, pad, pad] : pad;
    const [, , H, W] = shape as [number, number, number, number];
    if (mode === 'reflect' && (pads[0] >= W || pads[1] >= W || pads[2] >= H || pads[3] >= H)) continue;
    t.test(`pad2d ${mode} ${JSON.stringify(shape)} pad ${JSON.stringify(pad)}`, async (t) => {
      const n = prod(shape);
      const x = randomArray(n, 8);
      const { taps, outShape } = padTaps(shape, pads, mode);
      const r = randomArray(prod(outShape), 9);
      const { y, shape: got, g } = await gpuGrads((a) => pad2d(a, pad, mode), [x], [shape], r);
      t.same(got, outShape);
      t.equal(mismatchesF32(y, applyTaps(taps, x)), 'identical', 'forward');
      const c = closeness(g[0]!, adjointTaps(taps, r, n), 1e-5, 1e-6);
      t.ok(c.ok, `backward: ${c.msg}`);
    });
  }
}

t.test('reflect pad known values (PyTorch ReflectionPad2d)', async (t) => {
  // nn.ReflectionPad2d((2, 1, 1, 0))(torch.arange(6.).reshape(1, 1, 2, 3))
  const y = await pad2d(E.tensor([0, 1, 2, 3, 4, 5], [1, 1, 2, 3]), [2, 1, 1, 0], 'reflect').read();
  t.same(Array.from(y), [5, 4, 3, 4, 5, 4, 2, 1, 0, 1, 2, 1, 5, 4, 3, 4, 5, 4]);
  t.same(Array.from(await pad2d(E.tensor([1, 2], [1, 1, 1, 2]), 1).read()), [0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0]);
});

t.test('pad2d argument errors', async (t) => {
  const x = E.zeros([1, 2, 3, 4]);
  t.throws(() => pad2d(x, 3, 'reflect'), /pad2d: reflect padding \[3, 3, 3, 3\] must be smaller.*\[1, 2, 3, 4\]/);
  t.throws(() => pad2d(x, [0, 4, 0, 0], 'reflect'), /must be smaller/);
  t.throws(() => pad2d(x, -1), /non-negative/);
  t.throws(() => pad2d(E.zeros([2, 3, 4]), 1), /pad2d.*4 dimensions/);
  t.same(pad2d(x, [0, 0, 0, 3], 'zero').shape, [1, 2, 6, 4]);
});

t.test('pad2d releases intermediates', async (t) => {
  const run = () =>
    E.tidy(() => {
      const x = E.randn([3, 3, 9, 7], 1);
      x.requiresGrad = true;
      E.backward(E.sum(pad2d(pad2d(x, 2, 'reflect'), 1)));
      x.dispose();
    });
  await expectNoLeak(t, run);
});
