import t from 'tap';
import * as E from '../src/engine/index.js';
import { dropout, dropoutMask } from '../src/engine/ops/dropout.js';
import { gpu, randomArray } from './helpers/engine.js';
import { expectNoLeak, gpuGrads } from './helpers/nn.js';

await gpu();

const N = 1 << 20;

/** Keep mask read back from a dropout of ones. */
async function gpuMask(n: number, p: number, seed: number, shape: number[] = [n]): Promise<Uint8Array> {
  const y = await E.tidy(() => dropout(E.ones(shape), p, seed)).read();
  return Uint8Array.from(y, (v) => (v !== 0 ? 1 : 0));
}

const fraction = (m: Uint8Array) => m.reduce((a, b) => a + b, 0) / m.length;

/** Number of positions where two masks differ (t.same is far too slow on 1M elements). */
function mismatches(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
  return d;
}

for (const p of [0.1, 0.5, 0.8]) {
  t.test(`dropout p=${p}: kept fraction, scaling, CPU mirror of the mask`, async (t) => {
    const x = randomArray(N, 60, 0.5, 1.5);
    const y = await E.tidy(() => dropout(E.tensor(x, [4, 4, 256, 256]), p, 1234)).read();
    const mask = Uint8Array.from(y, (v) => (v !== 0 ? 1 : 0));
    // Binomial std of the kept fraction is sqrt(p(1-p)/N) < 5e-4; allow 6 sigma.
    const kept = fraction(mask);
    t.ok(Math.abs(kept - (1 - p)) < 3e-3, `kept ${kept.toFixed(5)} vs ${1 - p} (tolerance 3e-3)`);
    let bad = 0;
    for (let i = 0; i < N; i++) if (mask[i] && Math.abs(y[i]! - x[i]! / (1 - p)) > 1e-6 * y[i]!) bad++;
    t.equal(bad, 0, 'kept values are x / (1 - p)');
    t.equal(mismatches(mask, dropoutMask(N, p, 1234)), 0, 'the GPU mask equals the CPU mirror of the hash');
  });
}

t.test('dropout masks: same seed same mask, different seeds independent', async (t) => {
  const p = 0.5;
  const a = await gpuMask(N, p, 7);
  const a2 = await gpuMask(N, p, 7, [16, 1, 256, 256]);
  t.equal(mismatches(a, a2), 0, 'same seed (and any shape of the same size) -> same mask');
  for (const other of [8, 7 + 2 ** 32, 1_000_003]) {
    const b = await gpuMask(N, p, other);
    let both = 0;
    for (let i = 0; i < N; i++) both += a[i]! & b[i]!;
    // Independent masks keep a position in both with probability (1 - p)^2 = 0.25.
    t.ok(Math.abs(both / N - 0.25) < 3e-3, `seed 7 vs ${other}: kept by both ${(both / N).toFixed(5)} (expected 0.25)`);
  }
  // Neighbouring elements are independent too.
  let pairs = 0;
  for (let i = 0; i + 1 < N; i++) pairs += a[i]! & a[i + 1]!;
  t.ok(Math.abs(pairs / (N - 1) - 0.25) < 3e-3, `adjacent pairs kept together ${(pairs / (N - 1)).toFixed(5)}`);
});

t.test('dropout backward applies the forward mask', async (t) => {
  const shape = [3, 7, 5, 9];
  const n = 3 * 7 * 5 * 9;
  const x = randomArray(n, 61);
  const r = randomArray(n, 62);
  const p = 0.3;
  const { y, g } = await gpuGrads((v) => dropout(v, p, 99), [x], [shape], r);
  const mask = dropoutMask(n, p, 99);
  const scale = 1 / (1 - p);
  const expY = Array.from(x, (v, i) => Math.fround(mask[i] ? Math.fround(v * Math.fround(scale)) : 0));
  const expG = Array.from(r, (v, i) => Math.fround(mask[i] ? Math.fround(v * Math.fround(scale)) : 0));
  t.same(Array.from(y), expY, 'forward');
  t.same(Array.from(g[0]!), expG, 'backward');
});

t.test('dropout is the identity when not training or p = 0, zero when p = 1', async (t) => {
  const x = randomArray(105, 63);
  const r = randomArray(105, 64);
  for (const [p, training] of [
    [0.5, false],
    [0, true],
  ] as const) {
    const { y, g } = await gpuGrads((v) => dropout(v, p, 5, training), [x], [[3, 5, 7]], r);
    t.same(Array.from(y), Array.from(x), `forward p=${p} training=${training}`);
    t.same(Array.from(g[0]!), Array.from(r), `backward p=${p} training=${training}`);
  }
  const { y, g } = await gpuGrads((v) => dropout(v, 1, 5), [x], [[3, 5, 7]], r);
  t.ok(y.every((v) => v === 0) && g[0]!.every((v) => v === 0), 'p = 1 drops everything');
});

t.test('dropout argument errors and memory', async (t) => {
  t.throws(() => dropout(E.ones([3]), 1.5, 1), /dropout: p must be in \[0, 1\]/);
  t.throws(() => dropout(E.ones([3]), 0.5, -1), /dropout: seed/);
  t.throws(() => dropout(E.ones([3]), 0.5, 0.5), /dropout: seed/);
  const run = () =>
    E.tidy(() => {
      const x = E.randn([3, 3, 9, 7], 1);
      x.requiresGrad = true;
      E.backward(E.sum(dropout(dropout(x, 0.5, 1), 0.2, 2, false)));
      x.dispose();
    });
  await expectNoLeak(t, run);
});
