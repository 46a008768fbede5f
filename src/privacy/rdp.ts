/**
 * Rényi differential privacy (Mironov 2017) of the Gaussian mechanism, and of the Poisson-
 * subsampled Gaussian mechanism at integer orders (Mironov, Talwar, Zhang 2019), with the
 * conversion to (epsilon, delta). Pure functions; the accountant composes them.
 *
 * Noise multiplier z = noise standard deviation / L2 sensitivity.
 */

/** Orders alpha at which RDP is tracked (the usual grid: fine near 1, coarse far out). */
export const DEFAULT_ORDERS: readonly number[] = [
  1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.5, 4, 4.5,
  ...Array.from({ length: 59 }, (_, i) => i + 5), // 5..63
  64, 80, 96, 128, 192, 256, 512, 1024,
];

/** RDP of order `alpha` of the Gaussian mechanism with noise multiplier `z`: alpha / (2 z^2). */
export function gaussianRdp(z: number, alpha: number): number {
  checkZ(z);
  if (!(alpha > 1)) throw new RangeError(`RDP order must be > 1, got ${alpha}`);
  return alpha / (2 * z * z);
}

/**
 * RDP of integer order `alpha` >= 2 of the sampled Gaussian mechanism: each record is included
 * independently with probability `q` (Poisson sampling), sum sensitivity 1, noise multiplier z;
 * add/remove-one adjacency. Mironov, Talwar, Zhang (2019), section 3.3:
 *   A = sum_{k=0..alpha} C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 z^2)),
 *   RDP = log(A) / (alpha - 1),
 * computed in log space. q = 1 gives gaussianRdp exactly; q = 0 gives 0.
 */
export function subsampledGaussianRdp(q: number, z: number, alpha: number): number {
  checkZ(z);
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sampling rate must be in [0, 1], got ${q}`);
  if (!Number.isInteger(alpha) || alpha < 2) throw new RangeError(`the subsampled Gaussian RDP here needs an integer order >= 2, got ${alpha}`);
  if (q === 0) return 0;
  if (q === 1) return gaussianRdp(z, alpha);
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const terms: number[] = [];
  let logBinom = 0; // log C(alpha, 0)
  for (let k = 0; k <= alpha; k++) {
    if (k > 0) logBinom += Math.log(alpha - k + 1) - Math.log(k);
    terms.push(logBinom + k * logQ + (alpha - k) * log1mQ + (k * k - k) / (2 * z * z));
  }
  return logSumExp(terms) / (alpha - 1);
}

/**
 * The smallest epsilon that RDP values `rdp` (one per order in `orders`) certify at `delta`,
 * by the standard conversion (Mironov 2017, Proposition 3): epsilon = RDP(alpha) + log(1/delta) / (alpha - 1).
 * (Tighter conversions exist, e.g. Canonne, Kamath, Steinke 2020; this one is the conservative classic.)
 */
export function epsilonFromRdp(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  if (orders.length !== rdp.length || orders.length === 0) throw new RangeError(`${orders.length} orders but ${rdp.length} RDP values`);
  let best = { epsilon: Infinity, order: orders[0]! };
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i]!;
    const eps = rdp[i]! + Math.log(1 / delta) / (a - 1);
    if (eps < best.epsilon) best = { epsilon: eps, order: a };
  }
  return best;
}

function checkZ(z: number): void {
  if (!(z > 0) || !Number.isFinite(z)) throw new RangeError(`noise multiplier must be finite and > 0, got ${z}`);
}

function logSumExp(xs: readonly number[]): number {
  const m = Math.max(...xs);
  if (m === Infinity) return Infinity;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}
