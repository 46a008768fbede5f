/**
 * The RDP accountant against known values: the Gaussian mechanism's alpha / (2 z^2), the sampled
 * Gaussian against a direct numerical integration of its Rényi divergence, and TensorFlow
 * Privacy's published DP-SGD MNIST figure (q = 256/60000, sigma 1.1, 60 epochs, delta 1e-5:
 * epsilon 3.01 with the standard conversion).
 */
import t from 'tap';
import { DEFAULT_ORDERS, NodePrivacy, RdpAccountant, epsilonFromRdp, gaussianRdp, replyNoiseMultiplier, subsampledGaussianRdp } from '../src/privacy/index.js';

/**
 * RDP of order alpha of the sampled Gaussian, by integration: log E_{x~N(0,z^2)}[(mu(x)/mu0(x))^alpha] / (alpha-1)
 * with mu = (1-q) N(0, z^2) + q N(1, z^2) (Mironov, Talwar, Zhang 2019, eq. for A_alpha).
 */
function numericSampledRdp(q: number, z: number, alpha: number): number {
  const lo = -30 * z;
  const hi = 30 * z + alpha;
  const steps = 400_000;
  const h = (hi - lo) / steps;
  // In log space: the integrand spans hundreds of orders of magnitude at large alpha.
  const logs: number[] = [];
  for (let i = 0; i <= steps; i++) {
    const x = lo + i * h;
    const logMu0 = -(x * x) / (2 * z * z) - Math.log(z * Math.sqrt(2 * Math.PI));
    const e = (2 * x - 1) / (2 * z * z);
    // log(1 - q + q e^e), stable for large e
    const logRatio = e > 0 ? e + Math.log(q + (1 - q) * Math.exp(-e)) : Math.log(1 - q + q * Math.exp(e));
    logs.push(logMu0 + alpha * logRatio + (i === 0 || i === steps ? Math.log(0.5) : 0));
  }
  const m = logs.reduce((a, b) => Math.max(a, b), -Infinity);
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - m);
  return (m + Math.log(sum * h)) / (alpha - 1);
}

t.test('Gaussian mechanism: RDP alpha / (2 z^2), composed linearly', async (t) => {
  t.equal(gaussianRdp(1, 2), 1);
  t.equal(gaussianRdp(2, 8), 1);
  t.ok(Math.abs(gaussianRdp(0.5, 3) - 6) < 1e-12);
  const acc = new RdpAccountant([2, 4, 8]);
  acc.addGaussian(2, 10);
  t.same(acc.rdp().rdp, [2.5, 5, 10], 'ten releases at z = 2');
  // One release at z: epsilon = min_a a/(2z^2) + log(1/delta)/(a-1); check against a brute-force minimum.
  const z = 3;
  const delta = 1e-5;
  let best = Infinity;
  for (const a of DEFAULT_ORDERS) best = Math.min(best, a / (2 * z * z) + Math.log(1 / delta) / (a - 1));
  const one = new RdpAccountant();
  one.addGaussian(z);
  t.ok(Math.abs(one.epsilon(delta) - best) < 1e-12, `one release at z = 3: epsilon ${best.toFixed(4)}`);
  t.equal(new RdpAccountant().epsilon(delta), 0, 'nothing released: epsilon 0');
});

t.test('sampled Gaussian: closed form matches direct numerical integration', async (t) => {
  for (const [q, z, alpha] of [[0.01, 1.1, 2], [0.01, 1.1, 8], [0.1, 2, 4], [0.5, 1.5, 3], [0.05, 0.8, 16], [0.2, 4, 32]] as const) {
    const closed = subsampledGaussianRdp(q, z, alpha);
    const numeric = numericSampledRdp(q, z, alpha);
    t.ok(Math.abs(closed - numeric) <= 1e-6 * Math.max(1, Math.abs(numeric)), `q ${q}, z ${z}, alpha ${alpha}: ${closed.toExponential(6)} vs ${numeric.toExponential(6)}`);
  }
  t.ok(Math.abs(subsampledGaussianRdp(1, 1.3, 5) - gaussianRdp(1.3, 5)) < 1e-12, 'q = 1 is the plain Gaussian');
  t.equal(subsampledGaussianRdp(0, 1.3, 5), 0, 'q = 0 releases nothing');
  t.ok(subsampledGaussianRdp(0.01, 1.1, 8) < gaussianRdp(1.1, 8) / 100, 'amplification: far below the unsampled RDP');
  t.throws(() => subsampledGaussianRdp(0.1, 1, 2.5), /integer order/);
});

t.test('DP-SGD MNIST (TF Privacy tutorial): q = 256/60000, sigma 1.1, 60 epochs, delta 1e-5 -> epsilon ~3.01', async (t) => {
  const q = 256 / 60000;
  const steps = Math.ceil((60 * 60000) / 256); // 14063
  const acc = new RdpAccountant();
  acc.addSubsampledGaussian(q, 1.1, steps);
  const eps = acc.epsilon(1e-5);
  // TF Privacy reports 3.01 on a grid with fractional orders; integer orders can only be >= the fine-grid minimum.
  t.ok(eps >= 2.95 && eps <= 3.15, `epsilon ${eps.toFixed(3)} (published 3.01)`);
  const { orders, rdp } = acc.rdp();
  t.ok(orders.every(Number.isInteger), 'subsampled accounting uses integer orders only');
  t.ok(Math.abs(epsilonFromRdp(orders, rdp, 1e-5).epsilon - eps) < 1e-12);
});

t.test('reply accounting: z = sigma / (2 sqrt(B)); state round trip; budget refusal', async (t) => {
  t.equal(replyNoiseMultiplier(30, 4), 7.5);
  t.equal(replyNoiseMultiplier(2, 1), 1);
  const p = new NodePrivacy('dp', { epsilonBudget: 4, maxQueries: undefined });
  const fakes = new Float32Array(8);
  let answered = 0;
  while (!p.admit(['a', 'b', 'c', 'd'], fakes)) {
    p.recordRelease(['a', 'b', 'c', 'd']);
    answered++;
    if (answered > 1000) break;
  }
  const direct = new RdpAccountant();
  direct.addGaussian(7.5, answered);
  t.ok(Math.abs(p.epsilon - direct.epsilon(1e-5)) < 1e-12, `epsilon after ${answered} replies matches the accountant`);
  t.ok(p.epsilon <= 4, 'never above the budget');
  const next = new RdpAccountant();
  next.addGaussian(7.5, answered + 1);
  t.ok(next.epsilon(1e-5) > 4, 'one more reply would exceed it');
  t.match(p.admit(['a', 'b', 'c', 'd'], fakes), { code: 'privacy_budget_spent', fatal: true, message: /above the budget 4/ });
  const copy = new NodePrivacy('dp', { epsilonBudget: 4, maxQueries: undefined });
  copy.restore(p.toState());
  t.equal(copy.epsilon, p.epsilon, 'restored ledger has the same epsilon');
  t.equal(copy.repliesReleased, answered);
  t.ok(copy.admit(['a', 'b', 'c', 'd'], fakes), 'and refuses as well: a restart does not reset the budget');
  const stale = new NodePrivacy('dp').toState();
  copy.restore(stale);
  t.equal(copy.repliesReleased, answered, 'an older state (fewer releases) never replaces a newer one');
  t.throws(() => RdpAccountant.fromState({ format: 'x' }), /not an asyndgan RDP accountant state/);
});

t.test('a node that ever sent exact replies has no finite epsilon', async (t) => {
  const off = new NodePrivacy('off');
  off.recordRelease(['a']);
  t.equal(off.epsilon, Infinity);
  t.equal(off.statusMetrics().epsilon, -1, 'status carries -1 for unbounded');
  const dp = new NodePrivacy('dp');
  dp.restore(off.toState());
  t.match(dp.admit(['a'], new Float32Array(1)), { code: 'privacy_budget_spent', message: /without noise/ });
});
