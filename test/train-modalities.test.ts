/**
 * Nodes holding a subset of the generator's modalities: their discriminators see only their
 * channels (one joint D, or one D per modality), L1 runs on their channels only, and the gradient
 * they return is exactly zero on every channel they do not hold. Also: the one-discriminator,
 * all-channels case still computes exactly what the original gan.ts computed.
 */
import t from 'tap';
import {
  add, backward, bceWithLogits, concat, detach, init, l1Loss, scale, tensor, tidy, type Tensor,
} from '../src/engine/index.js';
import { Adam } from '../src/engine/optim.js';
import { conditionTensor, imageTensor, makePhantom, selectModalities, type Dataset } from '../src/data/index.js';
import { EngineDiscriminator } from '../src/federation/discriminator-backend.js';
import type { Module } from '../src/models/module.js';
import type { SessionConfig } from '../src/net/protocol.js';
import {
  discriminatorStep, discriminatorsStep, generatorGradient, generatorGradients, selectChannels, type DiscriminatorUnit,
} from '../src/train/gan.js';
import { makeDiscriminatorUnits, modalityChannels, modalityNames } from '../src/train/modalities.js';
import { DEFAULT_GAN_CONFIG, makeDiscriminator, type GanConfig } from '../src/train/pix2pix.js';
import { randomArray } from './helpers/engine.js';

await init();
const SIZE = 16;
const HW = SIZE * SIZE;
const N = 3;
const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ngf: 4, blocks: 1, ndf: 4, dLayers: 2, dropout: false, iters: 100, decayIters: 0, seed: 5 };
const data = makePhantom({ size: SIZE, numNodes: 1, slicesPerNode: 6, testSlices: 1, seed: 4 });
const ds = data.nodes[0]!;
const C = ds.numClasses;
const M = ds.modalities.length; // t1, t1c, t2, flair
const batch = ds.slices.slice(0, N);
const maskData = conditionTensor(batch, C);
const realData = imageTensor(batch);
const fakeData = randomArray(N * M * HW, 77, -0.9, 0.9);
const session = (imageChannels = M): SessionConfig => ({
  maskChannels: C, imageChannels, height: SIZE, width: SIZE, lambdaL1: 100, batchSize: N,
  wireDtype: 'f32', maxFrameBytes: 1 << 26, roundTimeoutMs: 1000, maxStaleness: 2, sampling: 'balance', weighting: 'samples',
});
const input = (round: number) => ({
  round, keys: batch.map((s) => s.key), masks: maskData, fakes: fakeData, fakeShape: [N, M, SIZE, SIZE] as const, aug: undefined,
});

/** [N, M, H, W] values of channel c. */
const channel = (v: Float32Array, c: number) => Array.from({ length: N }, (_, n) => v.subarray((n * M + c) * HW, (n * M + c + 1) * HW));
const allZero = (parts: Float32Array[]) => parts.every((p) => p.every((x) => x === 0));
const nonZeroFraction = (parts: Float32Array[]) => parts.reduce((s, p) => s + p.filter((x) => x !== 0).length, 0) / (parts.length * HW);

function adamFor(m: Module): Adam {
  return new Adam(m.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: cfg.lr, betas: [cfg.beta1, 0.999] });
}

async function weights(m: Module): Promise<Float32Array[]> {
  return Promise.all(m.parameters().map((p) => p.read()));
}

function sameArrays(a: Float32Array[], b: Float32Array[]): boolean {
  return a.length === b.length && a.every((x, i) => x.length === b[i]!.length && x.every((v, j) => Object.is(v, b[i]![j])));
}

function backendFor(held: number[], perModality: boolean, seed = 1000): EngineDiscriminator {
  const units = makeDiscriminatorUnits(cfg, { maskChannels: C, imageChannels: M, held, perModality, seed });
  const own: Dataset = selectModalities(ds, modalityNames(ds.modalities, held));
  const images = new Map(own.slices.map((s) => [s.key, s.image]));
  const b = new EngineDiscriminator(units, { channels: held.length, height: SIZE, width: SIZE, get: (k) => images.get(k) }, cfg, { heldChannels: held });
  b.configure(session());
  return b;
}

// The pre-generalization gan.ts, verbatim in substance: the reference for the default case.
function legacyDiscriminatorStep(d: Module, opt: Adam, mask: Tensor, real: Tensor, fake: Tensor) {
  for (const p of d.parameters()) p.requiresGrad = true;
  opt.zeroGrad();
  const losses = tidy(() => {
    const dReal = bceWithLogits(d.forward(concat([mask, real], 1)), 1);
    const dFake = bceWithLogits(d.forward(concat([mask, detach(fake)], 1)), 0);
    backward(scale(add(dReal, dFake), 0.5));
    return { dReal: detach(dReal), dFake: detach(dFake) };
  });
  opt.step();
  return losses;
}
function legacyGeneratorGradient(d: Module, mask: Tensor, real: Tensor, fake: Tensor, lambdaL1: number) {
  for (const p of d.parameters()) p.requiresGrad = false;
  const leaf = detach(fake);
  leaf.requiresGrad = true;
  const r = tidy(() => {
    const gGan = bceWithLogits(d.forward(concat([mask, leaf], 1)), 1);
    const l1 = l1Loss(leaf, real);
    backward(add(gGan, scale(l1, lambdaL1)));
    return { gGan: detach(gGan), gL1: detach(l1) };
  });
  for (const p of d.parameters()) p.requiresGrad = true;
  const gradFake = leaf.grad!;
  leaf.grad = null;
  leaf.dispose();
  return { gradFake, ...r };
}

t.test('one discriminator on all channels: bit-identical to the original gan.ts', async (t) => {
  const dNew = makeDiscriminator(cfg, C + M, 11);
  const dOld = makeDiscriminator(cfg, C + M, 11);
  const oNew = adamFor(dNew);
  const oOld = adamFor(dOld);
  const mask = tensor(maskData, [N, C, SIZE, SIZE]);
  const real = tensor(realData, [N, M, SIZE, SIZE]);
  const fake = tensor(fakeData, [N, M, SIZE, SIZE]);
  for (let round = 0; round < 2; round++) {
    const a = discriminatorStep(dNew, oNew, mask, real, fake);
    const b = legacyDiscriminatorStep(dOld, oOld, mask, real, fake);
    const ga = generatorGradient(dNew, mask, real, fake, { lambdaL1: 100 });
    const gb = legacyGeneratorGradient(dOld, mask, real, fake, 100);
    t.same([await a.dReal.item(), await a.dFake.item()], [await b.dReal.item(), await b.dFake.item()], `round ${round}: D losses`);
    t.same([await ga.gGan.item(), await ga.gL1.item()], [await gb.gGan.item(), await gb.gL1.item()], `round ${round}: G losses`);
    t.ok(sameArrays([await ga.gradFake.read()], [await gb.gradFake.read()]), `round ${round}: d(loss)/d(fake) bit-identical`);
    for (const x of [a.dReal, a.dFake, b.dReal, b.dFake, ga.gradFake, ga.gGan, ga.gL1, gb.gradFake, gb.gGan, gb.gL1]) x.dispose();
  }
  t.ok(sameArrays(await weights(dNew), await weights(dOld)), 'D weights after two steps bit-identical');
  t.ok(dNew.parameters().every((p) => p.requiresGrad), 'D trainable again after the generator pass');
  [mask, real, fake].forEach((x) => x.dispose());
  dNew.dispose();
  dOld.dispose();
});

t.test('modality names to channels', async (t) => {
  const all = ['t1', 't1c', 't2', 'flair'];
  t.same(modalityChannels(all, 't1,t2'), [0, 2]);
  t.same(modalityChannels(all, ' FLAIR , t1 '), [0, 3], 'case-insensitive, any order, sorted to channel order');
  t.same(modalityNames(all, [1, 3]), ['t1c', 'flair']);
  t.throws(() => modalityChannels(all, 't1,pd'), /unknown modality "pd"/);
  t.throws(() => modalityChannels(all, 't2,t2'), /named twice/);
  t.throws(() => modalityChannels(all, ''), /no modality/);
});

t.test('a node holding t1 and t2 (joint D): zero gradient on t1c and flair, non-zero on t1 and t2', async (t) => {
  const node = backendFor([0, 2], false);
  t.equal(node.discriminators.length, 1);
  t.same(node.discriminators[0]!.channels, [0, 2]);
  t.same(node.discriminator.parameters()[0]!.shape, [cfg.ndf, C + 2, 4, 4], 'D input: mask + 2 held channels');
  for (let round = 0; round < 2; round++) {
    const { gradFakes, losses } = await node.step(input(round));
    t.equal(gradFakes.length, N * M * HW);
    t.ok(allZero(channel(gradFakes, 1)) && allZero(channel(gradFakes, 3)), `round ${round}: exactly 0 on t1c and flair`);
    for (const c of [0, 2]) {
      const f = nonZeroFraction(channel(gradFakes, c));
      t.ok(f > 0.9, `round ${round}: channel ${c} non-zero at ${(100 * f).toFixed(1)}% of pixels`);
    }
    t.ok(Object.values(losses).every(Number.isFinite), 'finite losses');
  }
  t.equal(node.steps, 2);
});

t.test('per-modality discriminators: one D per held modality, each with its own Adam', async (t) => {
  const node = backendFor([0, 2, 3], true);
  const units = node.discriminators;
  t.equal(units.length, 3, 'one D per held modality');
  t.same(units.map((u) => u.channels), [[0], [2], [3]]);
  for (const u of units) t.same(u.module.parameters()[0]!.shape, [cfg.ndf, C + 1, 4, 4], 'D input: mask + 1 channel');
  t.equal(new Set(units.map((u) => u.optimizer)).size, 3, 'three optimizers');
  const first = await Promise.all(units.map((u) => u.module.parameters()[0]!.read()));
  t.notSame(first[0], first[1], 'different initial weights');
  const before = await Promise.all(units.map((u) => weights(u.module)));

  const { gradFakes, losses } = await node.step(input(0));
  t.ok(allZero(channel(gradFakes, 1)), 'exactly 0 on t1c (not held)');
  for (const c of [0, 2, 3]) t.ok(nonZeroFraction(channel(gradFakes, c)) > 0.9, `channel ${c} non-zero`);
  const after = await Promise.all(units.map((u) => weights(u.module)));
  units.forEach((_, k) => t.notOk(sameArrays(before[k]!, after[k]!), `D${k} took a step`));
  t.ok(Number.isFinite(losses.gGan));

  // The GAN loss is the mean over the discriminators.
  const mask = tensor(maskData, [N, C, SIZE, SIZE]);
  const real = tensor(realData, [N, M, SIZE, SIZE]);
  const fake = tensor(fakeData, [N, M, SIZE, SIZE]);
  const all = generatorGradients(units, mask, real, fake, { lambdaL1: 0, l1Channels: [0, 2, 3] });
  const each = units.map((u) => generatorGradients([u], mask, real, fake, { lambdaL1: 0, l1Channels: [0, 2, 3] }));
  const mean = (await Promise.all(each.map((g) => g.gGan.item()))).reduce((a, b) => a + b, 0) / 3;
  t.ok(Math.abs((await all.gGan.item()) - mean) < 1e-6, 'gGan = mean of the per-modality GAN losses');
  for (const g of [all, ...each]) for (const x of Object.values(g)) x.dispose();

  // Checkpoint: D0, D1, D2 round-trip; a joint-D node refuses the file.
  const state = await node.saveState();
  const copy = backendFor([0, 2, 3], true, 999);
  await copy.loadState(state);
  t.equal(copy.steps, 1);
  const a = await node.step(input(1));
  const b = await copy.step(input(1));
  t.ok(sameArrays([a.gradFakes], [b.gradFakes]), 'restored node answers identically');
  await t.rejects(backendFor([0, 2, 3], false).loadState(state), 'a joint-D node cannot load per-modality state');
  [mask, real, fake].forEach((x) => x.dispose());
});

t.test('L1 only on held channels: a non-held real channel changes nothing, a held one does', async (t) => {
  const held = [0, 2];
  const run = async (realValues: Float32Array, lambdaL1: number) => {
    const d = makeDiscriminator(cfg, C + held.length, 21);
    const units: DiscriminatorUnit[] = [{ module: d, optimizer: adamFor(d), channels: held }];
    const mask = tensor(maskData, [N, C, SIZE, SIZE]);
    const real = tensor(realValues, [N, M, SIZE, SIZE]);
    const fake = tensor(fakeData, [N, M, SIZE, SIZE]);
    const dl = discriminatorsStep(units, mask, real, fake);
    const g = generatorGradients(units, mask, real, fake, { lambdaL1, l1Channels: held });
    const out = {
      grad: await g.gradFake.read(),
      losses: await Promise.all([dl.dReal, dl.dFake, g.gGan, g.gL1].map((x) => x.item())),
      w: await weights(d),
    };
    for (const x of [dl.dReal, dl.dFake, ...Object.values(g), mask, real, fake]) x.dispose();
    d.dispose();
    return out;
  };
  const base = await run(realData, 100);
  const changed = (c: number) => {
    const r = new Float32Array(realData);
    for (let n = 0; n < N; n++) r.set(randomArray(HW, 900 + n, -1, 1), (n * M + c) * HW);
    return r;
  };
  const otherT1c = await run(changed(1), 100);
  t.ok(sameArrays([base.grad], [otherT1c.grad]), 'gradient unchanged when real t1c changes');
  t.same(base.losses, otherT1c.losses, 'losses unchanged');
  t.ok(sameArrays(base.w, otherT1c.w), 'discriminator update unchanged');
  const otherT2 = await run(changed(2), 100);
  t.notOk(sameArrays([base.grad], [otherT2.grad]), 'gradient changes when real t2 (held) changes');

  // lambda * d(L1)/d(fake) = lambda * sign(fake - real) / (N * |held| * H * W) on held channels, 0 elsewhere.
  const noL1 = await run(realData, 0);
  const withL1 = await run(realData, 1);
  let worst = 0;
  for (let i = 0; i < fakeData.length; i++) {
    const c = Math.floor(i / HW) % M;
    const want = held.includes(c) ? Math.sign(fakeData[i]! - realData[i]!) / (N * held.length * HW) : 0;
    worst = Math.max(worst, Math.abs(withL1.grad[i]! - noL1.grad[i]! - want));
  }
  t.ok(worst < 1e-7, `L1 gradient matches the held-channel mean (max error ${worst.toExponential(2)})`);
});

t.test('selectChannels and refusals', async (t) => {
  const x = tensor(randomArray(2 * 5 * 3 * 2, 3), [2, 5, 3, 2]);
  const xs = await x.read();
  const y = selectChannels(x, [0, 1, 3]);
  t.same(y.shape, [2, 3, 3, 2]);
  const ys = await y.read();
  const want: number[] = [];
  for (let n = 0; n < 2; n++) for (const c of [0, 1, 3]) for (let i = 0; i < 6; i++) want.push(xs[(n * 5 + c) * 6 + i]!);
  t.same(Array.from(ys), want, 'channels 0, 1, 3 in order');
  t.equal(selectChannels(x, [0, 1, 2, 3, 4]), x, 'all channels: the tensor itself');
  t.throws(() => selectChannels(x, [5]), /out of range/);
  [x, y].forEach((v) => v.dispose());

  const units = makeDiscriminatorUnits(cfg, { maskChannels: C, imageChannels: M, seed: 1 });
  t.equal(units[0]!.channels, undefined, 'all held, joint: the default discriminator on every channel');
  const images = { channels: 2, height: SIZE, width: SIZE, get: () => undefined };
  t.throws(() => new EngineDiscriminator(units, images, cfg, { heldChannels: [0, 2] }), /sees all/);
  const node = backendFor([0, 2], false);
  t.throws(() => node.configure(session(2)), /holds channels \[0, 2\]/, 'held channel beyond the server channels');
  t.throws(() => makeDiscriminatorUnits(cfg, { maskChannels: C, imageChannels: M, held: [2, 0], seed: 1 }), /ascending/);
});
