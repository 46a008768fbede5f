/**
 * The node's release mechanism: per-sample clipping, Gaussian noise of the stated mean and
 * variance (from node:crypto by default), the range check and the query guard.
 */
import t from 'tap';
import {
  NodePrivacy, QueryGuard, addGaussianNoise, clipPerSample, cryptoNormalSource, firstOutOfRange, privacySettings, sampleNorms, seededNormalSource,
  type NormalSource,
} from '../src/privacy/index.js';

/** Mean and variance of `n` draws of `std * N(0,1)` added to zeros. */
function moments(source: NormalSource, std: number, n: number): { mean: number; variance: number; within1: number } {
  const x = new Float32Array(n);
  addGaussianNoise(x, std, source);
  let s = 0;
  for (const v of x) s += v;
  const mean = s / n;
  let q = 0;
  let w = 0;
  for (const v of x) {
    q += (v - mean) ** 2;
    if (Math.abs(v) <= std) w++;
  }
  return { mean, variance: q / (n - 1), within1: w / n };
}

t.test('clipping bounds each sample\'s L2 norm and leaves small samples exactly as they are', async (t) => {
  const per = 48;
  const g = new Float32Array(3 * per);
  for (let i = 0; i < per; i++) {
    g[i] = Math.sin(i) * 2; // norm ~ 9.8
    g[per + i] = 0.001 * Math.cos(i); // norm ~ 0.005
    g[2 * per + i] = i % 2 ? 0.5 : -0.5; // norm ~ 3.46
  }
  const before = Float32Array.from(g);
  const report = clipPerSample(g, per, 1);
  const norms = sampleNorms(g, per);
  t.ok(norms[0]! <= 1 && norms[0]! > 0.9999, `big block clipped to the bound (${norms[0]})`);
  t.ok(norms[2]! <= 1 && norms[2]! > 0.9999, `second big block too (${norms[2]})`);
  t.same([...g.subarray(per, 2 * per)], [...before.subarray(per, 2 * per)], 'small block bit-identical');
  t.equal(report.clipped, 2);
  t.ok(Math.abs(report.maxNorm - sampleNorms(before, per)[0]!) < 1e-9, 'reports the largest norm before clipping');
  // Direction kept: the clipped block is a positive multiple of the original.
  const ratio = g[5]! / before[5]!;
  t.ok([...g.subarray(0, per)].every((v, i) => Math.abs(v - ratio * before[i]!) < 1e-6), 'clipping only rescales');
  t.throws(() => clipPerSample(g, 7, 1), /not whole samples/);
  t.throws(() => clipPerSample(g, per, 0), /clip norm/);
});

t.test('noise has mean 0 and variance std^2 over many draws (a 2% wrong std would fail)', async (t) => {
  const n = 200_000;
  const std = 0.7;
  for (const [name, src] of [['crypto', cryptoNormalSource()], ['seeded', seededNormalSource(42)]] as const) {
    const m = moments(src, std, n);
    // 5 standard errors: mean's is std/sqrt(n); variance's is std^2 sqrt(2/n) (0.32% of std^2 here).
    t.ok(Math.abs(m.mean) < (5 * std) / Math.sqrt(n), `${name}: mean ${m.mean.toExponential(2)}`);
    t.ok(Math.abs(m.variance / (std * std) - 1) < 5 * Math.sqrt(2 / n), `${name}: variance ratio ${(m.variance / (std * std)).toFixed(4)}`);
    t.ok(Math.abs(m.within1 - 0.682689) < 0.005, `${name}: ${(100 * m.within1).toFixed(2)}% within one std (normal: 68.27%)`);
    // The same test with the wrong std catches it.
    t.ok(Math.abs(m.variance / (1.02 * std) ** 2 - 1) > 5 * Math.sqrt(2 / n), `${name}: a 2% larger std is rejected`);
  }
});

t.test('crypto noise is unpredictable: two sources never agree, the seeded one repeats', async (t) => {
  const a = cryptoNormalSource();
  const b = cryptoNormalSource();
  const da = Array.from({ length: 8 }, () => a.next());
  const db = Array.from({ length: 8 }, () => b.next());
  t.notSame(da, db);
  const s1 = seededNormalSource(7);
  const s2 = seededNormalSource(7);
  t.same(Array.from({ length: 8 }, () => s1.next()), Array.from({ length: 8 }, () => s2.next()), 'seeded: tests only');
});

t.test('NodePrivacy.sanitize: clip to C, then N(0, (sigma C)^2) per coordinate', async (t) => {
  const per = 1000;
  const p = new NodePrivacy(privacySettings('guarded', { clip: 0.5, noise: 2 }), {}, seededNormalSource(3));
  const g = new Float32Array(100 * per);
  for (let i = 0; i < g.length; i++) g[i] = 1; // every block's norm sqrt(1000) >> 0.5: clipped
  const clean = Float32Array.from(g);
  clipPerSample(clean, per, 0.5);
  p.sanitize(g, per);
  let s = 0;
  let q = 0;
  for (let i = 0; i < g.length; i++) {
    const d = g[i]! - clean[i]!;
    s += d;
    q += d * d;
  }
  const n = g.length;
  const sd = Math.sqrt(q / n - (s / n) ** 2);
  t.ok(Math.abs(sd / (2 * 0.5) - 1) < 0.01, `noise std ${sd.toFixed(4)} = sigma * C = 1`);
  t.ok(Math.abs(s / n) < 5 / Math.sqrt(n), 'noise mean 0 around the clipped gradient');
  const off = new NodePrivacy('off');
  const h = Float32Array.from(clean);
  off.sanitize(h, per);
  t.same([...h.subarray(0, 10)], [...clean.subarray(0, 10)], 'off: reply unchanged');
});

t.test('range check refuses fakes outside [-1, 1] (with f16 tolerance)', async (t) => {
  t.equal(firstOutOfRange(new Float32Array([-1, 0, 1, 1.0005, -1.0009])), undefined, 'inside, within tolerance');
  t.same(firstOutOfRange(new Float32Array([0, 1.5, 0])), { index: 1, value: 1.5 });
  t.same(firstOutOfRange(new Float32Array([0, -3])), { index: 1, value: -3 });
  const p = new NodePrivacy('guarded');
  t.match(p.admit(['k'], new Float32Array([0, 2])), { code: 'query_refused', fatal: false, message: /outside the generator's output range/ });
  t.equal(new NodePrivacy('off').admit(['k'], new Float32Array([0, 2])), undefined, 'off: no range check');
});

t.test('query guard: the K+1-th query of a key in a window is refused; it answers again once the window moves', async (t) => {
  const g = new QueryGuard(3, 10);
  for (let clock = 1; clock <= 3; clock++) {
    t.equal(g.check(['a', 'b'], clock), undefined, `query ${clock} of a`);
    g.record(['a', 'b'], clock);
  }
  t.match(g.check(['a'], 4), /key "a" was answered 3 time\(s\) in the last 10 replies/, '4th query of a refused');
  t.equal(g.check(['c'], 4), undefined, 'another key is fine');
  for (let clock = 4; clock <= 10; clock++) g.record(['c'], clock);
  t.match(g.check(['a'], 10), /answered 3/, 'still inside the window at reply 10');
  t.equal(g.check(['a'], 11), undefined, 'reply 11: the first query (reply 1) left the window');
  const restored = new QueryGuard(3, 10);
  restored.restore(g.toState(10));
  t.same(Object.keys(new QueryGuard(3, 2).toState(0).answered), [], 'empty guard, empty state');
  t.same(g.toState(20).answered, {}, 'answers older than the window are not saved');
  t.match(restored.check(['b'], 10), /answered 3/, 'state survives a restart');
  // The same through NodePrivacy: K answers, then refusal; with no guard, answered.
  const p = new NodePrivacy('guarded', { maxQueries: 2 });
  const fakes = new Float32Array(4);
  for (let i = 0; i < 2; i++) {
    t.equal(p.admit(['k'], fakes), undefined);
    p.recordRelease(['k']);
  }
  t.match(p.admit(['k'], fakes), { code: 'query_refused', message: /at most 2 time/ });
  const unguarded = new NodePrivacy('guarded', { maxQueries: undefined });
  for (let i = 0; i < 2; i++) unguarded.recordRelease(['k']);
  t.equal(unguarded.admit(['k'], fakes), undefined, 'without the guard the third query is answered');
});

t.test('presets: defaults, overrides and one-line errors', async (t) => {
  t.equal(new NodePrivacy().settings.preset, 'guarded', 'guarded is the default');
  t.same(privacySettings('dp', { noise: 50 }).noise, 50);
  t.throws(() => privacySettings('off', { noise: 1 }), /noise needs a clip norm/);
  t.throws(() => privacySettings('guarded', { delta: 2 }), /delta must be in \(0, 1\)/);
  t.throws(() => privacySettings('bogus' as never), /one of off, guarded, dp/);
  t.throws(() => privacySettings('off', { epsilonBudget: 5 }), /budget needs noise/);
});
