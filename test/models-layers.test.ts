/**
 * Layers (src/models/layers.ts): PyTorch parameter layouts and initialization schemes, argument
 * validation, Sequential naming and memory handling, Dropout masks, norm-layer options.
 */
import t from 'tap';
import * as E from '../src/engine/index.js';
import {
  BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Identity, InstanceNorm2d, LeakyReLU, MaxPool2d, ReflectionPad2d, ReLU,
  ResnetGenerator, Sequential, Sigmoid, Tanh, Upsample2x, ZeroPad2d, toRng,
} from '../src/models/index.js';
import { sizeClass } from '../src/engine/pool.js';
import { gpu, randomArray } from './helpers/engine.js';

await gpu();

function stats(v: Float32Array) {
  let s = 0;
  let s2 = 0;
  let max = 0;
  for (const x of v) {
    s += x;
    s2 += x * x;
    max = Math.max(max, Math.abs(x));
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(s2 / v.length - mean * mean), max };
}

t.test('Conv2d: [out, in, kh, kw] weight, N(0, 0.02) or PyTorch default init', async (t) => {
  const c = new Conv2d(16, 32, 3, { seed: 1 });
  t.same(c.weight.shape, [32, 16, 3, 3]);
  t.same(c.bias!.shape, [32]);
  const w = stats(await c.weight.read());
  t.ok(Math.abs(w.mean) < 0.002 && Math.abs(w.std - 0.02) < 0.002, `normal init mean ${w.mean} std ${w.std}`);
  t.ok((await c.bias!.read()).every((v) => v === 0), 'bias 0');
  t.same(c.namedParameters().map(([n]) => n), ['weight', 'bias']);
  t.equal(new Conv2d(3, 4, [3, 5], { bias: false }).namedParameters().length, 1);

  const p = new Conv2d(16, 32, 3, { seed: 1, init: 'pytorch' });
  const bound = 1 / Math.sqrt(16 * 9);
  const pw = stats(await p.weight.read());
  t.ok(pw.max <= bound && pw.max > 0.95 * bound, `uniform(-${bound}, ${bound}): max ${pw.max}`);
  t.ok(Math.abs(pw.std - bound / Math.sqrt(3)) < 0.05 * bound, `uniform std ${pw.std}`);
  const pb = stats(await p.bias!.read());
  t.ok(pb.max <= bound && pb.std > 0, 'bias uniform in the same bound');
  [c, p].forEach((m) => m.dispose());
});

t.test('ConvTranspose2d: [in, out, kh, kw] weight; PyTorch fan-in from dim 1', async (t) => {
  const c = new ConvTranspose2d(8, 4, 3, { stride: 2, padding: 1, outputPadding: 1, init: 'pytorch', seed: 2 });
  t.same(c.weight.shape, [8, 4, 3, 3]);
  const bound = 1 / Math.sqrt(4 * 9);
  const w = stats(await c.weight.read());
  t.ok(w.max <= bound && w.max > 0.9 * bound, `bound 1/sqrt(out*k*k) = ${bound}, max ${w.max}`);
  const x = E.randn([2, 8, 5, 7], 1);
  const y = c.forward(x);
  t.same(y.shape, [2, 4, 10, 14]);
  [x, y].forEach((v) => v.dispose());
  t.throws(() => new ConvTranspose2d(2, 2, 3, { stride: 2, outputPadding: 2 }), /outputPadding 2 must be smaller than stride or dilation/);
  c.dispose();
});

t.test('argument validation', async (t) => {
  t.throws(() => new Conv2d(0, 4, 3), /Conv2d: inChannels must be a positive integer, got 0/);
  t.throws(() => new Conv2d(3, 4, 3, { stride: 0 }), /stride must be a positive integer/);
  t.throws(() => new Conv2d(3, 4, 3, { padding: -1 }), /padding must be a non-negative integer/);
  t.throws(() => new ReflectionPad2d([1, 2, -1, 0]), /ReflectionPad2d: padding must be a non-negative integer, got -1/);
  t.throws(() => new MaxPool2d(3), /only kernel size 2/);
  t.throws(() => new Dropout(1), /p must be in \[0, 1\)/);
  t.throws(() => new ResnetGenerator(3, 3, { ngf: 2, blocks: -1 }), /blocks must be >= 0/);
  const bn = new BatchNorm2d(3);
  const x = E.randn([1, 4, 2, 2], 1);
  t.throws(() => bn.forward(x), /BatchNorm2d\(3\): expected input \[N, 3, H, W\], got \[1, 4, 2, 2\]/);
  const g = new ResnetGenerator(3, 3, { ngf: 2, blocks: 1 });
  t.throws(() => g.forward(E.randn([1, 3, 12, 10], 1)), /multiples of 4 and at least 8/);
  t.throws(() => g.forward(E.randn([1, 1, 12, 12], 1)), /expected input \[N, 3, H, W\]/);
  [bn, g, x].forEach((m) => m.dispose());
});

t.test('BatchNorm2d: parameters, buffers and options', async (t) => {
  const bn = new BatchNorm2d(64, { seed: 3 });
  t.same(bn.namedParameters().map(([n]) => n), ['weight', 'bias']);
  t.same(bn.namedBuffers().map(([n]) => n), ['running_mean', 'running_var', 'num_batches_tracked']);
  const w = stats(await bn.weight!.read());
  t.ok(Math.abs(w.mean - 1) < 0.01 && Math.abs(w.std - 0.02) < 0.006, `weight N(1, 0.02): ${w.mean} ${w.std}`);
  t.ok((await bn.bias!.read()).every((v) => v === 0));
  t.ok((await bn.runningMean!.read()).every((v) => v === 0));
  t.ok((await bn.runningVar!.read()).every((v) => v === 1));
  const plain = new BatchNorm2d(4, { init: 'pytorch' });
  t.ok((await plain.weight!.read()).every((v) => v === 1), "'pytorch' init: weight 1");
  plain.dispose();

  // Without running statistics: batch statistics in evaluation too, nothing to save.
  const free = new BatchNorm2d(2, { trackRunningStats: false, affine: false }).eval();
  t.same(free.namedParameters(), []);
  t.same(free.namedBuffers(), []);
  const data = randomArray(2 * 2 * 3 * 3, 5, 1, 3);
  const x = E.tensor(data, [2, 2, 3, 3]);
  const y = await E.tidy(() => free.forward(x)).read();
  // Each channel normalized to mean 0, variance 1 (up to eps).
  for (let c = 0; c < 2; c++) {
    const vals = [...Array(2)].flatMap((_, n) => Array.from(y.subarray((n * 2 + c) * 9, (n * 2 + c + 1) * 9)));
    const s = stats(Float32Array.from(vals));
    t.ok(Math.abs(s.mean) < 1e-5 && Math.abs(s.std - 1) < 1e-3, `channel ${c}: mean ${s.mean} std ${s.std}`);
  }
  [bn, free, x].forEach((m) => m.dispose());
});

t.test('InstanceNorm2d: no parameters by default (pix2pix), affine weight 1 and bias 0', async (t) => {
  const n = new InstanceNorm2d(3);
  t.same(n.namedParameters(), []);
  t.same(n.namedBuffers(), []);
  const a = new InstanceNorm2d(3, { affine: true });
  t.same(a.namedParameters().map(([k, v]) => [k, v.shape]), [['weight', [3]], ['bias', [3]]]);
  t.same(await a.weight!.read(), Float32Array.of(1, 1, 1));
  const x = E.randn([2, 3, 4, 5], 9);
  const y1 = await E.tidy(() => n.forward(x)).read();
  const y2 = await E.tidy(() => a.eval().forward(x)).read();
  t.same(y1, y2, 'identity affine; same computation in eval');
  const s = stats(y1.subarray(0, 20));
  t.ok(Math.abs(s.mean) < 1e-5 && Math.abs(s.std - 1) < 1e-3);
  [n, a, x].forEach((m) => m.dispose());
});

t.test('Sequential: children "0", "1", ...; releases intermediates, never its input', async (t) => {
  const seq = new Sequential(new ZeroPad2d(1), new Conv2d(2, 3, 3, { seed: 1 }), new Identity(), new LeakyReLU(0.2), new Sigmoid());
  t.equal(seq.length, 5);
  t.ok(seq.at(1) instanceof Conv2d);
  t.throws(() => seq.at(5), /no layer 5/);
  t.same(seq.namedParameters().map(([n]) => n), ['1.weight', '1.bias']);
  const x = E.randn([1, 2, 4, 4], 3);
  // Without a graph holding them, only the output remains allocated after the pass.
  const before = E.engine().pool.stats.bytesInUse;
  const y = E.noGrad(() => seq.forward(x));
  t.equal(E.engine().pool.stats.bytesInUse - before, sizeClass(y.size * 4), 'intermediates released');
  t.notOk(x.disposed, 'input kept');
  t.same(y.shape, [1, 3, 4, 4]);
  const v = await y.read();
  t.ok(v.every((a) => a > 0 && a < 1), 'sigmoid range');
  // Identity-only chains return the input itself.
  const id = new Sequential(new Identity(), new Identity());
  t.equal(id.forward(x), x);
  const up = new Sequential(new Upsample2x('nearest'), new ReflectionPad2d([1, 0, 2, 0]), new MaxPool2d(), new Tanh(), new ReLU());
  const u = up.forward(x);
  t.same(u.shape, [1, 2, 5, 4]);
  [x, y, u].forEach((m) => m.dispose());
  seq.dispose();
});

t.test('Sequential: a symmetric padding layer + unpadded Conv2d run as one convolution, with the same values and gradients', async (t) => {
  const eng = E.engine();
  const cases: [string, ReflectionPad2d | ZeroPad2d, number][] = [
    ['ReflectionPad2d(1)', new ReflectionPad2d(1), 1],
    ['ReflectionPad2d([2, 2, 1, 1])', new ReflectionPad2d([2, 2, 1, 1]), 1],
    ['ZeroPad2d(2)', new ZeroPad2d(2), 1],
    ['ReflectionPad2d([1, 0, 1, 0]) (asymmetric: not fused)', new ReflectionPad2d([1, 0, 1, 0]), 2],
  ];
  for (const [name, pad, launches] of cases) {
    const conv = new Conv2d(2, 3, 3, { seed: 4 });
    const seq = new Sequential(pad, conv);
    await E.tidy(async () => {
      const xd = randomArray(2 * 5 * 7, 9);
      const x1 = E.parameter(E.tensor(xd, [1, 2, 5, 7]));
      const d0 = eng.recorder.dispatches;
      const y1 = seq.forward(x1);
      t.equal(eng.recorder.dispatches - d0, launches, `${name}: ${launches} forward launch(es)`);
      const x2 = E.parameter(E.tensor(xd, [1, 2, 5, 7]));
      const y2 = conv.forward(pad.forward(x2));
      const gy = E.randn(y1.shape, 5);
      E.backward(E.sum(E.mul(y1, gy)));
      const gw1 = await conv.weight.grad!.read();
      conv.zeroGrad();
      E.backward(E.sum(E.mul(y2, gy)));
      const a = await y1.read(), b = await y2.read();
      t.ok(a.every((v, i) => Math.abs(v - b[i]!) <= 1e-5), `${name}: same output as layer by layer`);
      const gx1 = await x1.grad!.read(), gx2 = await x2.grad!.read();
      t.ok(gx1.every((v, i) => Math.abs(v - gx2[i]!) <= 1e-5), `${name}: same input gradient`);
      const gw2 = await conv.weight.grad!.read();
      t.ok(gw1.every((v, i) => Math.abs(v - gw2[i]!) <= 1e-4), `${name}: same weight gradient`);
    });
    seq.dispose();
  }
});

t.test('Dropout: p zeroed, survivors scaled by 1/(1-p), fresh masks per call, reproducible, identity in eval', async (t) => {
  const x = E.ones([4, 8, 16, 16]);
  const d = new Dropout(0.25, { seed: 7 });
  const m1 = await E.tidy(() => d.forward(x)).read();
  const m2 = await E.tidy(() => d.forward(x)).read();
  const zeros = m1.filter((v) => v === 0).length / m1.length;
  t.ok(Math.abs(zeros - 0.25) < 0.03, `fraction dropped ${zeros}`);
  t.ok(m1.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6), 'survivors scaled by 1/(1-p)');
  t.notSame(m1, m2, 'another mask on the next call');
  const e = new Dropout(0.25, { seed: 7 });
  t.same(await E.tidy(() => e.forward(x)).read(), m1);
  e.reseed(7);
  t.same(await E.tidy(() => e.forward(x)).read(), m1, 'reseed restarts the stream');
  t.same(await E.tidy(() => e.forward(x)).read(), m2);
  e.eval();
  t.equal(e.forward(x), x, 'identity in evaluation');
  // Two dropout layers seeded from one generator draw different masks.
  const rng = toRng(3);
  const a = new Dropout(0.5, { seed: rng.nextU32() });
  const b = new Dropout(0.5, { seed: rng.nextU32() });
  t.notSame(await E.tidy(() => a.forward(x)).read(), await E.tidy(() => b.forward(x)).read());
  [x, d, e, a, b].forEach((m) => m.dispose());
});

t.test("ResnetGenerator paddingType 'zero': no pad layers, padding inside the convolutions", async (t) => {
  const g = new ResnetGenerator(3, 3, { ngf: 4, blocks: 1, paddingType: 'zero', seed: 1 });
  const names = g.namedParameters().map(([n]) => n);
  t.ok(names.includes('model.10.conv_block.0.weight') && names.includes('model.10.conv_block.3.weight'));
  t.equal((g.namedModules().find(([n]) => n === 'model.10.conv_block.0')![1] as Conv2d).padding, 1);
  const x = E.randn([1, 3, 16, 16], 1);
  const y = E.tidy(() => g.forward(x));
  t.same(y.shape, [1, 3, 16, 16]);
  [x, y].forEach((m) => m.dispose());
  g.dispose();
});
