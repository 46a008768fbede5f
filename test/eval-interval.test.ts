import t from 'tap';
import { compareIntervals, incompleteBeta, studentTCdf, studentTQuantile, tInterval } from '../src/eval/interval.js';

t.test('Student t quantiles match the tables', async (t) => {
  // Published two-sided 95% critical values t_{0.975, df}.
  const table: [number, number][] = [[1, 12.7062047], [2, 4.3026527], [4, 2.7764451], [9, 2.2621572], [19, 2.0930241], [100, 1.9839715]];
  for (const [df, want] of table) t.ok(Math.abs(studentTQuantile(0.975, df) - want) < 1e-6, `df ${df}: ${studentTQuantile(0.975, df)} vs ${want}`);
  t.ok(Math.abs(studentTCdf(0, 5) - 0.5) < 1e-12, 'CDF(0) = 0.5');
  t.ok(Math.abs(studentTQuantile(0.025, 4) + 2.7764451) < 1e-6, 'lower quantile is the negative');
  t.ok(Math.abs(incompleteBeta(0.3, 2, 3) - 0.3483) < 1e-4, 'I_0.3(2,3) = 0.3483');
});

t.test('t-interval against a hand-computed value', async (t) => {
  // 0.80, 0.82, 0.84, 0.86, 0.88: mean 0.84, squared deviations sum 0.004, sd sqrt(0.004/4) =
  // 0.0316228, n 5, half width 2.7764451 * 0.0316228 / sqrt(5) = 0.0392649.
  const iv = tInterval([0.8, 0.82, 0.84, 0.86, 0.88]);
  t.ok(Math.abs(iv.mean - 0.84) < 1e-12);
  t.ok(Math.abs(iv.sd - 0.0316228) < 1e-6, `sd ${iv.sd}`);
  t.ok(Math.abs(iv.hi - iv.mean - 0.0392649) < 1e-6, `half width ${iv.hi - iv.mean}`);
  t.ok(Math.abs(iv.mean - iv.lo - 0.0392649) < 1e-6);
  t.equal(iv.n, 5);
  t.equal(tInterval([0.5, NaN]).n, 1, 'NaN left out');
  t.equal(tInterval([]).n, 0);
});

t.test('comparison: only separated intervals decide', async (t) => {
  const a = tInterval([0.8, 0.82, 0.84, 0.86, 0.88]);
  const far = tInterval([0.6, 0.61, 0.62, 0.63, 0.64]);
  const near = tInterval([0.83, 0.85, 0.87, 0.84, 0.86]);
  t.equal(compareIntervals(a, far), 'better');
  t.equal(compareIntervals(far, a), 'worse');
  t.equal(compareIntervals(a, near), 'tie');
});
