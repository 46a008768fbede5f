import t from 'tap';
import * as E from '../src/engine/index.js';
import { maxPool2d } from '../src/engine/ops/pool.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { adjointTaps, applyTaps, expectNoLeak, gpuGrads, mismatchesF32, nchw, prod, type Taps } from './helpers/nn.js';

await gpu();

/** Reference 2x2/2 max pooling as taps: each output reads its window's first maximum. */
function poolTaps(x: ArrayLike<number>, shape: number[]): { taps: Taps; outShape: number[] } {
  const [N, C, H, W] = shape as [number, number, number, number];
  const OH = Math.floor(H / 2);
  const OW = Math.floor(W / 2);
  const outShape = [N, C, OH, OW];
  const taps: Taps = [];
  for (let o = 0; o < prod(outShape); o++) {
    const [n, c, oy, ox] = nchw(o, outShape);
    let best = -1;
    for (let dy = 0; dy < 2; dy++) {
      for (let dx = 0; dx < 2; dx++) {
        const i = ((n * C + c) * H + 2 * oy + dy) * W + 2 * ox + dx;
        if (best < 0 || x[i]! > x[best]!) best = i;
      }
    }
    taps.push([[best, 1]]);
  }
  return { taps, outShape };
}

const shapes = [
  [1, 1, 2, 2],
  [1, 3, 5, 7],
  [3, 7, 6, 4],
  [3, 1, 7, 5],
  [2, 3, 33, 18],
  [1, 2, 6, 601], // rows wider than one workgroup
  [1, 1, 1048600, 3], // more than 65535 * 8 rows: the grid continues in z
];

for (const shape of shapes) {
  t.test(`maxPool2d ${JSON.stringify(shape)} forward and backward`, async (t) => {
    const n = prod(shape);
    const x = randomArray(n, 3);
    const { taps, outShape } = poolTaps(x, shape);
    const r = randomArray(prod(outShape), 4);
    const { y, shape: got, g } = await gpuGrads((a) => maxPool2d(a), [x], [shape], r);
    t.same(got, outShape);
    t.equal(mismatchesF32(y, applyTaps(taps, x)), 'identical', 'forward picks the window maxima');
    const c = closeness(g[0]!, adjointTaps(taps, r, n), 1e-6, 1e-7);
    t.ok(c.ok, `backward: ${c.msg}`);
  });
}

t.test('maxPool2d ties: the gradient goes to the first maximum only', async (t) => {
  // Every window holds equal values (plus windows with a repeated max in later positions).
  const shape = [1, 2, 4, 5];
  const x = new Float32Array(prod(shape));
  x.fill(0.5);
  x[(0 * 4 + 2) * 5 + 3] = 2; // plane 0, window (1, 1): max at (1, 0) and (1, 1) of the window
  x[(0 * 4 + 3) * 5 + 2] = 2;
  x[(0 * 4 + 3) * 5 + 3] = 2;
  const { taps, outShape } = poolTaps(x, shape);
  const r = Float32Array.from({ length: prod(outShape) }, (_, i) => i + 1);
  const { g } = await gpuGrads((a) => maxPool2d(a), [x], [shape], r);
  t.same(Array.from(g[0]!), Array.from(adjointTaps(taps, r, x.length)));
  const nonzero = Array.from(g[0]!).filter((v) => v !== 0).length;
  t.equal(nonzero, prod(outShape), 'one input per window receives gradient');
  t.equal(g[0]![(0 * 4 + 2) * 5 + 3], 4, 'first of the tied maxima (row-major) wins');
});

t.test('maxPool2d rejects inputs smaller than the window', async (t) => {
  t.throws(() => maxPool2d(E.zeros([1, 1, 1, 5])), /maxPool2d: input \[1, 1, 1, 5\] is smaller/);
  t.throws(() => maxPool2d(E.zeros([4, 5])), /maxPool2d.*4 dimensions/);
});

t.test('maxPool2d releases its intermediates', async (t) => {
  const run = () =>
    E.tidy(() => {
      const x = E.randn([3, 3, 9, 7], 1);
      x.requiresGrad = true;
      E.backward(E.sum(maxPool2d(x)));
      x.dispose();
    });
  await expectNoLeak(t, run);
});
