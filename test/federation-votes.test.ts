/**
 * EngineGenerator's per-node segments and votes (the server's vote modes of aggregation):
 *  - with instance norm (no coupling between rows), a batch generated per segment gives the same
 *    fakes as one pass, and a vote step with trim 0 (the plain mean of the votes' parameter
 *    gradients) combines the same parameter gradients as applyGradients with the mean gradient;
 *  - with batch norm, votes through the kept segments equal votes through recomputed passes of the
 *    same rows (the path of a late reply);
 *  - the median of three votes stays between the two honest ones, whatever the third sends.
 */
import t from 'tap';
import { Adam, init } from '../src/engine/index.js';
import { EngineGenerator } from '../src/federation/generator-backend.js';
import type { GeneratorBatch, GeneratorStep } from '../src/net/backend.js';
import { DEFAULT_GAN_CONFIG, makeGenerator, type GanConfig } from '../src/train/pix2pix.js';
import { closeness, randomArray } from './helpers/engine.js';

await init();
const S = 8;
const C = 3;
const M = 2;
const SEGMENTS = [2, 1, 3];
const ROWS = 6;

function backend(norm: 'batch' | 'instance'): EngineGenerator {
  const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ngf: 4, blocks: 1, norm, dropout: false, iters: 100, decayIters: 0, seed: 3 };
  const g = makeGenerator(cfg, C, M);
  return new EngineGenerator(g, new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: 1e-2 }), cfg);
}
/** Every parameter's gradient after the step (compared instead of weights: Adam turns noise-level gradients into full-size steps). */
const gradients = (b: EngineGenerator) => Promise.all(b.generator.namedParameters().map(([, p]) => p.grad!.read())).then((ws) => Float32Array.from(ws.flatMap((w) => [...w])));
const masks = randomArray(ROWS * C * S * S, 1, 0, 1);
const img = M * S * S;
/** Per-node gradients: node k's rows only. */
const grads = SEGMENTS.map((n, k) => randomArray(n * img, 10 + k));
const offsets = SEGMENTS.map((_, k) => SEGMENTS.slice(0, k).reduce((a, b) => a + b, 0));
const votes = (batch: GeneratorBatch): GeneratorStep[] => grads.map((g, k) => ({ batch, gradFakes: g, rows: { offset: offsets[k]!, count: SEGMENTS[k]! } }));

t.test('instance norm: segments change nothing; trim-0 votes = the mean gradient', async (t) => {
  const a = backend('instance');
  const b = backend('instance');
  const whole: GeneratorBatch = { round: 1, masks, shape: [ROWS, C, S, S] };
  const split: GeneratorBatch = { round: 1, masks, shape: [ROWS, C, S, S], segments: SEGMENTS };
  const fa = await a.generate(whole);
  const fb = await b.generate(split);
  let c = closeness(fb, fa, 1e-5, 1e-6);
  t.ok(c.ok, `fakes per segment = one pass: ${c.msg}`);
  const mean = new Float32Array(ROWS * img);
  grads.forEach((g, k) => g.forEach((v, j) => (mean[offsets[k]! * img + j] = v / SEGMENTS.length)));
  await a.applyGradients([{ batch: whole, gradFakes: mean }]);
  await b.applyVotes(votes(split), { kind: 'trimmed-mean', trim: 0 });
  const ga = await gradients(a);
  // Biases ahead of an instance norm have a gradient of 0 up to rounding (1e-5 here): the
  // absolute tolerance is relative to the largest gradient.
  const scale = ga.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  c = closeness(await gradients(b), ga, 1e-3, 1e-4 * scale);
  t.ok(c.ok, `the step's parameter gradients (largest ${scale.toExponential(2)}): ${c.msg}`);
  t.ok(a.steps === 1 && b.steps === 1, 'both stepped');
});

t.test('batch norm: kept segments and recomputed rows give the same step', async (t) => {
  const a = backend('batch');
  const b = backend('batch');
  const split = (): GeneratorBatch => ({ round: 1, masks, shape: [ROWS, C, S, S], segments: SEGMENTS });
  const kept = split();
  await a.generate(kept);
  // b generated a different batch object: its votes find no kept graph and recompute their rows.
  await b.generate(split());
  await a.applyVotes(votes(kept), { kind: 'trimmed-mean', trim: 1 });
  await b.applyVotes(votes(split()), { kind: 'trimmed-mean', trim: 1 });
  const c = closeness(await gradients(b), await gradients(a), 1e-3, 1e-6);
  t.ok(c.ok, `the step's parameter gradients: ${c.msg}`);
});

t.test('the median of three votes stays between the two honest votes however large the third is', async (t) => {
  const batch = (): GeneratorBatch => ({ round: 1, masks, shape: [ROWS, C, S, S], segments: SEGMENTS });
  /** The parameter gradient a step on `vs` combines, from a fresh generator with the same weights. */
  const combined = async (pick: (v: GeneratorStep[]) => GeneratorStep[], trim: number) => {
    const b = backend('instance');
    const bb = batch();
    await b.generate(bb);
    await b.applyVotes(pick(votes(bb)), { kind: 'trimmed-mean', trim });
    return gradients(b);
  };
  const huge = (v: GeneratorStep[]) => v.map((x, k) => (k === 2 ? { ...x, gradFakes: x.gradFakes.map((y) => y * 1e4) } : x));
  const g0 = await combined((v) => [v[0]!], 0);
  const g1 = await combined((v) => [v[1]!], 0);
  const outside = (g: Float32Array) => g.filter((x, i) => x < Math.min(g0[i]!, g1[i]!) - 1e-4 || x > Math.max(g0[i]!, g1[i]!) + 1e-4).length;
  t.equal(outside(await combined(huge, 1)), 0, 'every coordinate of the median lies between the honest votes\' values');
  const mean = outside(await combined(huge, 0));
  t.ok(mean > g0.length / 2, `the control: the mean (trim 0) leaves that range in ${mean} of ${g0.length} coordinates`);
});
