/**
 * The module system (src/models/module.ts) and checkpoints (src/models/checkpoint.ts) on small
 * hand-written modules built from elementwise ops only: names, state dicts, strict loading, modes,
 * memory scopes, seeded initialization and safetensors files.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as E from '../src/engine/index.js';
import {
  Counter, Module, StateDictError, toRng, type SeedLike,
} from '../src/models/module.js';
import { decodeModule, encodeModule, loadModule, saveModule } from '../src/models/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../src/io/safetensors.js';
import { gpu } from './helpers/engine.js';

await gpu();

/** y = x * weight + bias per channel, with BatchNorm-like buffers. */
class Affine extends Module {
  readonly weight: E.Tensor;
  readonly bias: E.Tensor | null;
  readonly steps = new Counter();
  constructor(readonly channels: number, seed: SeedLike, bias = true) {
    super();
    const rng = toRng(seed);
    this.weight = this.registerParameter('weight', E.randn([1, channels, 1, 1], rng.nextU32(), 0.5, 1))!;
    this.bias = this.registerParameter('bias', bias ? E.randn([1, channels, 1, 1], rng.nextU32(), 0.5) : null);
    this.registerBuffer('running_mean', E.zeros([channels]));
    this.registerBuffer('num_batches_tracked', this.steps);
  }
  forward(x: E.Tensor): E.Tensor {
    if (this.training) this.steps.value++;
    const m = E.mul(x, this.weight);
    if (!this.bias) return m;
    const y = E.add(m, this.bias);
    m.dispose();
    return y;
  }
}

class Chain extends Module {
  readonly layers: Module[] = [];
  constructor(...layers: Module[]) {
    super();
    layers.forEach((l, i) => this.layers.push(this.registerModule(String(i), l)));
  }
  forward(x: E.Tensor): E.Tensor {
    let cur = x;
    for (const l of this.layers) cur = l.forward(cur);
    return cur;
  }
}

/** Mirrors the reference nesting: net.model.<i>.conv_block.<j>. */
class Net extends Module {
  readonly model: Chain;
  constructor(seed: SeedLike, channels = 3) {
    super();
    const rng = toRng(seed);
    const block = new Chain(new Affine(channels, rng, false), new Affine(channels, rng));
    const inner = new (class Block extends Module {
      readonly conv_block = this.registerModule('conv_block', block);
      forward(x: E.Tensor): E.Tensor {
        return this.conv_block.forward(x);
      }
    })();
    this.model = this.registerModule('model', new Chain(new Affine(channels, rng), inner));
    this.nameTensors();
  }
  forward(x: E.Tensor): E.Tensor {
    return this.model.forward(x);
  }
}

const input = () => E.tensor(Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => (i % 7) - 3), [2, 3, 2, 2]);

t.test('PyTorch-style dotted names and state_dict order', async (t) => {
  const net = new Net(1);
  t.same(net.namedParameters().map(([n]) => n), [
    'model.0.weight', 'model.0.bias',
    'model.1.conv_block.0.weight',
    'model.1.conv_block.1.weight', 'model.1.conv_block.1.bias',
  ]);
  t.same(net.namedBuffers().map(([n]) => n), [
    'model.0.running_mean', 'model.0.num_batches_tracked',
    'model.1.conv_block.0.running_mean', 'model.1.conv_block.0.num_batches_tracked',
    'model.1.conv_block.1.running_mean', 'model.1.conv_block.1.num_batches_tracked',
  ]);
  const sd = await net.stateDict();
  t.same(Object.keys(sd).slice(0, 5), [
    'model.0.weight', 'model.0.bias', 'model.0.running_mean', 'model.0.num_batches_tracked',
    'model.1.conv_block.0.weight',
  ]);
  t.equal(net.numParameters(), 5 * 3);
  t.ok(net.parameters().every((p) => p.requiresGrad));
  t.equal(net.parameters()[2]!.name, 'model.1.conv_block.0.weight');
  t.same(sd['model.0.num_batches_tracked'], { dtype: 'I64', shape: [], data: BigInt64Array.of(0n) });
  t.same(sd['model.0.weight']!.shape, [1, 3, 1, 1]);
  net.dispose();
});

t.test('names are validated and unique', async (t) => {
  class Bad extends Module {
    constructor(name: string, twice = false) {
      super();
      this.registerBuffer(name, new Counter());
      if (twice) this.registerParameter(name, null);
    }
    forward(x: E.Tensor): E.Tensor {
      return x;
    }
  }
  t.throws(() => new Bad('a.b'), /invalid member name 'a.b'/);
  t.throws(() => new Bad('w', true), /'w' is already registered/);
});

t.test('seeded initialization: same seed same weights, other seed other weights', async (t) => {
  const a = new Net(42);
  const b = new Net(42);
  const c = new Net(43);
  const [sa, sb, sc] = [await a.stateDict(), await b.stateDict(), await c.stateDict()];
  for (const k of Object.keys(sa)) t.same(sa[k]!.data, sb[k]!.data, k);
  t.notSame(sa['model.0.weight']!.data, sc['model.0.weight']!.data);
  // Each parameter draws its own sub-seed: two layers of one network differ.
  t.notSame(sa['model.0.weight']!.data, sa['model.1.conv_block.0.weight']!.data);
  // A shared Rng is advanced: constructing with it twice gives different weights.
  const rng = toRng(7);
  const d1 = await new Affine(3, rng).weight.read();
  const d2 = await new Affine(3, rng).weight.read();
  t.notSame(d1, d2);
  [a, b, c].forEach((m) => m.dispose());
});

t.test('randn follows N(mean, std) and matches the seeded CPU generator', async (t) => {
  const w = E.randn([64, 32, 3, 3], toRng(5).nextU32(), 0.02, 1);
  const v = await w.read();
  let s = 0;
  let s2 = 0;
  for (const x of v) {
    s += x;
    s2 += x * x;
  }
  const mean = s / v.length;
  const std = Math.sqrt(s2 / v.length - mean * mean);
  t.ok(Math.abs(mean - 1) < 0.001, `mean ${mean}`);
  t.ok(Math.abs(std - 0.02) < 0.001, `std ${std}`);
  const expected = new E.Rng(toRng(5).nextU32()).normalArray(v.length, 1, 0.02);
  t.same(v, expected);
  w.dispose();
});

t.test('train()/eval() switch every descendant', async (t) => {
  const net = new Net(1);
  t.ok(net.namedModules().every(([, m]) => m.training));
  t.equal(net.eval(), net);
  t.ok(net.namedModules().every(([, m]) => !m.training));
  net.train();
  t.ok(net.namedModules().every(([, m]) => m.training));
  net.dispose();
});

t.test('requiresGrad(false) freezes every parameter: no graph, no gradients', async (t) => {
  const net = new Net(4);
  const x = input();
  x.requiresGrad = true;
  net.requiresGrad(false);
  t.ok(net.parameters().every((p) => !p.requiresGrad));
  const y = net.forward(x);
  E.backward(y, E.ones(y.shape));
  t.ok(net.parameters().every((p) => p.grad === null), 'no parameter gradient');
  t.ok(x.grad !== null, 'the input still gets its gradient');
  net.requiresGrad();
  t.ok(net.parameters().every((p) => p.requiresGrad));
  [x, y].forEach((v) => v.dispose());
  net.dispose();
});

t.test('parameters survive tidy(); forward intermediates do not', async (t) => {
  const net = E.tidy(() => new Net(3));
  t.ok(net.parameters().every((p) => !p.disposed));
  const x = input();
  const y = E.tidy(() => net.forward(x));
  t.ok(!y.disposed);
  t.ok(net.parameters().every((p) => !p.disposed));
  t.equal((await y.read()).length, x.size);
  y.dispose();
  x.dispose();
  net.dispose();
  t.ok(net.parameters().every((p) => p.disposed));
  await t.rejects(net.stateDict(), /Net used after dispose\(\)/);
});

t.test('state dict round trip: fresh module, other seed, identical outputs; loads in place', async (t) => {
  const a = new Net(11);
  a.forward(input()).dispose(); // advances the counters
  const b = new Net(99);
  const x = input();
  const yb0 = await b.forward(x).read();
  const ya = await a.eval().forward(x).read();
  t.notSame(ya, yb0);
  const before = b.parameters();
  const res = b.loadStateDict(await a.stateDict());
  t.same(res, { missing: [], unexpected: [] });
  t.ok(b.parameters().every((p, i) => p === before[i]), 'the same tensor objects are kept (optimizers stay valid)');
  const yb = await b.eval().forward(x).read();
  t.same(yb, ya);
  const sb = await b.stateDict();
  t.same(sb['model.0.num_batches_tracked']!.data, BigInt64Array.of(1n));
  [a, b].forEach((m) => m.dispose());
});

t.test('strict loading names missing and unexpected keys and leaves the module unchanged', async (t) => {
  const a = new Net(1);
  const b = new Net(2);
  const before = await b.stateDict();
  const sd = await a.stateDict();
  delete sd['model.0.bias'];
  sd['model.0.extra'] = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
  const err = (() => {
    try {
      b.loadStateDict(sd, { source: 'x.safetensors' });
    } catch (e) {
      return e as StateDictError;
    }
    return null;
  })();
  t.ok(err instanceof StateDictError);
  t.match(err!.message, /Net \(x\.safetensors\): missing keys: 'model\.0\.bias'; unexpected keys: 'model\.0\.extra'/);
  t.same(err!.missing, ['model.0.bias']);
  t.same(err!.unexpected, ['model.0.extra']);
  const after = await b.stateDict();
  for (const k of Object.keys(before)) t.same(after[k]!.data, before[k]!.data, `${k} unchanged`);

  // Non-strict: loads the rest and reports what it skipped.
  const res = b.loadStateDict(sd, { strict: false });
  t.same(res, { missing: ['model.0.bias'], unexpected: ['model.0.extra'] });
  const loaded = await b.stateDict();
  t.same(loaded['model.0.weight']!.data, sd['model.0.weight']!.data);
  t.same(loaded['model.0.bias']!.data, before['model.0.bias']!.data);
  [a, b].forEach((m) => m.dispose());
});

t.test('shape, size and dtype mismatches always throw', async (t) => {
  const net = new Net(1);
  const good = await net.stateDict();
  const w = good['model.0.weight']!;
  t.throws(
    () => net.loadStateDict({ ...good, 'model.0.weight': { ...w, shape: [3, 1, 1, 1] } }, { strict: false }),
    /'model\.0\.weight': shape \[3, 1, 1, 1\] in the state dict, \[1, 3, 1, 1\] in the module/,
  );
  t.throws(
    () => net.loadStateDict({ ...good, 'model.0.weight': { ...w, data: new Float32Array(2) } }),
    /'model\.0\.weight': 2 values for shape \[1, 3, 1, 1\]/,
  );
  t.throws(
    () => net.loadStateDict({ ...good, 'model.0.weight': { dtype: 'I32', shape: [1, 3, 1, 1], data: new Int32Array(3) } }),
    /'model\.0\.weight': dtype I32 is not a float type/,
  );
  t.throws(
    () => net.loadStateDict({ ...good, 'model.0.num_batches_tracked': { dtype: 'I64', shape: [2], data: new BigInt64Array(2) } }),
    /num_batches_tracked': expected a single integer/,
  );
  net.dispose();
});

t.test('float64, float16 and bfloat16 entries are converted; counters accept any integer type', async (t) => {
  const m = new Affine(2, 0);
  const f16 = Uint16Array.of(0x3c00, 0xc000); // 1, -2
  const bf16 = Uint16Array.of(0x3f80, 0x4040); // 1, 3
  m.loadStateDict({
    weight: { dtype: 'F16', shape: [1, 2, 1, 1], data: f16 },
    bias: { dtype: 'BF16', shape: [1, 2, 1, 1], data: bf16 },
    running_mean: { dtype: 'F64', shape: [2], data: Float64Array.of(0.25, -0.5) },
    num_batches_tracked: { dtype: 'I32', shape: [], data: Int32Array.of(17) },
  });
  t.same(await m.weight.read(), Float32Array.of(1, -2));
  t.same(await m.bias!.read(), Float32Array.of(1, 3));
  const sd = await m.stateDict();
  t.same(sd.running_mean!.data, Float32Array.of(0.25, -0.5));
  t.equal(m.steps.value, 17);
  m.dispose();
});

t.test('safetensors checkpoints: PyTorch names, F32 and 0-d I64, metadata, errors name the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'models-module-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = new Net(5);
  a.forward(input()).dispose();
  a.forward(input()).dispose();
  const path = join(dir, 'net.safetensors');
  await saveModule(path, a, { epoch: '3' });
  const file = decodeSafetensors(await readFile(path), path);
  t.same(file.metadata, { format: 'pt', module: 'Net', parameters: '15', epoch: '3' });
  t.same(Object.keys(file.tensors), Object.keys(await a.stateDict()));
  t.same(file.tensors['model.0.num_batches_tracked'], { dtype: 'I64', shape: [], data: BigInt64Array.of(2n) });
  t.equal(file.tensors['model.0.weight']!.dtype, 'F32');

  const b = new Net(6);
  const res = await loadModule(path, b);
  t.same(res.metadata.epoch, '3');
  const x = input();
  t.same(await b.eval().forward(x).read(), await a.eval().forward(x).read());

  // In-memory variant.
  const c = new Net(7);
  decodeModule(await encodeModule(a), c);
  t.same(await c.eval().forward(x).read(), await a.eval().forward(x).read());

  // A file of another network: the error names the file and the offending keys.
  const other = join(dir, 'other.safetensors');
  const small = new Affine(3, 0);
  await saveModule(other, small);
  await t.rejects(loadModule(other, b), new RegExp(`loadStateDict into Net \\(${other.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\): missing keys: 'model\\.0\\.weight'`));
  // Wrong channel count: shape mismatch.
  const wide = new Net(1, 4);
  await saveModule(other, wide);
  await t.rejects(loadModule(other, b), /'model\.0\.weight': shape \[1, 4, 1, 1\] in the state dict, \[1, 3, 1, 1\] in the module/);
  // Truncated file: the safetensors reader's error, naming the path.
  const bytes = await readFile(path);
  await writeFile(other, bytes.subarray(0, bytes.length - 4));
  await t.rejects(loadModule(other, b), new RegExp(`safetensors ${other.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:`));
  // A file written by someone else with extra tensors: non-strict reports them.
  const sd = await a.stateDict();
  await writeFile(other, encodeSafetensors({ ...sd, 'model.9.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) } }));
  const loose = await loadModule(other, b, { strict: false });
  t.same(loose.unexpected, ['model.9.weight']);
  [a, b, c, small, wide].forEach((m) => m.dispose());
});
