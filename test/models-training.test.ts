/**
 * Behaviour of the networks over time: seeded determinism, dropout masks, train/eval switches,
 * checkpoint round trips of trained networks through safetensors, and a small training loop.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as E from '../src/engine/index.js';
import { concat } from '../src/engine/ops/concat.js';
import { l1Loss, bceWithLogits } from '../src/engine/ops/loss.js';
import { Adam } from '../src/engine/optim.js';
import { loadModule, type Module, PatchDiscriminator, ResnetGenerator, saveModule, StateDictError, UNet } from '../src/models/index.js';
import { gpu, randomArray } from './helpers/engine.js';

await gpu();

const img = (shape: number[], seed: number) => E.tensor(randomArray(shape.reduce((a, b) => a * b, 1), seed), shape);
const run = (f: () => E.Tensor) => E.tidy(f).read();

function equalArrays(a: ArrayLike<unknown>, b: ArrayLike<unknown>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

t.test('same seed, same network and outputs; another seed, another network', async (t) => {
  const x = img([2, 3, 16, 16], 1);
  const a = new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 10 });
  const b = new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 10 });
  const c = new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 11 });
  const [ya, yb, yc] = [await run(() => a.forward(x)), await run(() => b.forward(x)), await run(() => c.forward(x))];
  t.same(ya, yb);
  t.ok(maxDiff(ya, yc) > 1e-3, 'a different seed gives a different network');
  // Weights do not depend on the dropout flag (masks draw from their own stream).
  const d = new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 10, dropout: true });
  const sa = await a.stateDict();
  const sd = await d.stateDict();
  t.same(sd['model.10.conv_block.6.weight']!.data, sa['model.10.conv_block.5.weight']!.data);
  t.same(sd['model.19.weight']!.data, sa['model.19.weight']!.data, 'output conv (model.19 with 2 blocks)');
  [a, b, c, d].forEach((m) => m.dispose());
  x.dispose();
});

t.test('batch norm: batch statistics in training, running statistics in evaluation', async (t) => {
  const g = new ResnetGenerator(3, 3, { ngf: 4, blocks: 1, seed: 3 });
  const data = randomArray(3 * 3 * 16 * 16, 2);
  const x = E.tensor(data, [3, 3, 16, 16]);
  const x0 = E.tensor(data.subarray(0, 3 * 16 * 16), [1, 3, 16, 16]);
  // Training: sample 0's output depends on the other samples of the batch.
  const trainBatch = (await run(() => g.forward(x))).subarray(0, 3 * 16 * 16);
  const trainAlone = await run(() => g.forward(x0));
  t.ok(maxDiff(trainBatch, trainAlone) > 1e-3, 'batch composition matters in training');
  const tracked = (await g.stateDict())['model.2.num_batches_tracked']!.data[0];
  t.equal(tracked, 2n);
  // Evaluation: it does not, and running statistics stay fixed.
  g.eval();
  const evalBatch = (await run(() => g.forward(x))).subarray(0, 3 * 16 * 16);
  const evalAlone = await run(() => g.forward(x0));
  t.ok(maxDiff(evalBatch, evalAlone) < 1e-5, `batch composition does not matter in eval (${maxDiff(evalBatch, evalAlone)})`);
  t.ok(maxDiff(evalBatch, trainBatch) > 1e-3, 'eval differs from train');
  t.equal((await g.stateDict())['model.2.num_batches_tracked']!.data[0], 2n);
  [x, x0].forEach((v) => v.dispose());
  g.dispose();
});

t.test('dropout: fresh masks every step, reproducible from the seed, off in evaluation', async (t) => {
  const x = img([1, 3, 16, 16], 4);
  const make = () => new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 20, dropout: true, norm: 'instance' });
  const a = make();
  const b = make();
  const a1 = await run(() => a.forward(x));
  const a2 = await run(() => a.forward(x));
  t.ok(maxDiff(a1, a2) > 1e-4, 'two training steps use different masks');
  t.same(await run(() => b.forward(x)), a1, 'same seed: same first mask');
  t.same(await run(() => b.forward(x)), a2, 'same seed: same second mask');
  a.eval();
  const e1 = await run(() => a.forward(x));
  const e2 = await run(() => a.forward(x));
  t.same(e1, e2, 'evaluation is deterministic');
  // Without dropout layers (same weights) evaluation gives the same function.
  const plain = new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 20, norm: 'instance' }).eval();
  t.ok(maxDiff(e1, await run(() => plain.forward(x))) < 1e-6);
  t.ok(maxDiff(e1, a1) > 1e-4);
  [a, b, plain].forEach((m) => m.dispose());
  x.dispose();
});

t.test('trained networks round-trip through safetensors with identical outputs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'models-training-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const x = img([2, 3, 16, 16], 5);
  const g = new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 1 });
  const d = new PatchDiscriminator(6, { ndf: 4, seed: 2 });
  const u = new UNet(3, 2, { depth: 2, width: 4, seed: 3 });
  // A few training-mode passes so running statistics and counters are not at their initial values.
  for (let i = 0; i < 3; i++) {
    E.tidy(() => g.forward(x));
    E.tidy(() => d.forward(img([2, 6, 32, 32], 10 + i)));
    E.tidy(() => u.forward(x));
  }
  const xd = img([2, 6, 32, 32], 30);
  for (const [name, net, fresh, inp] of [
    ['G', g, new ResnetGenerator(3, 3, { ngf: 4, blocks: 2, seed: 100 }), x],
    ['D', d, new PatchDiscriminator(6, { ndf: 4, seed: 200 }), xd],
    ['UNet', u, new UNet(3, 2, { depth: 2, width: 4, seed: 300 }), x],
  ] as const) {
    const path = join(dir, `${name}.safetensors`);
    await saveModule(path, net, { net: name });
    const before = await run(() => fresh.eval().forward(inp));
    const want = await run(() => net.eval().forward(inp));
    t.ok(maxDiff(before, want) > 1e-4, `${name}: the fresh network differs before loading`);
    const res = await loadModule(path, fresh);
    t.equal(res.metadata.net, name);
    t.same(await run(() => fresh.forward(inp)), want, `${name}: identical outputs after loading`);
    const s1 = await net.stateDict();
    const s2 = await fresh.stateDict();
    t.ok(Object.keys(s1).every((k) => equalArrays(s1[k]!.data, s2[k]!.data)), `${name}: state dicts equal after loading`);
    const counter = Object.keys(s1).find((k) => k.endsWith('num_batches_tracked'))!;
    t.same(s2[counter]!.data, BigInt64Array.of(3n), `${name}: ${counter} restored`);
    fresh.dispose();
  }
  // A generator of another width does not load, and says why.
  const wider = new ResnetGenerator(3, 3, { ngf: 8, blocks: 2, seed: 1 });
  await t.rejects(loadModule(join(dir, 'G.safetensors'), wider), StateDictError);
  await t.rejects(loadModule(join(dir, 'G.safetensors'), wider), /'model\.1\.weight': shape \[4, 3, 7, 7\] in the state dict, \[8, 3, 7, 7\] in the module/);
  // Nor one with other blocks.
  const deeper = new ResnetGenerator(3, 3, { ngf: 4, blocks: 3, seed: 1 });
  await t.rejects(loadModule(join(dir, 'G.safetensors'), deeper), /missing keys: 'model\.12\.conv_block\.1\.weight'/);
  [g, d, u, wider, deeper, x, xd].forEach((m) => m.dispose());
});

t.test('a small pix2pix loop (GAN + 100 L1, Adam): gradients reach every parameter, the L1 loss falls', async (t) => {
  const mask = img([2, 1, 32, 32], 6);
  const target = E.tidy(() => E.tanh(E.scale(img([2, 3, 32, 32], 7), 2)));
  const g = new ResnetGenerator(1, 3, { ngf: 8, blocks: 2, seed: 1 });
  const d = new PatchDiscriminator(4, { ndf: 8, seed: 2 });
  const optG = new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: 2e-3 });
  const optD = new Adam(d.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: 2e-4 });
  const l1: number[] = [];
  const started = Date.now();
  const eng = E.engine();
  let createdAtStep5 = 0;
  let groupsAtStep5 = 0;
  for (let step = 0; step < 25; step++) {
    if (step === 5) [createdAtStep5, groupsAtStep5] = [eng.pool.stats.created, eng.recorder.bindGroupStats.created];
    const loss = await E.tidy(async () => {
      // D step on real (mask, target) vs fake (mask, G(mask).detach()).
      const fake = g.forward(mask);
      const fakeD = E.detach(fake);
      const dReal = d.forward(catC(mask, target));
      const dFake = d.forward(catC(mask, fakeD));
      const lossD = E.scale(E.add(bceWithLogits(dReal, 1), bceWithLogits(dFake, 0)), 0.5);
      optD.zeroGrad();
      E.backward(lossD);
      if (step === 0) await checkGrads(t, d, 'D');
      optD.step();
      // G step: GAN + 100 L1 (the AsynDGAN objective).
      const dOut = d.forward(catC(mask, fake));
      const lossL1 = l1Loss(fake, target);
      const lossG = E.add(bceWithLogits(dOut, 1), E.scale(lossL1, 100));
      optG.zeroGrad();
      E.backward(lossG);
      if (step === 0) await checkGrads(t, g, 'G');
      optG.step();
      d.zeroGrad(); // the G step also deposited gradients on D
      return lossL1.item();
    });
    l1.push(loss);
  }
  // Steady state: the first steps fill the pool and settle which buffer each op gets (measured:
  // buffers stop at step 2, bind groups at step 4).
  t.equal(eng.pool.stats.created, createdAtStep5, 'steps 5-24 create no GPU buffer');
  t.equal(eng.recorder.bindGroupStats.created, groupsAtStep5, 'steps 5-24 create no bind group');
  const ms = (Date.now() - started) / 25;
  t.comment(`L1 ${l1.slice(0, 3).map((v) => v.toFixed(3)).join(' ')} ... ${l1.slice(-3).map((v) => v.toFixed(3)).join(' ')}; ${ms.toFixed(0)} ms/step`);
  t.ok(l1.every(Number.isFinite), 'finite losses');
  const avg = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  t.ok(avg(l1.slice(-5)) < 0.8 * avg(l1.slice(0, 5)), `L1 falls: first 5 steps ${avg(l1.slice(0, 5)).toFixed(3)}, last 5 ${avg(l1.slice(-5)).toFixed(3)}`);
  // Stated threshold (measured here: about 0.68 at the start, 0.38 after 25 steps).
  t.ok(avg(l1.slice(-5)) < 0.5, `L1 after 25 steps below 0.5 (last 5 steps ${avg(l1.slice(-5)).toFixed(3)})`);
  [mask, target].forEach((v) => v.dispose());
  g.dispose();
  d.dispose();
});

/** Every parameter has a gradient of its shape, finite and not all zero. */
async function checkGrads(t: { ok(v: boolean, msg: string): unknown }, m: Module, what: string) {
  const bad: string[] = [];
  for (const [name, p] of m.namedParameters()) {
    const g = p.grad ? await p.grad.read() : null;
    if (!g || g.length !== p.size || !g.every(Number.isFinite) || g.every((v) => v === 0)) bad.push(name);
  }
  t.ok(bad.length === 0, `${what}: every parameter has a non-zero finite gradient${bad.length ? ` (not: ${bad.join(', ')})` : ''}`);
}

/** Channel concatenation of two NCHW tensors (through the concat op). */
function catC(a: E.Tensor, b: E.Tensor): E.Tensor {
  return concat([a, b], 1);
}
