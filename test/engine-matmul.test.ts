import t from 'tap';
import * as E from '../src/engine/index.js';
import { matmul } from '../src/engine/ops/matmul.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

await gpu();

/** C = op(A) op(B) in float64; A stored [M,K] or [K,M] (ta), B stored [K,N] or [N,K] (tb). */
function ref(a: Float32Array, b: Float32Array, m: number, k: number, n: number, ta: boolean, tb: boolean): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a[ta ? q * m + i : i * k + q]! * b[tb ? j * k + q : q * n + j]!;
      c[i * n + j] = s;
    }
  return c;
}

/** Plain transpose of a stored [r, c] matrix. */
function transpose(x: Float32Array, r: number, c: number): Float32Array {
  const y = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) y[j * r + i] = x[i * c + j]!;
  return y;
}

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [3, 7, 5],
  [7, 3, 1],
  [1, 9, 3],
  [8, 4, 4],
  [16, 8, 12],
  [17, 13, 9], // one row past a 16-row tile, K % 4 = 1, N % 4 = 1
  [9, 6, 7],
  [33, 64, 31],
  [40, 35, 260], // several workgroups along N
];

for (const [m, k, n] of shapes) {
  for (const ta of [false, true]) {
    for (const tb of [false, true]) {
      t.test(`matmul [${m},${k}]x[${k},${n}]${ta ? ' A^T' : ''}${tb ? ' B^T' : ''}`, async (t) => {
        const ad = randomArray(m * k, m * 100 + k);
        const bd = randomArray(k * n, n * 100 + k + 1);
        const gd = randomArray(m * n, 7);
        await E.tidy(async () => {
          const a = E.parameter(E.tensor(ad, ta ? [k, m] : [m, k]));
          const b = E.parameter(E.tensor(bd, tb ? [n, k] : [k, n]));
          const c = matmul(a, b, { transposeA: ta, transposeB: tb });
          t.same(c.shape, [m, n]);
          const fc = closeness(await c.read(), ref(ad, bd, m, k, n, ta, tb), 1e-4, 1e-5);
          t.ok(fc.ok, `product: ${fc.msg}`);
          E.backward(c, E.tensor(gd, [m, n]));
          // op(A) [m,k] and op(B) [k,n] as plain row-major matrices.
          const opA = ta ? transpose(ad, k, m) : ad;
          const opB = tb ? transpose(bd, n, k) : bd;
          // d op(A) = G op(B)^T  [m,k];  d op(B) = op(A)^T G  [k,n]
          const gOpA = ref(gd, opB, m, n, k, false, true);
          const gOpB = ref(opA, gd, k, m, n, true, false);
          const gA = ta ? transpose(Float32Array.from(gOpA), m, k) : gOpA;
          const gB = tb ? transpose(Float32Array.from(gOpB), k, n) : gOpB;
          const fa = closeness(await a.grad!.read(), gA, 1e-4, 1e-5);
          t.ok(fa.ok, `d/da: ${fa.msg}`);
          const fb = closeness(await b.grad!.read(), gB, 1e-4, 1e-5);
          t.ok(fb.ok, `d/db: ${fb.msg}`);
        });
      });
    }
  }
}

t.test('matmul with an empty inner dimension is zero', async (t) => {
  const c = matmul(E.zeros([3, 0]), E.zeros([0, 5]));
  t.same(Array.from(await c.read()), new Array(15).fill(0));
});

t.test('matmul shape errors name the shapes', async (t) => {
  t.throws(() => matmul(E.zeros([3, 4]), E.zeros([5, 6])), /matmul: inner dimensions differ: a \[3, 4\] and b \[5, 6\]/);
  t.throws(() => matmul(E.zeros([3, 4]), E.zeros([5, 4]), { transposeB: false }), /inner dimensions/);
  t.throws(() => matmul(E.zeros([4]), E.zeros([4, 2])), /matmul: a must have 2 dimensions/);
  t.doesNotThrow(() => matmul(E.zeros([3, 4]), E.zeros([5, 4]), { transposeB: true }));
});
