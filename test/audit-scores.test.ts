/**
 * The audit's pure pieces: PSNR/SSIM at data range 2 against hand-computed values, ROC AUC
 * against brute-force pair counting, the gain over the best legitimate baseline, and the sign
 * estimators (bisection, min-violation with and without noise, shrinkage to the prior).
 */
import t from 'tap';
import { DATA_RANGE, meanImage, mse, psnr, rocAuc, scoreReconstruction, ssim } from '../src/audit/scores.js';
import { bisect, bracketMidpoints, estimateFromConstraints, fullBracket, minViolationEstimate } from '../src/audit/sign-estimators.js';
import { membershipAuc } from '../src/audit/membership.js';
import { Rng } from '../src/engine/index.js';

t.test('PSNR uses the [-1, 1] data range (2)', async (t) => {
  t.equal(DATA_RANGE, 2);
  // Every value off by 0.02: MSE 4e-4, PSNR = 10 log10(4 / 4e-4) = 40 dB.
  const real = new Float32Array(100).fill(0.3);
  const est = real.map((v) => v + 0.02);
  t.ok(Math.abs(mse(est, real) - 4e-4) < 1e-9);
  t.ok(Math.abs(psnr(est, real) - 40) < 1e-4, `psnr ${psnr(est, real)}`);
  t.equal(psnr(real, real), 200, 'an exact match is capped at 200 dB');
  t.throws(() => psnr(new Float32Array(3), new Float32Array(4)), /3 vs 4/);
});

t.test('SSIM is 1 for equal images, lower for noise, near 0 for unrelated ones', async (t) => {
  const rng = new Rng(1);
  const a = Float32Array.from({ length: 2 * 16 * 16 }, () => rng.next() * 2 - 1);
  t.ok(Math.abs(ssim(a, a, 2, 16, 16) - 1) < 1e-9);
  const noisy = a.map((v) => v + (rng.next() - 0.5) * 0.4);
  const s = ssim(noisy, a, 2, 16, 16);
  t.ok(s < 0.99 && s > 0.5, `noisy ${s}`);
  const other = Float32Array.from({ length: a.length }, () => rng.next() * 2 - 1);
  t.ok(Math.abs(ssim(other, a, 2, 16, 16)) < 0.15, `unrelated ${ssim(other, a, 2, 16, 16)}`);
});

t.test('ROC AUC equals the fraction of (positive, negative) pairs ranked right, ties 1/2', async (t) => {
  t.equal(rocAuc([3, 4], [1, 2]), 1);
  t.equal(rocAuc([1, 2], [3, 4]), 0);
  t.equal(rocAuc([1], [1]), 0.5);
  const rng = new Rng(7);
  const pos = Array.from({ length: 30 }, () => Math.round(rng.next() * 10));
  const neg = Array.from({ length: 20 }, () => Math.round(rng.next() * 8));
  let wins = 0;
  for (const p of pos) for (const n of neg) wins += p > n ? 1 : p === n ? 0.5 : 0;
  t.ok(Math.abs(rocAuc(pos, neg) - wins / 600) < 1e-12);
  // Membership: members rendered closer to their real images than non-members.
  const img = (v: number) => new Float32Array(8).fill(v);
  const r = membershipAuc([{ render: img(0.1), real: img(0) }, { render: img(0.2), real: img(0) }], [{ render: img(0.5), real: img(0) }]);
  t.equal(r.auc, 1);
  t.ok(Math.abs(r.nonMemberL1 - 0.5) < 1e-6);
});

t.test('gain = attack PSNR - the best baseline by mean PSNR', async (t) => {
  const real = [new Float32Array(64).fill(0.5), new Float32Array(64).fill(-0.5)];
  const est = real.map((r) => r.map((v) => v + 0.02)); // 40 dB
  const mean = meanImage(real); // all 0: off by 0.5, PSNR 10 log10(4 / 0.25) = 12.04 dB
  const close = real.map((r) => r.map((v) => v + 0.2)); // 10 log10(4 / 0.04) = 20 dB
  const s = scoreReconstruction(est, real, { mean, close }, { channels: 1, height: 8, width: 8 });
  t.equal(s.bestBaseline.name, 'close');
  t.ok(Math.abs(s.bestBaseline.psnr - 20) < 1e-3);
  t.ok(Math.abs(s.gain - 20) < 1e-3, `gain ${s.gain}`);
  t.ok(Math.abs(s.baselines.mean! - 12.0412) < 1e-3);
});

t.test('noise-free bisection recovers a value to 2 / 2^rounds', async (t) => {
  const real = Float32Array.from([-0.73, 0.1234, 0.999, -1]);
  const b = fullBracket(4);
  const queries: Float32Array[] = [];
  const grads: Float32Array[] = [];
  for (let r = 0; r < 12; r++) {
    const q = bracketMidpoints(b);
    const g = q.map((v, i) => Math.sign(v - real[i]!)); // what the L1 term returns
    queries.push(q);
    grads.push(g);
    bisect(b, q, g);
  }
  for (let i = 0; i < 4; i++) t.ok(real[i]! >= b.lo[i]! && real[i]! <= b.hi[i]! && b.hi[i]! - b.lo[i]! <= 2 / 2 ** 12 + 1e-7);
  // The min-violation estimate of the same constraints is the prior clamped into the bracket.
  const est = estimateFromConstraints(queries, grads, new Float32Array(4));
  for (let i = 0; i < 4; i++) t.ok(Math.abs(est[i]! - real[i]!) <= 2 / 2 ** 12 + 1e-6, `pixel ${i}: ${est[i]} vs ${real[i]}`);
});

t.test('min-violation: robust to a few wrong signs; no constraint or shrinkage keeps the prior', async (t) => {
  // real = 0.3: constraints from queries around it, two of them flipped.
  const q = [-0.9, -0.5, 0.1, 0.25, 0.28, 0.32, 0.35, 0.6, 0.9, 0.2, 0.5];
  const g = q.map((v) => Math.sign(v - 0.3));
  g[9] = 1; // wrong: says real < 0.2
  g[10] = -1; // wrong: says real > 0.5
  const e = minViolationEstimate(q, g, 0);
  t.ok(e >= 0.28 && e <= 0.32, `estimate ${e}`);
  t.equal(minViolationEstimate([0.1, 0.2], [0, 0], 0.42), 0.42, 'zero gradients say nothing');
  // One constraint against a prior weight of 2: not enough evidence to move.
  t.equal(minViolationEstimate([0.5], [-1], 0, 2), 0);
  t.equal(minViolationEstimate([0.5], [-1], 0, 0), 0.5, 'unshrunk: moves to the constraint boundary');
});
