import t from 'tap';
import * as E from '../src/engine/index.js';
import { bceWithLogits, l1Loss, mseLoss, softDice, softmaxCrossEntropy } from '../src/engine/ops/loss.js';
import { Rng } from '../src/engine/random.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

const eng = await gpu();

const numelOf = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Runs a loss with grad: returns the value, the gradient of `upstream * loss` w.r.t. input 0. */
async function lossAndGrad(
  fn: (x: E.Tensor) => E.Tensor,
  data: Float32Array,
  shape: number[],
  upstream = 1,
): Promise<{ value: number; grad: Float32Array; shape: readonly number[] }> {
  return E.tidy(async () => {
    const x = E.tensor(data, shape);
    x.requiresGrad = true;
    const y = fn(x);
    const value = await y.item();
    E.backward(y, E.tensor([upstream], y.shape));
    return { value, grad: await x.grad!.read(), shape: y.shape };
  });
}

// ---------------------------------------------------------------------------------------------
// References (float64, plain loops).

function refPoint(
  kind: 'bce' | 'l1' | 'mse',
  x: ArrayLike<number>,
  tgt: ArrayLike<number> | number,
  shape: number[],
  channels?: number[],
): { loss: number; grad: Float64Array; gradT: Float64Array } {
  const n = x.length;
  const c = shape[1] ?? 1;
  const inner = numelOf(shape.slice(2));
  const sel = (i: number) => !channels || channels.includes(Math.floor(i / inner) % c);
  let count = 0;
  for (let i = 0; i < n; i++) if (sel(i)) count++;
  let sum = 0;
  const grad = new Float64Array(n);
  const gradT = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (!sel(i)) continue;
    const xi = x[i]!;
    const ti = typeof tgt === 'number' ? tgt : tgt[i]!;
    if (kind === 'bce') {
      sum += Math.max(xi, 0) - xi * ti + Math.log1p(Math.exp(-Math.abs(xi)));
      grad[i] = (1 / (1 + Math.exp(-xi)) - ti) / count;
      gradT[i] = -xi / count;
    } else if (kind === 'l1') {
      sum += Math.abs(xi - ti);
      grad[i] = Math.sign(xi - ti) / count;
      gradT[i] = -grad[i]!;
    } else {
      sum += (xi - ti) ** 2;
      grad[i] = (2 * (xi - ti)) / count;
      gradT[i] = -grad[i]!;
    }
  }
  return { loss: sum / count, grad, gradT };
}

/** Class id of a label or -1 when invalid (outside [0, C)). */
const labelId = (v: number, classes: number) => {
  const r = Math.round(v);
  return r >= 0 && r < classes ? r : -1;
};

function refCrossEntropy(
  x: ArrayLike<number>,
  labels: ArrayLike<number>,
  shape: number[],
  weights?: number[],
  normalize: 'pixels' | 'weights' = 'pixels',
): { loss: number; grad: Float64Array } {
  const [n, c] = [shape[0]!, shape[1]!];
  const hw = numelOf(shape.slice(2));
  let sum = 0;
  let den = 0;
  const grad = new Float64Array(x.length);
  const coefs: [number, number[], number, number][] = [];
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < hw; s++) {
      const y = labelId(labels[b * hw + s]!, c);
      if (y < 0) continue;
      const idx = [...Array(c).keys()].map((k) => b * c * hw + k * hw + s);
      const m = Math.max(...idx.map((i) => x[i]!));
      const se = idx.reduce((a, i) => a + Math.exp(x[i]! - m), 0);
      const w = weights ? weights[y]! : 1;
      sum += w * (m + Math.log(se) - x[idx[y]!]!);
      den += normalize === 'weights' ? w : 1;
      coefs.push([w, idx, m + Math.log(se), y]);
    }
  }
  for (const [w, idx, lse, y] of coefs) {
    idx.forEach((i, k) => (grad[i] = (w * (Math.exp(x[i]! - lse) - (k === y ? 1 : 0))) / den));
  }
  return { loss: sum / den, grad };
}

function refDice(x: ArrayLike<number>, labels: ArrayLike<number>, shape: number[], eps: number, c0: number): number {
  const [n, c] = [shape[0]!, shape[1]!];
  const hw = numelOf(shape.slice(2));
  const I = new Float64Array(c);
  const P = new Float64Array(c);
  const Y = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < hw; s++) {
      const y = labelId(labels[b * hw + s]!, c);
      if (y < 0) continue;
      const idx = [...Array(c).keys()].map((k) => b * c * hw + k * hw + s);
      const m = Math.max(...idx.map((i) => x[i]!));
      const e = idx.map((i) => Math.exp(x[i]! - m));
      const se = e.reduce((a, v) => a + v, 0);
      for (let k = 0; k < c; k++) {
        const p = e[k]! / se;
        P[k]! += p;
        if (k === y) {
          I[k]! += p;
          Y[k]! += 1;
        }
      }
    }
  }
  let acc = 0;
  for (let k = c0; k < c; k++) acc += (2 * I[k]! + eps) / (P[k]! + Y[k]! + eps);
  return 1 - acc / (c - c0);
}

/** Gradient of a float64 function by central differences (for references without a closed form). */
function numericGrad(f: (x: Float64Array) => number, x0: ArrayLike<number>, h = 1e-5): Float64Array {
  const x = Float64Array.from(x0);
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    x[i] = v + h;
    const plus = f(x);
    x[i] = v - h;
    const minus = f(x);
    x[i] = v;
    g[i] = (plus - minus) / (2 * h);
  }
  return g;
}

function randomLabels(n: number, classes: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.nextU32() % classes);
}

// ---------------------------------------------------------------------------------------------
// Per-element losses.

const pointShapes = [[1], [3, 7], [3, 1, 5, 7], [2, 3, 17, 9], [3, 7, 33, 41]];

for (const shape of pointShapes) {
  const n = numelOf(shape);
  const x = randomArray(n, 5, -4, 4);
  const soft = randomArray(n, 6, 0, 1);
  const y = randomArray(n, 7, -2, 2);
  const cases: [string, 'bce' | 'l1' | 'mse', (p: E.Tensor) => E.Tensor, ArrayLike<number> | number][] = [
    ['bceWithLogits tensor target', 'bce', (p) => bceWithLogits(p, E.tensor(soft, shape)), soft],
    ['bceWithLogits target 1', 'bce', (p) => bceWithLogits(p, 1), 1],
    ['bceWithLogits target 0', 'bce', (p) => bceWithLogits(p, 0), 0],
    ['l1Loss', 'l1', (p) => l1Loss(p, E.tensor(y, shape)), y],
    ['mseLoss', 'mse', (p) => mseLoss(p, E.tensor(y, shape)), y],
  ];
  for (const [name, kind, fn, target] of cases) {
    t.test(`${name} ${JSON.stringify(shape)}`, async (t) => {
      const ref = refPoint(kind, x, target, shape);
      const r = await lossAndGrad(fn, x, shape, 1.5);
      t.same(r.shape, [], 'scalar output');
      const cv = closeness([r.value], [ref.loss], 1e-5, 1e-7);
      t.ok(cv.ok, `value: ${cv.msg}`);
      const cg = closeness(r.grad, Array.from(ref.grad, (v) => 1.5 * v), 1e-5, 1e-9);
      t.ok(cg.ok, `grad: ${cg.msg}`);
    });
  }
}

t.test('bceWithLogits with extreme logits is finite and exact', async (t) => {
  const x = Float32Array.from([-50, 50, -30, 30, -17, 17, 0, -1e-3, 1e-3, -88, 88, -50, 50, -20, 20]);
  const tgt = Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0.3, 0.7]);
  const shape = [3, 5];
  for (const [name, target] of [['tensor', tgt], ['1', 1], ['0', 0]] as const) {
    const ref = refPoint('bce', x, target, shape);
    const r = await lossAndGrad((p) => bceWithLogits(p, typeof target === 'number' ? target : E.tensor(target, shape)), x, shape);
    t.ok(Number.isFinite(r.value), `target ${name}: finite loss ${r.value}`);
    t.ok(r.grad.every(Number.isFinite), `target ${name}: finite gradient`);
    const cv = closeness([r.value], [ref.loss], 1e-5, 1e-7);
    t.ok(cv.ok, `target ${name} value: ${cv.msg}`);
    const cg = closeness(r.grad, ref.grad, 1e-5, 1e-9);
    t.ok(cg.ok, `target ${name} grad: ${cg.msg}`);
  }
  // Well-classified logits: the loss is tiny but must keep its relative precision (log1p).
  const confident = Float32Array.from([20, 25, 30, 18, 16.5]);
  const r = await lossAndGrad((p) => bceWithLogits(p, 1), confident, [5]);
  const ref = refPoint('bce', confident, 1, [5]);
  const c = closeness([r.value], [ref.loss], 1e-4, 0);
  t.ok(c.ok, `tiny loss ${r.value} vs ${ref.loss}: ${c.msg}`);
});

for (const [shape, channels] of [
  [[3, 4, 5, 7], [0, 2]],
  [[1, 7, 3, 3], [6]],
  [[2, 3, 11], [1, 2, 1]],
  [[3, 37, 2, 3], [0, 31, 32, 36]],
] as [number[], number[]][]) {
  for (const kind of ['l1', 'mse'] as const) {
    t.test(`${kind}Loss channels ${JSON.stringify(channels)} of ${JSON.stringify(shape)}`, async (t) => {
      const n = numelOf(shape);
      const x = randomArray(n, 21, -2, 2);
      const y = randomArray(n, 22, -2, 2);
      const op = kind === 'l1' ? l1Loss : mseLoss;
      const ref = refPoint(kind, x, y, shape, channels);
      const r = await lossAndGrad((p) => op(p, E.tensor(y, shape), { channels }), x, shape, 0.75);
      const cv = closeness([r.value], [ref.loss], 1e-5, 1e-7);
      t.ok(cv.ok, `value: ${cv.msg}`);
      const cg = closeness(r.grad, Array.from(ref.grad, (v) => 0.75 * v), 1e-5, 1e-9);
      t.ok(cg.ok, `grad: ${cg.msg}`);
      // Elements outside the selected channels get exactly zero gradient.
      const inner = numelOf(shape.slice(2));
      const outside = [...r.grad].filter((_, i) => !channels.includes(Math.floor(i / inner) % shape[1]!));
      t.ok(outside.every((v) => v === 0), 'zero gradient outside the channels');
    });
  }
}

t.test('target gradients of l1, mse and bce', async (t) => {
  const shape = [2, 3, 5];
  const n = numelOf(shape);
  const x = randomArray(n, 31, -2, 2);
  const y = randomArray(n, 32, 0, 1);
  for (const [kind, op] of [
    ['l1', l1Loss],
    ['mse', mseLoss],
    ['bce', bceWithLogits],
  ] as const) {
    const g = await E.tidy(async () => {
      const p = E.tensor(x, shape);
      const tg = E.tensor(y, shape);
      tg.requiresGrad = true;
      E.backward(op(p, tg));
      t.equal(p.grad, null, `${kind}: no gradient for a prediction that does not require it`);
      return tg.grad!.read();
    });
    const ref = refPoint(kind, x, y, shape);
    const c = closeness(g, ref.gradT, 1e-5, 1e-9);
    t.ok(c.ok, `${kind} target grad: ${c.msg}`);
  }
});

t.test('a weight multiplies the loss and both gradients, in the loss kernels (no extra launch)', async (t) => {
  const shape = [2, 3, 5];
  const n = numelOf(shape);
  const x = randomArray(n, 41, -2, 2);
  const y = randomArray(n, 42, 0, 1);
  const eng = E.engine();
  for (const [kind, op] of [
    ['l1', l1Loss],
    ['mse', mseLoss],
    ['bce', bceWithLogits],
  ] as const) {
    const ref = refPoint(kind, x, y, shape);
    for (const weight of [100, -0.5, 0]) {
      await E.tidy(async () => {
        const p = E.parameter(E.tensor(x, shape));
        const tg = E.tensor(y, shape);
        tg.requiresGrad = true;
        const d0 = eng.recorder.dispatches;
        const loss = op(p, tg, { weight });
        E.backward(loss);
        // point_partial + finish forward, seed fill, one gradient per input.
        t.equal(eng.recorder.dispatches - d0, 5, `${kind} x ${weight}: 5 launches, as unweighted`);
        const v = await loss.item();
        t.ok(Math.abs(v - weight * ref.loss) <= 1e-5 * Math.max(1, Math.abs(weight * ref.loss)), `${kind} x ${weight}: loss ${v} vs ${weight * ref.loss}`);
        const cp = closeness(await p.grad!.read(), ref.grad.map((g) => weight * g), 1e-4, 1e-9);
        t.ok(cp.ok, `${kind} x ${weight}: prediction gradient: ${cp.msg}`);
        const ct = closeness(await tg.grad!.read(), ref.gradT.map((g) => weight * g), 1e-4, 1e-9);
        t.ok(ct.ok, `${kind} x ${weight}: target gradient: ${ct.msg}`);
      });
    }
  }
  t.throws(() => l1Loss(E.zeros([2]), E.zeros([2]), { weight: NaN }), /l1Loss: weight must be a finite number, got NaN/);
});

t.test('per-element losses reject bad shapes and channels', async (t) => {
  t.throws(() => l1Loss(E.zeros([3, 4]), E.zeros([4, 3])), /l1Loss: shapes \[3, 4\] and \[4, 3\]/);
  t.throws(() => mseLoss(E.zeros([2, 3, 4]), E.zeros([2, 3, 4]), { channels: [3] }), /channel 3 out of range.*\[2, 3, 4\]/);
  t.throws(() => l1Loss(E.zeros([6]), E.zeros([6]), { channels: [0] }), /channel dim/);
  t.throws(() => l1Loss(E.zeros([2, 3]), E.zeros([2, 3]), { channels: [] }), /empty channel selection/);
  t.throws(() => bceWithLogits(E.zeros([2, 3]), E.zeros([3, 2])), /bceWithLogits/);
});

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy.

const segCases: { shape: number[]; labels?: 'plain' | 'channel' }[] = [
  { shape: [1, 1, 1, 1] },
  { shape: [3, 7, 5, 3] },
  { shape: [1, 3, 17, 9], labels: 'channel' },
  { shape: [2, 5, 33, 31] },
  { shape: [2, 3, 70, 65] },
  { shape: [7, 3] },
];

for (const { shape, labels } of segCases) {
  const n = numelOf(shape);
  const c = shape[1]!;
  const pixels = n / c;
  const labelShape = labels === 'channel' ? [shape[0]!, 1, ...shape.slice(2)] : [shape[0]!, ...shape.slice(2)];
  const x = randomArray(n, 41, -3, 3);
  const lab = randomLabels(pixels, c, 42);
  const weights = Array.from({ length: c }, (_, k) => 0.5 + 0.25 * k);
  for (const [name, opts] of [
    ['plain', {}],
    ['weights / pixels', { weights }],
    ['weights / weights', { weights, normalize: 'weights' as const }],
  ] as const) {
    t.test(`softmaxCrossEntropy ${name} ${JSON.stringify(shape)}`, async (t) => {
      const ref = refCrossEntropy(x, lab, shape, 'weights' in opts ? [...opts.weights] : undefined, 'normalize' in opts ? opts.normalize : 'pixels');
      const r = await lossAndGrad((p) => softmaxCrossEntropy(p, E.tensor(lab, labelShape), opts), x, shape, 2);
      t.same(r.shape, []);
      const cv = closeness([r.value], [ref.loss], 1e-5, 1e-7);
      t.ok(cv.ok, `value: ${cv.msg}`);
      const cg = closeness(r.grad, Array.from(ref.grad, (v) => 2 * v), 1e-4, 1e-9);
      t.ok(cg.ok, `grad: ${cg.msg}`);
    });
  }
}

t.test('softmaxCrossEntropy: extreme logits, ignored labels', async (t) => {
  const shape = [2, 3, 2, 3];
  const x = Float32Array.from({ length: 36 }, (_, i) => [50, -50, 0, 30, -30, 88][i % 6]! * (i % 5 === 0 ? -1 : 1));
  const lab = Float32Array.from([0, 1, 2, -1, 255, 2, 1, 1, 0, 2, 3, 0.0]);
  const ref = refCrossEntropy(x, lab, shape);
  const r = await lossAndGrad((p) => softmaxCrossEntropy(p, E.tensor(lab, [2, 2, 3])), x, shape);
  t.ok(Number.isFinite(r.value) && r.grad.every(Number.isFinite), 'finite');
  const cv = closeness([r.value], [ref.loss], 1e-5, 1e-6);
  t.ok(cv.ok, `value: ${cv.msg}`);
  const cg = closeness(r.grad, ref.grad, 1e-5, 1e-9);
  t.ok(cg.ok, `grad: ${cg.msg}`);
  // Confident, correct logits: the tiny loss keeps its relative precision.
  const sure = Float32Array.from([25, -3, 0, 24, 8, 1, 5, 7]);
  const sureLab = Float32Array.from([0, 1]);
  const tiny = await softmaxCrossEntropy(E.tensor(sure, [1, 4, 2]), E.tensor(sureLab, [1, 2])).item();
  const tinyRef = refCrossEntropy(sure, sureLab, [1, 4, 2]).loss;
  t.ok(closeness([tiny], [tinyRef], 1e-4, 0).ok, `tiny loss ${tiny} vs ${tinyRef}`);
  // Pixels 3, 4 (batch 0) and 10 (batch 1) are ignored: zero gradient in every class.
  for (const [b, s] of [[0, 3], [0, 4], [1, 4]]) {
    t.same([0, 1, 2].map((k) => r.grad[b! * 18 + k * 6 + s!]), [0, 0, 0], `pixel ${b},${s} ignored`);
  }
});

t.test('softmaxCrossEntropy rejects mismatched labels and weights', async (t) => {
  t.throws(() => softmaxCrossEntropy(E.zeros([2, 3, 4, 5]), E.zeros([2, 5, 4])), /labels \[2, 5, 4\] do not match logits \[2, 3, 4, 5\]/);
  t.throws(() => softmaxCrossEntropy(E.zeros([2, 3, 4, 5]), E.zeros([2, 4, 5]), { weights: [1, 2] }), /2 class weights for 3 classes/);
  t.throws(() => softDice(E.zeros([2, 1, 4, 5]), E.zeros([2, 4, 5]), { ignoreBackground: true }), /at least 2 classes/);
});

// ---------------------------------------------------------------------------------------------
// Soft Dice.

for (const { shape, eps, ignoreBackground } of [
  { shape: [1, 2, 3, 5], eps: 1e-5, ignoreBackground: false },
  { shape: [3, 4, 5, 3], eps: 1, ignoreBackground: true },
  { shape: [2, 3, 7, 9], eps: 1e-3, ignoreBackground: false },
  { shape: [2, 5, 40, 37], eps: 1e-5, ignoreBackground: true },
]) {
  t.test(`softDice ${JSON.stringify(shape)} eps ${eps} ignoreBackground ${ignoreBackground}`, async (t) => {
    const n = numelOf(shape);
    const c = shape[1]!;
    const x = randomArray(n, 51, -3, 3);
    // A class that never occurs (c - 1) exercises the eps-only numerator.
    const lab = randomLabels(n / c, c - 1, 52);
    const labelShape = [shape[0]!, ...shape.slice(2)];
    const c0 = ignoreBackground ? 1 : 0;
    const r = await lossAndGrad((p) => softDice(p, E.tensor(lab, labelShape), { eps, ignoreBackground }), x, shape, 1.25);
    const ref = refDice(x, lab, shape, eps, c0);
    const cv = closeness([r.value], [ref], 1e-5, 1e-6);
    t.ok(cv.ok, `value: ${cv.msg}`);
    if (n <= 2000) {
      const g = numericGrad((v) => 1.25 * refDice(v, lab, shape, eps, c0), x);
      const cg = closeness(r.grad, g, 1e-3, 1e-7);
      t.ok(cg.ok, `grad vs float64 finite differences: ${cg.msg}`);
    } else {
      t.ok(r.grad.every(Number.isFinite), 'finite gradient');
    }
  });
}

t.test('softDice: perfect prediction gives ~0, invalid labels are left out', async (t) => {
  const shape = [1, 3, 2, 2];
  const lab = Float32Array.from([0, 2, 1, 7]);
  const x = new Float32Array(12);
  lab.forEach((y, s) => {
    for (let k = 0; k < 3; k++) x[k * 4 + s] = k === y ? 40 : -40;
  });
  const v = await softDice(E.tensor(x, shape), E.tensor(lab, [1, 2, 2])).item();
  t.ok(Math.abs(v) < 1e-5, `loss ${v}`);
  t.ok(Math.abs(v - refDice(x, lab, shape, 1e-5, 0)) < 1e-6);
});

t.test('losses release every intermediate buffer', async (t) => {
  const shape = [2, 3, 5, 7];
  const n = numelOf(shape);
  const x = randomArray(n, 61);
  const lab = randomLabels(n / 3, 3, 62);
  const run = () =>
    E.tidy(() => {
      const p = E.tensor(x, shape);
      p.requiresGrad = true;
      const y = E.tensor(x, shape);
      const l = E.tensor(lab, [2, 5, 7]);
      const losses = [
        bceWithLogits(p, 1),
        bceWithLogits(p, y),
        l1Loss(p, y, { channels: [1] }),
        mseLoss(p, y),
        softmaxCrossEntropy(p, l, { weights: [1, 2, 3] }),
        softDice(p, l),
      ];
      for (const loss of losses) E.backward(loss);
      // Forward only (no graph) too.
      E.noGrad(() => [softDice(p, l), softmaxCrossEntropy(p, l), l1Loss(p, y)]);
    });
  run();
  await eng.sync();
  const before = eng.pool.stats.bytesInUse;
  run();
  await eng.sync();
  t.equal(eng.pool.stats.bytesInUse, before, 'no buffer leaked');
});
