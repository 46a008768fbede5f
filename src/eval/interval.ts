/**
 * Confidence intervals for a mean over a few runs (Student's t), and the comparison rule the
 * experiment uses: one setting beats another only when their 95% intervals do not overlap;
 * otherwise the two are a tie at that precision.
 */
import { stat } from './metrics.js';

/** Mean and two-sided confidence interval of a small sample. */
export interface Interval {
  mean: number;
  /** Sample standard deviation (ddof 1); 0 for one value. */
  sd: number;
  n: number;
  lo: number;
  hi: number;
  /** Confidence level (e.g. 0.95). */
  level: number;
}

/** ln Gamma(x), x > 0 (Lanczos, g = 7, 9 terms: ~15 digits). */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularized incomplete beta (modified Lentz). */
function betaCf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaCf(a, b, x)) / a : 1 - (front * betaCf(b, a, 1 - x)) / b;
}

/** CDF of Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t with `df` degrees of freedom (bisection on the CDF). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new RangeError(`studentTQuantile: df must be positive, got ${df}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Mean and t-interval: mean ± t_{(1+level)/2, n-1} * sd / sqrt(n). NaN values are left out; with
 * one value the interval is that value's point (no spread can be estimated: n says so).
 */
export function tInterval(values: readonly number[], level = 0.95): Interval {
  const { mean, std, n } = stat(values);
  if (n === 0) return { mean: NaN, sd: NaN, n: 0, lo: NaN, hi: NaN, level };
  if (n === 1) return { mean, sd: 0, n, lo: mean, hi: mean, level };
  const sd = std * Math.sqrt(n / (n - 1)); // stat's population std -> sample sd (ddof 1)
  const half = (studentTQuantile((1 + level) / 2, n - 1) * sd) / Math.sqrt(n);
  return { mean, sd, n, lo: mean - half, hi: mean + half, level };
}

/** 'better' when a's interval lies wholly above b's, 'worse' when wholly below, else 'tie'. */
export type Comparison = 'better' | 'worse' | 'tie';

export function compareIntervals(a: Interval, b: Interval): Comparison {
  if (a.n === 0 || b.n === 0) return 'tie';
  if (a.lo > b.hi) return 'better';
  if (a.hi < b.lo) return 'worse';
  return 'tie';
}
