/**
 * No non-finite state is written to or accepted from a checkpoint, and the generator's optimizer
 * refuses a step whose gradients are not finite (the case where Adam's second moment overflows to
 * Inf and freezes every parameter for good). Each guard is shown against its absence.
 */
import t from 'tap';
import { Adam, init } from '../src/engine/index.js';
import { EngineGenerator } from '../src/federation/generator-backend.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/safetensors.js';
import { GeneratorStepSkipped } from '../src/net/backend.js';
import { loadTrainingStateBytes, saveTrainingStateBytes } from '../src/train/state.js';
import { DEFAULT_GAN_CONFIG, makeGenerator, type GanConfig } from '../src/train/pix2pix.js';

await init();
const S = 16;
const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ngf: 4, blocks: 1, dropout: false, iters: 100, decayIters: 0, seed: 2 };

function generator(guard = true): { gen: EngineGenerator; opt: Adam; g: ReturnType<typeof makeGenerator> } {
  const g = makeGenerator(cfg, 2, 1);
  const opt = new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: cfg.lr, betas: [cfg.beta1, 0.999] });
  return { gen: new EngineGenerator(g, opt, cfg, 2, guard), opt, g };
}

const masks = new Float32Array(2 * 2 * S * S);
for (let p = 0; p < S * S; p++) masks[(p % 3 === 0 ? 1 : 0) * S * S + p] = 1;
const batch = { round: 1, masks: masks.subarray(0, 2 * S * S), shape: [1, 2, S, S] as const };

async function stepWith(gen: EngineGenerator, value: number): Promise<unknown> {
  const b = { ...batch };
  await gen.generate(b);
  try {
    await gen.applyGradients([{ batch: b, gradFakes: new Float32Array(S * S).fill(value) }]);
    return undefined;
  } catch (e) {
    return e;
  }
}

async function params(g: ReturnType<typeof makeGenerator>): Promise<Float32Array[]> {
  return Promise.all(g.namedParameters().map(([, p]) => p.read()));
}
const same = (a: Float32Array[], b: Float32Array[]) => a.every((x, i) => x.every((v, j) => Object.is(v, b[i]![j])));

t.test('the optimizer guard skips a step with non-finite gradients and changes nothing', async (t) => {
  const { gen, g } = generator();
  t.equal(await stepWith(gen, 1e-3), undefined, 'a normal step');
  const before = await params(g);
  const state0 = await gen.saveState();
  const e = await stepWith(gen, 1e30);
  t.ok(e instanceof GeneratorStepSkipped, 'GeneratorStepSkipped');
  t.match((e as Error).message, /sum of squared generator gradients is Infinity; step 2 skipped/);
  t.ok(same(before, await params(g)), 'weights unchanged');
  // (Batch-norm running statistics move with every forward; the optimizer's state must not.)
  const optimState = (bytes: Uint8Array) => {
    const f = decodeSafetensors(bytes);
    return { meta: f.metadata, moments: Object.entries(f.tensors).filter(([k]) => k.startsWith('optim.')).map(([k, v]) => [k, [...(v.data as Float32Array)]]) };
  };
  t.same(optimState(await gen.saveState()), optimState(state0), 'Adam moments, step counts and the step counter unchanged');
  t.equal(await stepWith(gen, 1e-3), undefined, 'the next honest step is taken');
  t.notOk(same(before, await params(g)), 'and moves the weights');
});

t.test('without the guard, one 1e30 gradient freezes the generator (and the checkpoint refuses the state)', async (t) => {
  const { gen, g } = generator(false);
  await stepWith(gen, 1e-3);
  t.equal(await stepWith(gen, 1e30), undefined, 'the step is taken');
  const frozen = await params(g);
  for (let i = 0; i < 3; i++) await stepWith(gen, 1e-3);
  const after = await params(g);
  const moved = after.reduce((n, x, i) => n + x.filter((v, j) => v !== frozen[i]![j]).length, 0);
  const total = after.reduce((n, x) => n + x.length, 0);
  t.ok(moved < 0.01 * total, `3 honest steps later ${moved} of ${total} weights moved`);
  await t.rejects(gen.saveState(), /refusing to save the training state: tensor (G\.\S+|optim\.G\.[mv]\.\S+) holds a non-finite value/, 'the Inf moments are not written');
});

t.test('a checkpoint with a NaN weight or an Inf moment is refused on load, naming the tensor, and changes nothing', async (t) => {
  const { gen, g } = generator();
  await stepWith(gen, 1e-3);
  const good = await gen.saveState();
  const file = decodeSafetensors(good);
  const corrupt = (name: string, v: number): Uint8Array => {
    const tensors = Object.fromEntries(Object.entries(file.tensors).map(([k, x]) => [k, { ...x, data: x.data.slice() }]));
    (tensors[name]!.data as Float32Array)[0] = v;
    return encodeSafetensors(tensors as never, file.metadata);
  };
  const weight = Object.keys(file.tensors).find((k) => k.startsWith('G.') && k.endsWith('weight'))!;
  const moment = Object.keys(file.tensors).find((k) => k.startsWith('optim.G.v.'))!;
  const before = await params(g);
  await t.rejects(gen.loadState(corrupt(weight, NaN)), new RegExp(`refusing to load the training state: tensor ${weight.replace(/\./g, '\\.')} holds a non-finite value \\(element 0 is NaN\\)`));
  await t.rejects(gen.loadState(corrupt(moment, Infinity)), new RegExp(`tensor ${moment.replace(/\./g, '\\.')} holds a non-finite value \\(element 0 is Infinity\\)`));
  t.ok(same(before, await params(g)), 'weights unchanged by the refused loads');
  await gen.loadState(good);
  t.pass('the intact checkpoint loads');
});

t.test('saveTrainingStateBytes refuses a module holding NaN (e.g. a corrupted batch-norm running variance)', async (t) => {
  const { g, opt } = generator();
  const dict = await g.stateDict();
  const name = Object.keys(dict).find((k) => k.endsWith('running_var'))!;
  const data = Float32Array.from(dict[name]!.data as Float32Array);
  data[3] = Infinity;
  g.loadStateDict({ ...dict, [name]: { ...dict[name]!, data } });
  await t.rejects(
    saveTrainingStateBytes({ modules: { G: g }, optimizers: { G: opt }, info: {} }),
    new RegExp(`refusing to save the training state: tensor G\\.${name.replace(/\./g, '\\.')} holds a non-finite value \\(element 3 is Infinity\\)`),
  );
  t.rejects(loadTrainingStateBytes(new Uint8Array(8), { modules: {}, optimizers: {} }), /./, 'garbage is refused too');
});
