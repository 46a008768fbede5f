import t from 'tap';
import * as E from '../src/engine/index.js';
import { batchNorm2d, instanceNorm2d, NORM_CHUNK, NORM_MAX_UNSPLIT, normTuning } from '../src/engine/ops/norm.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';
import { expectNoLeak, f64, gpuGrads, numericGrad, prod } from './helpers/nn.js';

const eng = await gpu();

// Planes of 129 x 131 = 16899 elements are reduced in 3 chunks (8192, 8192, 515) by 3 workgroups.
const SPLIT: [number, number] = [129, 131];
t.ok(SPLIT[0] * SPLIT[1] > NORM_MAX_UNSPLIT && SPLIT[0] * SPLIT[1] > 2 * NORM_CHUNK, 'split-plane shapes exercise chunking');

type Shape4 = [number, number, number, number];

/** Reference normalization in float64: per channel (batch) or per (n, c) plane (instance). */
function normRef(
  x: ArrayLike<number>,
  [N, C, H, W]: Shape4,
  perInstance: boolean,
  w: ArrayLike<number> | null,
  b: ArrayLike<number> | null,
  eps: number,
  fixed?: { mean: ArrayLike<number>; variance: ArrayLike<number> },
): { y: Float64Array; mean: Float64Array; varBiased: Float64Array } {
  const HW = H * W;
  const G = perInstance ? N * C : C;
  const mean = new Float64Array(G);
  const varBiased = new Float64Array(G);
  const members = (g: number): number[] => {
    const idx: number[] = [];
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        if ((perInstance ? n * C + c : c) !== g) continue;
        for (let k = 0; k < HW; k++) idx.push((n * C + c) * HW + k);
      }
    }
    return idx;
  };
  for (let g = 0; g < G; g++) {
    if (fixed) {
      mean[g] = fixed.mean[g]!;
      varBiased[g] = fixed.variance[g]!;
      continue;
    }
    const idx = members(g);
    let s = 0;
    for (const i of idx) s += x[i]!;
    const m = s / idx.length;
    let v = 0;
    for (const i of idx) v += (x[i]! - m) ** 2;
    mean[g] = m;
    varBiased[g] = v / idx.length;
  }
  const y = new Float64Array(N * C * HW);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = perInstance ? n * C + c : c;
      for (let k = 0; k < HW; k++) {
        const i = (n * C + c) * HW + k;
        y[i] = ((x[i]! - mean[g]!) / Math.sqrt(varBiased[g]! + eps)) * (w ? w[c]! : 1) + (b ? b[c]! : 0);
      }
    }
  }
  return { y, mean, varBiased };
}

const bnShapes: Shape4[] = [
  [1, 1, 5, 7],
  [3, 3, 4, 6],
  [3, 7, 5, 3],
  [1, 3, 1, 2],
  [2, 3, ...SPLIT],
];

for (const shape of bnShapes) {
  const [N, C, H, W] = shape;
  const n = prod(shape);
  t.test(`batchNorm2d training ${JSON.stringify(shape)}: output and running stats`, async (t) => {
    const x = randomArray(n, 1, -2, 3);
    const w = randomArray(C, 2, 0.5, 1.5);
    const b = randomArray(C, 3);
    const rm0 = randomArray(C, 4);
    const rv0 = randomArray(C, 5, 0.5, 2);
    const rm = E.tensor(rm0, [C]);
    const rv = E.tensor(rv0, [C]);
    const momentum = 0.3;
    const y = batchNorm2d(E.tensor(x, shape), E.tensor(w, [C]), E.tensor(b, [C]), rm, rv, { training: true, momentum });
    t.same(y.shape, shape);
    const ref = normRef(x, shape, false, w, b, 1e-5);
    const c = closeness(await y.read(), ref.y, 1e-4, 1e-4);
    t.ok(c.ok, `y: ${c.msg}`);
    const M = N * H * W;
    const expMean = Array.from(rm0, (v, k) => (1 - momentum) * v + momentum * ref.mean[k]!);
    const expVar = Array.from(rv0, (v, k) => (1 - momentum) * v + momentum * ref.varBiased[k]! * (M / (M - 1)));
    const cm = closeness(await rm.read(), expMean, 1e-4, 1e-5);
    t.ok(cm.ok, `running mean: ${cm.msg}`);
    const cv = closeness(await rv.read(), expVar, 1e-4, 1e-5);
    t.ok(cv.ok, `running var (unbiased): ${cv.msg}`);
  });
}

t.test('batchNorm2d training: default momentum 0.1, no affine, no running stats', async (t) => {
  const shape: Shape4 = [3, 7, 5, 3];
  const x = randomArray(prod(shape), 6, -1, 4);
  const rm = E.zeros([7]);
  const rv = E.ones([7]);
  const y1 = batchNorm2d(E.tensor(x, shape), null, null, rm, rv, { training: true });
  const ref = normRef(x, shape, false, null, null, 1e-5);
  const c = closeness(await y1.read(), ref.y, 1e-4, 1e-4);
  t.ok(c.ok, c.msg);
  const M = 3 * 5 * 3;
  const cm = closeness(await rm.read(), Array.from(ref.mean, (m) => 0.1 * m), 1e-4, 1e-6);
  t.ok(cm.ok, `running mean: ${cm.msg}`);
  const cv = closeness(await rv.read(), Array.from(ref.varBiased, (v) => 0.9 + 0.1 * v * (M / (M - 1))), 1e-4, 1e-6);
  t.ok(cv.ok, `running var: ${cv.msg}`);
  const y2 = batchNorm2d(E.tensor(x, shape), null, null, null, null, { training: true, eps: 1e-3 });
  const c2 = closeness(await y2.read(), normRef(x, shape, false, null, null, 1e-3).y, 1e-4, 1e-4);
  t.ok(c2.ok, `without running stats, eps 1e-3: ${c2.msg}`);
});

t.test('batchNorm2d training: weight only, then bias only', async (t) => {
  const shape: Shape4 = [3, 3, 4, 5];
  const x = randomArray(prod(shape), 16);
  const w = randomArray(3, 17, 0.5, 2);
  const b = randomArray(3, 18);
  const yw = await batchNorm2d(E.tensor(x, shape), E.tensor(w, [3]), null, null, null, { training: true }).read();
  const cw = closeness(yw, normRef(x, shape, false, w, null, 1e-5).y, 1e-4, 1e-4);
  t.ok(cw.ok, `weight only: ${cw.msg}`);
  const yb = await batchNorm2d(E.tensor(x, shape), null, E.tensor(b, [3]), null, null, { training: true }).read();
  const cb = closeness(yb, normRef(x, shape, false, null, b, 1e-5).y, 1e-4, 1e-4);
  t.ok(cb.ok, `bias only: ${cb.msg}`);
});

t.test('batchNorm2d variance is stable for a large mean (no E[x^2] - E[x]^2 cancellation)', async (t) => {
  for (const shape of [[3, 2, 7, 9], [1, 2, ...SPLIT]] as Shape4[]) {
    const x = Float32Array.from(randomArray(prod(shape), 7, -0.05, 0.05), (v) => 1000 + v);
    const rv = E.ones([2]);
    const y = batchNorm2d(E.tensor(x, shape), null, null, E.zeros([2]), rv, { training: true, momentum: 1 });
    const ref = normRef(x, shape, false, null, null, 1e-5);
    // The f32 mean itself is quantized to ulp(1000) = 6e-5, i.e. 2e-3 of the std: the floor here.
    const c = closeness(await y.read(), ref.y, 2e-3, 2e-3);
    t.ok(c.ok, `${JSON.stringify(shape)} y: ${c.msg}`);
    const M = shape[0] * shape[2] * shape[3];
    const cv = closeness(await rv.read(), Array.from(ref.varBiased, (v) => (v * M) / (M - 1)), 2e-3, 1e-9);
    t.ok(cv.ok, `${JSON.stringify(shape)} variance: ${cv.msg}`);
  }
});

t.test('batchNorm2d eval uses running stats and leaves them unchanged', async (t) => {
  for (const shape of [[1, 3, 5, 7], [3, 7, 4, 3]] as Shape4[]) {
    const C = shape[1];
    const x = randomArray(prod(shape), 8, -2, 2);
    const w = randomArray(C, 9, 0.5, 1.5);
    const b = randomArray(C, 10);
    const rm0 = randomArray(C, 11);
    const rv0 = randomArray(C, 12, 0.2, 3);
    const rm = E.tensor(rm0, [C]);
    const rv = E.tensor(rv0, [C]);
    const y = batchNorm2d(E.tensor(x, shape), E.tensor(w, [C]), E.tensor(b, [C]), rm, rv, { training: false, eps: 1e-3 });
    const ref = normRef(x, shape, false, w, b, 1e-3, { mean: rm0, variance: rv0 });
    const c = closeness(await y.read(), ref.y, 1e-5, 1e-5);
    t.ok(c.ok, `${JSON.stringify(shape)}: ${c.msg}`);
    t.same(Array.from(await rm.read()), Array.from(rm0), 'running mean unchanged');
    t.same(Array.from(await rv.read()), Array.from(rv0), 'running var unchanged');
    const y2 = batchNorm2d(E.tensor(x, shape), null, null, rm, rv, { training: false });
    const c2 = closeness(await y2.read(), normRef(x, shape, false, null, null, 1e-5, { mean: rm0, variance: rv0 }).y, 1e-5, 1e-5);
    t.ok(c2.ok, `no affine: ${c2.msg}`);
  }
});

for (const shape of [[1, 1, 5, 7], [3, 3, 4, 6], [3, 7, 3, 5], [1, 2, ...SPLIT]] as Shape4[]) {
  t.test(`instanceNorm2d ${JSON.stringify(shape)}`, async (t) => {
    const C = shape[1];
    const x = randomArray(prod(shape), 13, -1, 3);
    const w = randomArray(C, 14, 0.5, 1.5);
    const b = randomArray(C, 15);
    const y = instanceNorm2d(E.tensor(x, shape), E.tensor(w, [C]), E.tensor(b, [C]));
    const c = closeness(await y.read(), normRef(x, shape, true, w, b, 1e-5).y, 1e-4, 1e-4);
    t.ok(c.ok, `affine: ${c.msg}`);
    const y2 = instanceNorm2d(E.tensor(x, shape), null, null, { eps: 1e-2 });
    const c2 = closeness(await y2.read(), normRef(x, shape, true, null, null, 1e-2).y, 1e-4, 1e-4);
    t.ok(c2.ok, `no affine, eps 1e-2: ${c2.msg}`);
  });
}

// Backward: gradients against central differences of the float64 reference.
interface GradSetup {
  name: string;
  shape: Shape4;
  perInstance: boolean;
  affine: boolean;
  eval?: boolean;
}
const gradSetups: GradSetup[] = [
  { name: 'batchNorm2d training', shape: [3, 3, 4, 5], perInstance: false, affine: true },
  { name: 'batchNorm2d training', shape: [1, 7, 3, 5], perInstance: false, affine: true },
  { name: 'batchNorm2d training, no affine', shape: [3, 1, 2, 3], perInstance: false, affine: false },
  { name: 'batchNorm2d training, split planes', shape: [1, 2, ...SPLIT], perInstance: false, affine: true },
  { name: 'batchNorm2d eval', shape: [3, 3, 4, 5], perInstance: false, affine: true, eval: true },
  { name: 'instanceNorm2d', shape: [3, 7, 3, 4], perInstance: true, affine: true },
  { name: 'instanceNorm2d, no affine', shape: [1, 3, 5, 7], perInstance: true, affine: false },
  { name: 'instanceNorm2d, split planes', shape: [2, 1, ...SPLIT], perInstance: true, affine: true },
];

/** Textbook normalization backward in float64 (for the large shapes, where differences are slow). */
function normBackwardRef(
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  [N, C, H, W]: Shape4,
  perInstance: boolean,
  w: ArrayLike<number> | null,
  training: boolean,
  eps: number,
  fixed?: { mean: ArrayLike<number>; variance: ArrayLike<number> },
): Float64Array[] {
  const HW = H * W;
  const { mean, varBiased } = normRef(x, [N, C, H, W], perInstance, null, null, eps, fixed);
  const G = mean.length;
  const M = perInstance ? HW : N * HW;
  const sdy = new Float64Array(G);
  const sdyx = new Float64Array(G);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  const xhat = (i: number, g: number) => (x[i]! - mean[g]!) / Math.sqrt(varBiased[g]! + eps);
  const each = (f: (i: number, g: number, c: number) => void) => {
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++)
        for (let k = 0; k < HW; k++) f((n * C + c) * HW + k, perInstance ? n * C + c : c, c);
  };
  each((i, g, c) => {
    sdy[g]! += dy[i]!;
    sdyx[g]! += dy[i]! * xhat(i, g);
    db[c]! += dy[i]!;
    dw[c]! += dy[i]! * xhat(i, g);
  });
  const dx = new Float64Array(N * C * HW);
  each((i, g, c) => {
    const k = (w ? w[c]! : 1) / Math.sqrt(varBiased[g]! + eps);
    dx[i] = training ? k * (dy[i]! - sdy[g]! / M - (xhat(i, g) * sdyx[g]!) / M) : k * dy[i]!;
  });
  return [dx, dw, db];
}

for (const s of gradSetups) {
  t.test(`${s.name} backward ${JSON.stringify(s.shape)}`, async (t) => {
    const C = s.shape[1];
    const n = prod(s.shape);
    const x = randomArray(n, 21, -1, 2);
    const w = randomArray(C, 22, 0.5, 1.5);
    const b = randomArray(C, 23);
    const rm = randomArray(C, 24);
    const rv = randomArray(C, 25, 0.5, 2);
    const r = randomArray(n, 26);
    const fixed = s.eval ? { mean: rm, variance: rv } : undefined;
    const ref = (ins: Float64Array[]) =>
      normRef(ins[0]!, s.shape, s.perInstance, s.affine ? ins[1]! : null, s.affine ? ins[2]! : null, 1e-5, fixed).y;
    const fn = (xt: E.Tensor, wt?: E.Tensor, bt?: E.Tensor) =>
      s.perInstance
        ? instanceNorm2d(xt, wt ?? null, bt ?? null)
        : batchNorm2d(xt, wt ?? null, bt ?? null, E.tensor(rm, [C]), E.tensor(rv, [C]), { training: !s.eval });
    const values = s.affine ? [x, w, b] : [x];
    const shapes = s.affine ? [s.shape, [C], [C]] : [s.shape];
    const { g } = await gpuGrads(fn, values, shapes, r);
    const ins = values.map(f64);
    const names = ['dx', 'dweight', 'dbias'];
    // Small shapes: central differences of the forward reference; large ones: the textbook formula.
    const formula = n > 2000 ? normBackwardRef(x, r, s.shape, s.perInstance, s.affine ? w : null, !s.eval, 1e-5, fixed) : null;
    for (let k = 0; k < values.length; k++) {
      const expected = formula ? formula[k]! : numericGrad(ref, ins, r, k);
      const c = closeness(g[k]!, expected, 2e-3, 2e-4);
      t.ok(c.ok, `${names[k]}: ${c.msg}`);
    }
  });
}

t.test('the backward formula reference agrees with differences of the forward reference', async (t) => {
  for (const s of gradSetups.filter((q) => prod(q.shape) < 2000)) {
    const C = s.shape[1];
    const n = prod(s.shape);
    const x = f64(randomArray(n, 51, -1, 2));
    const w = f64(randomArray(C, 52, 0.5, 1.5));
    const r = f64(randomArray(n, 53));
    const fixed = s.eval ? { mean: randomArray(C, 54), variance: randomArray(C, 55, 0.5, 2) } : undefined;
    const ins = [x, w, new Float64Array(C)];
    const ref = (v: Float64Array[]) => normRef(v[0]!, s.shape, s.perInstance, v[1]!, v[2]!, 1e-5, fixed).y;
    const formula = normBackwardRef(x, r, s.shape, s.perInstance, w, !s.eval, 1e-5, fixed);
    for (let k = 0; k < 3; k++) {
      const c = closeness(formula[k]!, numericGrad(ref, ins, r, k), 1e-6, 1e-7);
      t.ok(c.ok, `${s.name} ${JSON.stringify(s.shape)} input ${k}: ${c.msg}`);
    }
  }
});

t.test('batchNorm2d backward with only weight and bias requiring grad', async (t) => {
  const shape: Shape4 = [3, 3, 4, 5];
  const n = prod(shape);
  const x = randomArray(n, 31);
  const w = randomArray(3, 32, 0.5, 1.5);
  const b = randomArray(3, 33);
  const r = randomArray(n, 34);
  const { g } = await gpuGrads(
    (xt, wt, bt) => batchNorm2d(xt, wt!, bt!, null, null, { training: true }),
    [x, w, b],
    [shape, [3], [3]],
    r,
    [false, true, true],
  );
  t.equal(g[0], null);
  const ins = [x, w, b].map(f64);
  const ref = (v: Float64Array[]) => normRef(v[0]!, shape, false, v[1]!, v[2]!, 1e-5).y;
  t.ok(closeness(g[1]!, numericGrad(ref, ins, r, 1), 2e-3, 2e-4).ok, 'dweight');
  t.ok(closeness(g[2]!, numericGrad(ref, ins, r, 2), 2e-3, 2e-4).ok, 'dbias');
});

t.test('shape errors name the op and the shapes', async (t) => {
  const x = E.zeros([2, 3, 4, 5]);
  t.throws(() => batchNorm2d(E.zeros([3, 4, 5]), null, null, null, null, { training: true }), /batchNorm2d.*\[3, 4, 5\]/);
  t.throws(() => batchNorm2d(x, E.ones([4]), null, null, null, { training: true }), /batchNorm2d: weight must have shape \[3\].*\[2, 3, 4, 5\].*\[4\]/);
  t.throws(() => batchNorm2d(x, null, null, null, null, { training: false }), /batchNorm2d: eval mode/);
  t.throws(() => batchNorm2d(x, null, null, E.zeros([3]), null, { training: true }), /runningMean and runningVar/);
  t.throws(() => batchNorm2d(E.zeros([1, 3, 1, 1]), null, null, null, null, { training: true }), /more than 1 value per channel/);
  t.throws(() => instanceNorm2d(x, null, E.zeros([2])), /instanceNorm2d: bias must have shape \[3\]/);
  t.throws(() => instanceNorm2d(E.zeros([2, 3, 1, 1]), null, null), /instanceNorm2d: expected more than 1 spatial element/);
});

t.test('forward + backward release every intermediate', async (t) => {
  const shape: Shape4 = [2, 3, ...SPLIT];
  const data = randomArray(prod(shape), 41);
  const run = () =>
    E.tidy(() => {
      const x = E.tensor(data, shape);
      x.requiresGrad = true;
      const w = E.parameter(E.ones([3]));
      const b = E.parameter(E.zeros([3]));
      const rm = E.zeros([3]);
      const rv = E.ones([3]);
      const y1 = batchNorm2d(x, w, b, rm, rv, { training: true });
      const y2 = instanceNorm2d(y1, w, b);
      const y3 = batchNorm2d(y2, w, b, rm, rv, { training: false });
      E.backward(y3, E.full(shape, 1));
      x.dispose();
      w.dispose();
      b.dispose();
    });
  await expectNoLeak(t, run);
});

t.test('fused epilogue gradients agree with the separate ops on the split kernels', async (t) => {
  const fusedMax = normTuning.fusedMax;
  t.teardown(() => {
    normTuning.fusedMax = fusedMax;
    normTuning.subgroupSums = true;
  });
  for (const shape of [[2, 3, 4, 6], [2, 3, 3, 5]] as Shape4[]) {
    const n = prod(shape);
    const C = shape[1];
    const values = [randomArray(n, 41, -2, 3), randomArray(C, 42, 0.5, 1.5), randomArray(C, 43), randomArray(n, 44)];
    const shapes = [shape, [C], [C], shape];
    const up = randomArray(n, 45);
    const bn = (x: E.Tensor, w: E.Tensor, b: E.Tensor) => batchNorm2d(x, w, b, null, null, { training: true });
    const cases: [string, (x: E.Tensor, w: E.Tensor, b: E.Tensor, r: E.Tensor) => E.Tensor, (x: E.Tensor, w: E.Tensor, b: E.Tensor, r: E.Tensor) => E.Tensor][] = [
      ['relu', (x, w, b) => batchNorm2d(x, w, b, null, null, { training: true, activation: 'relu' }), (x, w, b) => E.relu(bn(x, w, b))],
      ['leaky 0.2', (x, w, b) => batchNorm2d(x, w, b, null, null, { training: true, activation: 'leakyRelu', negativeSlope: 0.2 }), (x, w, b) => E.leakyRelu(bn(x, w, b), 0.2)],
      ['residual', (x, w, b, r) => batchNorm2d(x, w, b, null, null, { training: true, residual: r }), (x, w, b, r) => E.add(bn(x, w, b), r)],
      ['instance, leaky 0.2', (x, w, b) => instanceNorm2d(x, w, b, { activation: 'leakyRelu', negativeSlope: 0.2 }), (x, w, b) => E.leakyRelu(instanceNorm2d(x, w, b), 0.2)],
    ];
    // Both sums of the fused kernels: subgroupAdd (norm_subgroup.wgsl, where one subgroup holds the
    // workgroup, as on lavapipe) and workgroup memory (norm.wgsl).
    for (const [what, fused, separate] of cases) for (const subgroupSums of [true, false]) {
      normTuning.subgroupSums = subgroupSums;
      const a = await gpuGrads(fused, values, shapes, up);
      normTuning.subgroupSums = true;
      // The reference: the split (unfused) norm kernels, then the activation / add as their own ops.
      normTuning.fusedMax = 0;
      const b = await gpuGrads(separate, values, shapes, up);
      normTuning.fusedMax = fusedMax;
      const label = `${JSON.stringify(shape)} ${what}${subgroupSums ? '' : ' (workgroup sums)'}`;
      const cy = closeness(a.y, b.y, 1e-5, 1e-5);
      t.ok(cy.ok, `${label} y: ${cy.msg}`);
      ['dx', 'dweight', 'dbias', 'dresidual'].forEach((name, k) => {
        if (what !== 'residual' && k === 3) return;
        const c = closeness(a.g[k]!, b.g[k]!, 1e-4, 1e-5);
        t.ok(c.ok, `${label} ${name}: ${c.msg}`);
      });
    }
  }
});

t.test('norm epilogues: fused and composed paths agree with the separate ops', async (t) => {
  // [2,3,SPLIT] has 33798 elements per channel: above NORM_FUSED_MAX, so the epilogue runs as ops.
  for (const shape of [[2, 3, 4, 5], [2, 3, ...SPLIT]] as Shape4[]) {
    const n = prod(shape);
    const C = shape[1];
    const x = E.tensor(randomArray(n, 31, -2, 3), shape);
    const r = E.tensor(randomArray(n, 32), shape);
    const w = E.tensor(randomArray(C, 33, 0.5, 1.5), [C]);
    const b = E.tensor(randomArray(C, 34), [C]);
    const plain = batchNorm2d(x, w, b, null, null, { training: true });
    const cases: [string, E.Tensor, E.Tensor][] = [
      ['relu', batchNorm2d(x, w, b, null, null, { training: true, activation: 'relu' }), E.relu(plain)],
      ['leaky 0.2', batchNorm2d(x, w, b, null, null, { training: true, activation: 'leakyRelu', negativeSlope: 0.2 }), E.leakyRelu(plain, 0.2)],
      ['residual', batchNorm2d(x, w, b, null, null, { training: true, residual: r }), E.add(plain, r)],
      ['residual + relu', batchNorm2d(x, w, b, null, null, { training: true, residual: r, activation: 'relu' }), E.relu(E.add(plain, r))],
      ['instance, relu', instanceNorm2d(x, w, b, { activation: 'relu' }), E.relu(instanceNorm2d(x, w, b))],
    ];
    for (const [what, fused, separate] of cases) {
      const c = closeness(await fused.read(), await separate.read(), 1e-5, 1e-5);
      t.ok(c.ok, `${JSON.stringify(shape)} ${what}: ${c.msg}`);
    }
  }
  {
    // The small groups take the fused kernel: batch norm + ReLU is one dispatch (split path: 4 + 1).
    const x = E.tensor(randomArray(120, 38), [2, 3, 4, 5]);
    const before = eng.recorder.dispatches;
    const y = batchNorm2d(x, null, null, null, null, { training: true, activation: 'relu' });
    t.equal(eng.recorder.dispatches - before, 1, 'fused: one dispatch for batch norm + ReLU');
    y.dispose();
    x.dispose();
  }
  const rm = E.tensor(randomArray(3, 35), [3]);
  const rv = E.tensor(randomArray(3, 36, 0.5, 2), [3]);
  const x = E.tensor(randomArray(60, 37), [1, 3, 4, 5]);
  const evalFused = batchNorm2d(x, null, null, rm, rv, { training: false, activation: 'relu' });
  const evalSeparate = E.relu(batchNorm2d(x, null, null, rm, rv, { training: false }));
  const c = closeness(await evalFused.read(), await evalSeparate.read(), 1e-6, 1e-6);
  t.ok(c.ok, `eval mode, relu: ${c.msg}`);
  t.throws(() => batchNorm2d(x, null, null, null, null, { training: true, residual: E.zeros([1, 3, 5, 4]) }), /residual/, 'a residual of another shape is refused');
});

t.test('a norm layer used twice in one graph: its backward adds the pending weight and bias gradients', async (t) => {
  const shape: Shape4 = [2, 3, 4, 4];
  const n = prod(shape);
  const xa = randomArray(n, 301, -2, 3), xb = randomArray(n, 302, -1, 2);
  const wd = randomArray(3, 303, 0.5, 1.5), bd = randomArray(3, 304);
  const up = randomArray(n, 305);
  // Reference: each pass's gradients on its own (separate graphs), summed.
  const one = async (xd: Float32Array) => E.tidy(async () => {
    const w = E.parameter(E.tensor(wd, [3])), b = E.parameter(E.tensor(bd, [3]));
    E.backward(batchNorm2d(E.tensor(xd, shape), w, b, null, null, { training: true, activation: 'relu' }), E.tensor(up, shape));
    return [await w.grad!.read(), await b.grad!.read()];
  });
  const [wa, ba] = await one(xa);
  const [wb, bb] = await one(xb);
  const eng = E.engine();
  await E.tidy(async () => {
    const w = E.parameter(E.tensor(wd, [3])), b = E.parameter(E.tensor(bd, [3]));
    const bn = (xd: Float32Array) => batchNorm2d(E.tensor(xd, shape), w, b, null, null, { training: true, activation: 'relu' });
    const y = E.add(bn(xa), bn(xb));
    const seed = E.tensor(up, shape);
    await eng.sync();
    const d0 = eng.recorder.dispatches;
    E.backward(y, seed);
    t.equal(eng.recorder.dispatches - d0, 2, 'two backward launches: no accumulation launch');
    const cw = closeness(await w.grad!.read(), wa!.map((v, i) => v + wb![i]!), 1e-5, 1e-5);
    const cb = closeness(await b.grad!.read(), ba!.map((v, i) => v + bb![i]!), 1e-5, 1e-5);
    t.ok(cw.ok, `dweight: ${cw.msg}`);
    t.ok(cb.ok, `dbias: ${cb.msg}`);
  });
});
