/**
 * The experiment's fairness and bookkeeping: with a synthesizer that returns the real images, the
 * "synthetic" setting trains on exactly the data of "real-all", so (same config, seeds, iterations
 * and batch order) it must reproduce its predictions and metrics bit for bit; the claim check;
 * synthesizeDataset; the generator synthesizer's shapes, range and mode handling.
 */
import t from 'tap';
import { makePhantom } from '../src/data/index.js';
import {
  checkClaim, generatorSynthesizer, runExperiment, synthesizeDataset, type SettingResult, type Synthesizer,
} from '../src/eval/experiment.js';
import { ResnetGenerator } from '../src/models/index.js';
import { closeness, gpu } from './helpers/engine.js';

const data = makePhantom({ size: 32, numNodes: 2, seed: 6, slicesPerNode: 6, testSlices: 5, modalities: ['t1', 't2'] });
const identity: Synthesizer = async (slices) => slices.map((s) => s.image.slice());

t.test('same data, same seeds -> same result: the settings differ only by their data', async (t) => {
  await gpu();
  const calls: string[] = [];
  const run = await runExperiment(
    { nodes: data.nodes, test: data.test, synthesize: identity },
    { segmenter: { iters: 30, depth: 2, width: 4, lr: 5e-3, seed: 3 }, progress: false, onSetting: (r) => calls.push(r.id) },
  );
  const ids = ['real-all', 'real-node-0', 'real-node-1', 'synthetic', 'real+synthetic'];
  t.same(run.results.settings.map((s) => s.id), ids);
  t.same(calls, ids, 'onSetting after each setting');
  const byId = Object.fromEntries(run.results.settings.map((s) => [s.id, s]));
  t.same(run.predictions.synthetic, run.predictions['real-all'], 'identical predictions');
  t.same(byId.synthetic!.metrics, byId['real-all']!.metrics, 'identical metrics');
  t.same(byId.synthetic!.runs[0]!.finalLoss, byId['real-all']!.runs[0]!.finalLoss, 'identical final loss');
  // Non-trivial predictions (several classes), so the equalities above are not those of constant maps.
  const classes = new Set(run.predictions['real-all']!.flatMap((p) => [...p]));
  t.ok(classes.size >= 3, `real-all predicts ${classes.size} classes`);
  t.not(byId['real-node-0']!.finalLoss, byId['real-all']!.finalLoss, 'other data, other training');
  t.notSame(run.predictions['real-node-0'], run.predictions['real-all'], 'other data, other predictions');
  t.same(run.results.nodeSlices, [6, 6]);
  t.equal(byId['real+synthetic']!.trainSlices, 24);
  t.equal(run.results.synthetic?.slices, 12);
  t.equal(run.syntheticSet?.slices.length, 12);
  t.same(run.results.seeds, [3]);
  t.equal(run.predictions['real-all']!.length, 5);
  const c = run.results.claim!;
  t.ok(c, 'claim check present');
  t.equal(c.syntheticDice, c.realAllDice);
  t.equal(c.gapToRealAll, 0);
});

t.test('runExperiment argument checks', async (t) => {
  await t.rejects(runExperiment({ nodes: data.nodes, test: data.test }, { settings: ['synthetic'], progress: false }), /need a synthesizer/);
  await t.rejects(runExperiment({ nodes: [], test: data.test }), /no nodes/);
  await t.rejects(runExperiment({ nodes: data.nodes, test: data.test }, { settings: ['real-all'], repeats: 0 }), /repeats/);
});

t.test('checkClaim', async (t) => {
  const s = (id: string, kind: SettingResult['kind'], dice: number) => ({ id, kind, foregroundDice: { mean: dice, std: 0, n: 1 } }) as SettingResult;
  const c = checkClaim([s('real-all', 'real-all', 0.8), s('real-node-0', 'real-node', 0.6), s('real-node-1', 'real-node', 0.7), s('synthetic', 'synthetic', 0.75)]);
  t.same(c, { syntheticDice: 0.75, realAllDice: 0.8, bestSingleNodeDice: 0.7, worstSingleNodeDice: 0.6, beatsEverySingleNode: true, gapToRealAll: 0.8 - 0.75 });
  t.equal(checkClaim([s('real-all', 'real-all', 0.8), s('real-node-0', 'real-node', 0.8), s('synthetic', 'synthetic', 0.75)])?.beatsEverySingleNode, false);
  t.equal(checkClaim([s('real-all', 'real-all', 0.8), s('synthetic', 'synthetic', 0.75)]), undefined, 'needs single-node settings');
});

t.test('synthesizeDataset and the generator synthesizer', async (t) => {
  await gpu();
  const ds = data.nodes[0]!;
  const g = new ResnetGenerator(ds.numClasses, 2, { ngf: 4, blocks: 1, norm: 'batch', dropout: true, seed: 1 });
  g.train();
  const synth = generatorSynthesizer(g, ds.numClasses, 4);
  const s = await synthesizeDataset(ds, synth);
  t.equal(g.training, true, 'training mode restored');
  t.equal(s.slices.length, ds.slices.length);
  t.same(s.slices.map((x) => x.mask), ds.slices.map((x) => x.mask), 'same masks');
  t.ok(s.slices.every((x) => x.key.endsWith(':synthetic') && x.meta.synthetic === true));
  t.ok(s.slices.every((x) => x.image.length === 2 * 32 * 32 && x.image.every((v) => v >= -1 && v <= 1)), 'images in [-1, 1]');
  t.notSame(s.slices[0]!.image, ds.slices[0]!.image);
  // Evaluation mode is deterministic: batching does not change the images.
  const one = await generatorSynthesizer(g, ds.numClasses, 1)(ds.slices.slice(0, 2));
  one.forEach((img, i) => {
    const c = closeness(img, s.slices[i]!.image, 1e-4, 1e-5);
    t.ok(c.ok, `batch size 1 and 4 agree (image ${i}): ${c.msg}`);
  });
  g.dispose();
  await t.rejects(synthesizeDataset(ds, async () => []), /0 images for 6 masks/);
});
