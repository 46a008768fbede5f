import t from 'tap';
import * as E from '../src/engine/index.js';
import {
  calculateGain, fans, kaimingNormal_, normal_, ones_, uniform_, xavierUniform_, zeros_,
} from '../src/engine/init.js';
import { mseLoss } from '../src/engine/ops/loss.js';
import { Adam, AdamW, type AdamOptions } from '../src/engine/optim.js';
import { Rng } from '../src/engine/random.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { DEFAULT_FLUSH_EVERY } from '../src/engine/recorder.js';

const eng = await gpu();

const shapes = [[3, 7], [5], [2, 3, 5, 3], [1], [17, 13]];
const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Deterministic gradient of parameter i at step k (null where `nullAt` says so). */
type GradSource = (k: number, i: number) => Float32Array | null;
const gradSource =
  (nullAt: (k: number, i: number) => boolean = () => false): GradSource =>
  (k, i) =>
    nullAt(k, i) ? null : randomArray(numelOf(shapes[i]!), 1000 + 31 * k + i, -2, 2);

interface RefOpts {
  lr: number | ((k: number) => number);
  betas: [number, number];
  eps: number;
  weightDecay: number;
  decoupled: boolean;
}

/**
 * PyTorch's torch.optim.Adam / AdamW (single-tensor path, amsgrad off, maximize off) in float64:
 *   Adam:  g += wd * p                       AdamW: p *= 1 - lr * wd
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   step_size = lr / (1 - b1^t);  denom = sqrt(v) / sqrt(1 - b2^t) + eps;  p -= step_size * m / denom
 * with a per-parameter step count t; parameters whose grad is None are skipped.
 */
function refAdam(init: Float32Array[], grads: GradSource, steps: number, o: RefOpts) {
  const p = init.map((a) => Float64Array.from(a));
  const m = init.map((a) => new Float64Array(a.length));
  const v = init.map((a) => new Float64Array(a.length));
  const count = init.map(() => 0);
  for (let k = 0; k < steps; k++) {
    const lr = typeof o.lr === 'number' ? o.lr : o.lr(k);
    for (let i = 0; i < p.length; i++) {
      const g32 = grads(k, i);
      if (!g32) continue;
      const t = ++count[i]!;
      const [b1, b2] = o.betas;
      const stepSize = lr / (1 - b1 ** t);
      const bc2Sqrt = Math.sqrt(1 - b2 ** t);
      const pi = p[i]!;
      for (let j = 0; j < pi.length; j++) {
        let g = g32[j]!;
        if (o.decoupled) pi[j]! *= 1 - lr * o.weightDecay;
        else g += o.weightDecay * pi[j]!;
        m[i]![j] = o.betas[0] * m[i]![j]! + (1 - b1) * g;
        v[i]![j] = b2 * v[i]![j]! + (1 - b2) * g * g;
        pi[j]! -= (stepSize * m[i]![j]!) / (Math.sqrt(v[i]![j]!) / bc2Sqrt + o.eps);
      }
    }
  }
  return { p, m, v, count };
}

function makeParams(): E.Tensor[] {
  return shapes.map((s, i) => {
    const p = E.keep(E.tensor(randomArray(numelOf(s), 500 + i, -1, 1), s));
    p.requiresGrad = true;
    p.name = `w${i}`;
    return p;
  });
}

function setGrads(params: E.Tensor[], grads: GradSource, k: number): void {
  params.forEach((p, i) => {
    p.grad?.dispose();
    const g = grads(k, i);
    p.grad = g ? E.keep(E.tensor(g, p.shape)) : null;
  });
}

async function runSteps(opt: Adam, params: E.Tensor[], grads: GradSource, from: number, to: number, lr?: (k: number) => number) {
  for (let k = from; k < to; k++) {
    if (lr) opt.lr = lr(k);
    setGrads(params, grads, k);
    opt.step();
  }
  await eng.sync();
}

/** Parameters and moments (read through the public export) against the reference: [ok, message] list. */
async function compareToRef(opt: Adam, params: E.Tensor[], ref: ReturnType<typeof refAdam>, label: string) {
  const state = await opt.exportState();
  const checks: [boolean, string][] = [];
  for (let i = 0; i < params.length; i++) {
    const cp = closeness(await params[i]!.read(), ref.p[i]!, 1e-5, 1e-7);
    checks.push([cp.ok, `${label} param ${i}: ${cp.msg}`]);
    // m is a running mean of gradients of size ~1 and may cancel to near 0: its absolute f32
    // rounding (~1e-7 per step) needs an absolute tolerance.
    const cm = closeness(state.m[i]!, ref.m[i]!, 1e-5, 1e-6);
    checks.push([cm.ok, `${label} m ${i}: ${cm.msg}`]);
    const cv = closeness(state.v[i]!, ref.v[i]!, 1e-5, 1e-10);
    checks.push([cv.ok, `${label} v ${i}: ${cv.msg}`]);
  }
  const same = state.steps.length === ref.count.length && state.steps.every((s, i) => s === ref.count[i]);
  checks.push([same, `${label}: per-parameter step counts ${state.steps} vs ${ref.count}`]);
  return checks;
}

const configs: [string, new (p: E.Tensor[], o?: AdamOptions) => Adam, AdamOptions, RefOpts][] = [
  ['Adam defaults', Adam, {}, { lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0, decoupled: false }],
  [
    'Adam lr 1e-2 betas (0.9, 0.99) L2 0.1',
    Adam,
    { lr: 1e-2, betas: [0.9, 0.99], weightDecay: 0.1 },
    { lr: 1e-2, betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.1, decoupled: false },
  ],
  ['AdamW defaults', AdamW, {}, { lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0.01, decoupled: true }],
  [
    'AdamW lr 3e-2 wd 0.2 eps 1e-6',
    AdamW,
    { lr: 3e-2, weightDecay: 0.2, eps: 1e-6, betas: [0.8, 0.95] },
    { lr: 3e-2, betas: [0.8, 0.95], eps: 1e-6, weightDecay: 0.2, decoupled: true },
  ],
  [
    'Adam decoupled: true equals AdamW',
    Adam,
    { lr: 1e-2, weightDecay: 0.05, decoupled: true },
    { lr: 1e-2, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0.05, decoupled: true },
  ],
];

for (const [name, Ctor, opts, ref] of configs) {
  t.test(`${name}: 10 steps match PyTorch's algorithm`, async (t) => {
    const params = makeParams();
    const init = await Promise.all(params.map((p) => p.read()));
    const opt = new Ctor(params, opts);
    t.equal(opt.lr, ref.lr);
    t.equal(opt.weightDecay, ref.weightDecay);
    t.equal(opt.decoupled, ref.decoupled);
    const grads = gradSource();
    await runSteps(opt, params, grads, 0, 10);
    t.equal(opt.stepCount, 10);
    for (const [ok, msg] of await compareToRef(opt, params, refAdam(init, grads, 10, ref), name)) t.ok(ok, msg);
    opt.zeroGrad();
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
}

t.test('named parameters, per-parameter steps with null grads, lr schedule', async (t) => {
  const params = makeParams();
  const init = await Promise.all(params.map((p) => p.read()));
  const opt = new AdamW(params.map((tensor, i) => ({ name: `layer${i}.weight`, tensor })), { lr: 1e-2, weightDecay: 0.1 });
  t.same(opt.names, params.map((_, i) => `layer${i}.weight`));
  // Param 1 has no grad at steps 0..3, param 3 never, param 4 every other step.
  const grads = gradSource((k, i) => (i === 1 && k < 4) || i === 3 || (i === 4 && k % 2 === 1));
  const lr = (k: number) => 1e-2 * 0.8 ** k;
  await runSteps(opt, params, grads, 0, 10, lr);
  const ref = refAdam(init, grads, 10, { lr, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0.1, decoupled: true });
  for (const [ok, msg] of await compareToRef(opt, params, ref, 'schedule')) t.ok(ok, msg);
  t.same(await params[3]!.read(), init[3], 'a parameter that never had a grad is bit-identical');
  opt.dispose();
  params.forEach((p) => p.dispose());
});

t.test('a step with a null grad leaves the parameter and its moments unchanged', async (t) => {
  const params = makeParams();
  const opt = new Adam(params, { lr: 1e-2 });
  await runSteps(opt, params, gradSource(), 0, 3);
  const before = await opt.exportState();
  const values = await Promise.all(params.map((p) => p.read()));
  // Grad only on parameter 0.
  setGrads(params, gradSource((_, i) => i !== 0), 3);
  opt.step();
  const after = await opt.exportState();
  for (let i = 1; i < params.length; i++) {
    t.same(await params[i]!.read(), values[i], `param ${i} unchanged`);
    t.same(after.m[i], before.m[i], `m ${i} unchanged`);
    t.same(after.v[i], before.v[i], `v ${i} unchanged`);
  }
  t.notSame(await params[0]!.read(), values[0], 'param 0 updated');
  t.same(after.steps, [4, 3, 3, 3, 3]);
  opt.dispose();
  params.forEach((p) => p.dispose());
});

t.test('exportState / importState: a resumed run continues identically', async (t) => {
  const grads = gradSource((k, i) => i === 2 && k === 1);
  const opts = { lr: 5e-3, betas: [0.7, 0.99] as [number, number], weightDecay: 0.05 };
  const lr = (k: number) => 5e-3 / (1 + k);
  // Uninterrupted: 10 steps.
  const a = makeParams();
  const optA = new Adam(a, opts);
  await runSteps(optA, a, grads, 0, 10, lr);
  const finalA = await Promise.all(a.map((p) => p.read()));
  const stateA = await optA.exportState();

  // Interrupted after 6 steps: save weights + state to the CPU, rebuild everything, resume.
  const b = makeParams();
  const optB = new Adam(b, opts);
  await runSteps(optB, b, grads, 0, 6, lr);
  const saved = await optB.exportState();
  const weights = await Promise.all(b.map((p) => p.read()));
  optB.dispose();
  b.forEach((p) => p.dispose());
  t.equal(saved.step, 6);
  t.same(saved.names, ['w0', 'w1', 'w2', 'w3', 'w4']);

  const c = shapes.map((s, i) => {
    const p = E.keep(E.tensor(weights[i]!, s));
    p.requiresGrad = true;
    p.name = `w${i}`;
    return p;
  });
  const optC = new Adam(c, { lr: 1 }); // hyperparameters come from the state
  // Through a structured clone, as a checkpoint would carry it.
  optC.importState(structuredClone(saved));
  t.equal(optC.stepCount, 6);
  t.same(optC.betas, [0.7, 0.99]);
  t.equal(optC.weightDecay, 0.05);
  await runSteps(optC, c, grads, 6, 10, lr);
  const finalC = await Promise.all(c.map((p) => p.read()));
  const stateC = await optC.exportState();
  for (let i = 0; i < shapes.length; i++) {
    t.same(finalC[i], finalA[i], `param ${i} bit-identical to the uninterrupted run`);
    t.same(stateC.m[i], stateA.m[i], `m ${i} identical`);
    t.same(stateC.v[i], stateA.v[i], `v ${i} identical`);
  }
  t.same(stateC.steps, stateA.steps);
  t.equal(stateC.step, 10);

  t.throws(() => optC.importState({ ...saved, names: saved.names.slice(1) }), /state holds 4 parameters, optimizer has 5/);
  t.throws(() => optC.importState({ ...saved, names: ['x', ...saved.names.slice(1)] }), /parameter 0 is w0, state has x/);
  t.throws(
    () => optC.importState({ ...saved, m: [new Float32Array(3), ...saved.m.slice(1)] }),
    /w0 has 21 elements, state has 3 \(m\)/,
  );
  optA.dispose();
  optC.dispose();
  a.forEach((p) => p.dispose());
  c.forEach((p) => p.dispose());
});

t.test('zeroGrad drops gradients; step records one kernel per run of parameters with grads, no readback, no allocation', async (t) => {
  const params = makeParams();
  const opt = new Adam(params, { lr: 1e-3 });
  setGrads(params, gradSource(), 0);
  opt.step(); // first step allocates the moments
  await eng.sync();
  const grads = params.map((p) => p.grad!);
  opt.zeroGrad();
  t.ok(params.every((p) => p.grad === null), 'grads are null');
  t.ok(grads.every((g) => g.disposed), 'old grads released');

  setGrads(params, gradSource((_, i) => i === 2), 1);
  await eng.sync();
  const created = eng.pool.stats.created;
  const pipelines = eng.kernels.pipelinesBuilt;
  const submits = eng.recorder.submits;
  const dispatches = eng.recorder.dispatches;
  eng.recorder.flushEvery = 0; // only submissions forced by the step itself (a readback) count here
  E.tidy(() => opt.step()); // moments survive scopes
  eng.recorder.flushEvery = DEFAULT_FLUSH_EVERY;
  t.equal(eng.recorder.submits, submits, 'step() submits nothing (no readback)');
  // Parameter 2 has no grad: parameters 0-1 and 3-4 are two runs of the multi-tensor kernel.
  t.equal(eng.recorder.dispatches - dispatches, 2, 'one dispatch per run of adjacent parameters with a grad');
  t.equal(eng.pool.stats.created, created, 'no new buffer');
  t.equal(eng.kernels.pipelinesBuilt, pipelines, 'no new pipeline');
  await eng.sync();
  const state = await opt.exportState();
  t.ok(state.m.every((m) => m.some((x) => x !== 0)), 'moments still alive after the tidy');
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());
});

t.test('multi-tensor step: one dispatch for every parameter, one copy (the gradient) per parameter', async (t) => {
  const params = makeParams();
  const opt = new Adam(params, { lr: 1e-3 });
  setGrads(params, gradSource(), 0);
  const c00 = eng.recorder.copies;
  opt.step(); // the first step also zero-fills the four arenas and moves the parameters in
  t.equal(eng.recorder.copies - c00, 2 * params.length, 'first step: gradient and parameter copied in');
  setGrads(params, gradSource(), 1);
  const [d0, c0] = [eng.recorder.dispatches, eng.recorder.copies];
  opt.step();
  t.equal(eng.recorder.dispatches - d0, 1, 'one Adam dispatch for all parameters');
  t.equal(eng.recorder.copies - c0, params.length, 'then only the gradients: the parameters live in the arena');
  // The second step of parameter 2 only: its step count now differs from its neighbours'.
  setGrads(params, gradSource((_, i) => i !== 2), 2);
  opt.step();
  setGrads(params, gradSource(), 3);
  const d1 = eng.recorder.dispatches;
  opt.step();
  t.equal(eng.recorder.dispatches - d1, 3, 'runs split where step counts differ: [0,1], [2], [3,4]');
  opt.zeroGrad();
  opt.dispose();
  params.forEach((p) => p.dispose());
});

t.test('parameters live in the arena: uploads, kernels, readbacks, a second optimizer and dispose all see one value', async (t) => {
  const params = makeParams();
  const opt = new Adam(params, { lr: 1e-3 });
  setGrads(params, gradSource(), 0);
  opt.step();
  opt.step();
  // An upload (normal_) and a kernel (ones_) into parameters the arena now holds. With lr 0 a
  // step rewrites every parameter from its slot: a write that missed the slot would be undone.
  const before = await Promise.all(params.map((p) => p.read()));
  normal_(params[1]!, 0, 1, 77);
  ones_(params[3]!);
  const want = await Promise.all(params.map((p) => p.read()));
  const drawn = await E.tidy(() => normal_(E.zeros(params[1]!.shape), 0, 1, 77).read());
  t.ok(closeness(want[1]!, drawn, 0, 0).ok, 'the upload landed in the parameter');
  t.same(Array.from(want[3]!), Array.from({ length: params[3]!.size }, () => 1), 'the kernel wrote the parameter');
  t.ok([0, 2, 4].every((i) => closeness(want[i]!, before[i]!, 0, 0).ok), 'and nothing else');
  opt.lr = 0;
  opt.step();
  const after = await Promise.all(params.map((p) => p.read()));
  t.ok(after.every((v, i) => closeness(v, want[i]!, 0, 0).ok), 'a step with lr 0 keeps what was written');
  // A second optimizer moves them into its own arena; disposing the first leaves them alone.
  const opt2 = new Adam(params, { lr: 0 });
  opt2.step();
  opt.dispose();
  const moved = await Promise.all(params.map((p) => p.read()));
  t.ok(moved.every((v, i) => closeness(v, want[i]!, 0, 0).ok), 'same values in the second arena, after the first is gone');
  // Disposing the holder moves them out; they stay usable.
  opt2.zeroGrad();
  opt2.dispose();
  const doubled = await E.tidy(() => E.add(params[1]!, params[1]!).read());
  t.ok(closeness(doubled, want[1]!.map((v) => 2 * v), 0, 0).ok, 'usable after the optimizer is disposed');
  params.forEach((p) => p.dispose());
});

t.test('Adam with autograd: minimizes an MSE', async (t) => {
  const target = E.keep(E.tensor(randomArray(60, 9, -1, 1), [3, 4, 5]));
  const w = E.keep(E.zeros([3, 4, 5]));
  w.requiresGrad = true;
  const opt = new Adam([w], { lr: 0.05, betas: [0.9, 0.999] });
  const losses: number[] = [];
  for (let k = 0; k < 60; k++) {
    opt.zeroGrad();
    const l = await E.tidy(async () => {
      const loss = mseLoss(w, target);
      E.backward(loss);
      opt.step();
      return loss.item();
    });
    losses.push(l);
  }
  t.ok(losses[59]! < 0.02 * losses[0]!, `loss ${losses[0]} -> ${losses[59]}`);
  opt.zeroGrad();
  opt.dispose();
  w.dispose();
  target.dispose();
});

t.test('Adam rejects duplicate parameters and mismatched gradients', async (t) => {
  const p = E.keep(E.zeros([4]));
  t.throws(() => new Adam([p, p]), /listed twice/);
  const opt = new Adam([{ name: 'bias', tensor: p }]);
  p.grad = E.keep(E.zeros([5]));
  t.throws(() => opt.step(), /gradient of bias has 5 elements, parameter \[4\] has 4/);
  opt.zeroGrad();
  p.dispose();
});

// ---------------------------------------------------------------------------------------------
// Initialization.

t.test('normal_ and uniform_ are the seeded CPU generator, deterministic', async (t) => {
  const x = E.keep(E.zeros([3, 5, 7]));
  normal_(x, 0.5, 0.02, 42);
  t.same(await x.read(), new Rng(42).normalArray(105, 0.5, 0.02));
  const first = await x.read();
  normal_(x, 0.5, 0.02, 42);
  t.same(await x.read(), first, 'same seed, same values');
  normal_(x, 0.5, 0.02, 43);
  t.notSame(await x.read(), first, 'another seed, other values');
  t.equal(uniform_(x, -2, 3, 7), x, 'returns its tensor');
  t.same(await x.read(), new Rng(7).uniformArray(105, -2, 3));
  zeros_(x);
  t.ok((await x.read()).every((v) => v === 0), 'zeros_');
  ones_(x);
  t.ok((await x.read()).every((v) => v === 1), 'ones_');
  x.dispose();
});

function stats(a: Float32Array) {
  let s = 0;
  let s2 = 0;
  let max = 0;
  for (const v of a) {
    s += v;
    s2 += v * v;
    max = Math.max(max, Math.abs(v));
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), max };
}

t.test('normal_ statistics', async (t) => {
  const x = E.keep(E.zeros([64, 3, 11, 11]));
  const s = stats(await normal_(x, 1, 0.02, 5).read());
  t.ok(Math.abs(s.mean - 1) < 0.001, `mean ${s.mean}`);
  t.ok(Math.abs(s.std / 0.02 - 1) < 0.03, `std ${s.std}`);
  x.dispose();
});

t.test('xavierUniform_ and kaimingNormal_ follow PyTorch', async (t) => {
  t.same(fans('f', [64, 3, 7, 5]), { fanIn: 105, fanOut: 64 * 35 });
  t.same(fans('f', [10, 20]), { fanIn: 20, fanOut: 10 });
  t.throws(() => fans('xavierUniform_', [7]), /xavierUniform_: .*at least 2 dimensions.*\[7\]/);
  t.equal(calculateGain('relu'), Math.SQRT2);
  t.equal(calculateGain('leaky_relu', 0.2), Math.sqrt(2 / 1.04));
  t.equal(calculateGain('tanh'), 5 / 3);

  const w = E.keep(E.zeros([48, 7, 5, 5]));
  const fanIn = 7 * 25;
  const fanOut = 48 * 25;
  const bound = 1.5 * Math.sqrt(6 / (fanIn + fanOut));
  xavierUniform_(w, 3, 1.5);
  const xs = await w.read();
  t.same(xs, new Rng(3).uniformArray(w.size, -bound, bound), 'U(-b, b), b = gain sqrt(6 / (fan_in + fan_out))');
  const sx = stats(xs);
  t.ok(sx.max <= bound && sx.max > 0.99 * bound, `max ${sx.max} vs bound ${bound}`);

  kaimingNormal_(w, 4);
  const kd = stats(await w.read());
  const std = Math.SQRT2 / Math.sqrt(fanIn);
  t.ok(Math.abs(kd.std / std - 1) < 0.03, `default (leaky_relu, a = 0, fan_in): std ${kd.std} vs ${std}`);
  t.same(await w.read(), new Rng(4).normalArray(w.size, 0, std));

  kaimingNormal_(w, 4, { nonlinearity: 'leaky_relu', a: 0.2, mode: 'fan_out' });
  t.same(await w.read(), new Rng(4).normalArray(w.size, 0, Math.sqrt(2 / 1.04) / Math.sqrt(fanOut)), 'leaky_relu 0.2, fan_out');
  kaimingNormal_(w, 4, { nonlinearity: 'relu' });
  t.same(await w.read(), new Rng(4).normalArray(w.size, 0, std), 'relu');
  w.dispose();
});
