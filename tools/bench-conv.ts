/**
 * Convolution and matmul speed:
 * `node --import tsx tools/bench-conv.ts [--reps N] [--only name] [--no-naive] [--more] [--small]
 *   [--batch N] [--tm 4|8|16] [--cu N] [--no-coop] [--direct-max FLOPS] [--wgrad-groups N]`.
 *
 * Each workload is recorded and then awaited with `engine().sync()`; after warm-up runs (which
 * also build the pipelines) the median of N runs is reported, with GFLOP/s and, where there is
 * one, the ratio to the naive one-invocation-per-output kernel (conv2d.wgsl `naive`).
 * "workers" is the CPU time of the process's other threads (lavapipe's workers) per run, and the
 * GFLOP/s it implies if they had every core to themselves: on a machine shared with other jobs it
 * is far steadier than wall time. (The main thread's CPU while it waits on the GPU is left out.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as E from '../src/engine/index.js';
import { conv2d, conv2dGeometry, convTuning, convDataGradRaw, convForwardRaw, convWeightGradRaw, naive, type ConvGeometry } from '../src/engine/ops/conv.js';
import { matmul } from '../src/engine/ops/matmul.js';

const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1]) || 7;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const noNaive = args.includes('--no-naive');
// Launches per timed run (--batch N): N copies in one submission, so that the time per launch
// leaves out the submit-and-wait latency (2-3 ms on lavapipe, more than a small kernel takes).
const batch = Number(args[args.indexOf('--batch') + 1]) || 1;
if (args.includes('--tm')) convTuning.tm = Number(args[args.indexOf('--tm') + 1]) as 4 | 8 | 16;
if (args.includes('--cu')) convTuning.cu = Number(args[args.indexOf('--cu') + 1]);
if (args.includes('--no-coop')) convTuning.coop = false;
if (args.includes('--direct-max')) convTuning.directMaxFlops = Number(args[args.indexOf('--direct-max') + 1]);
if (args.includes('--wgrad-groups')) convTuning.wgradTarget = Number(args[args.indexOf('--wgrad-groups') + 1]);

const e = await E.init();
console.log(`adapter: ${e.gpu.adapterName}; wall: median of ${reps} runs after warm-up`);

interface Result {
  ms: number;
  /** CPU ms per run of every thread but the main one. */
  workers: number;
}

/** CPU time (ms) of every thread of this process except the main one (Linux; 0 elsewhere). */
function workerCpuMs(): number {
  try {
    let total = 0;
    for (const t of readdirSync('/proc/self/task')) {
      if (t === String(process.pid)) continue;
      const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime + stime in USER_HZ (100)
    }
    return total;
  } catch {
    return 0;
  }
}
const cores = cpus().length;

async function time(fn1: () => void, warm = 2, n = reps): Promise<Result> {
  const fn = batch === 1 ? fn1 : () => { for (let i = 0; i < batch; i++) fn1(); };
  for (let i = 0; i < warm; i++) {
    E.tidy(fn);
    await e.sync();
  }
  const ms: number[] = [];
  const w0 = workerCpuMs();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    E.tidy(fn);
    await e.sync();
    ms.push(performance.now() - t0);
  }
  const workers = (workerCpuMs() - w0) / n / batch;
  return { ms: [...ms].sort((x, y) => x - y)[Math.floor(ms.length / 2)]! / batch, workers };
}

function report(name: string, flops: number, r: Result, base?: Result): void {
  const gf = flops / (r.ms * 1e6);
  const gfw = r.workers > 0 ? flops / ((r.workers / cores) * 1e6) : 0;
  const ratio = base
    ? `  | naive ${base.ms.toFixed(0)} ms: ${(base.ms / r.ms).toFixed(1)}x wall, ${(base.workers / r.workers).toFixed(1)}x cpu`
    : '';
  console.log(
    `${name.padEnd(42)} ${r.ms.toFixed(1).padStart(7)} ms ${gf.toFixed(1).padStart(6)} GFLOP/s | workers ${r.workers.toFixed(0).padStart(4)} ms cpu = ${gfw.toFixed(1).padStart(5)} GFLOP/s on ${cores} cores${ratio}`,
  );
}

const want = (n: string) => !only || n.includes(only);

async function convBench(
  label: string,
  xs: number[],
  ws: number[],
  pad: number,
  parts: ('fwd' | 'dgrad' | 'wgrad' | 'train')[],
  withNaive = !noNaive,
  { stride = 1, padMode = 'zero' }: { stride?: number; padMode?: 'zero' | 'reflect' } = {},
) {
  const g: ConvGeometry = conv2dGeometry('bench', xs, ws, { padding: pad, stride, padMode });
  const fl = 2 * g.nb * g.co * g.oh * g.ow * g.ci * g.kh * g.kw;
  const x = E.keep(E.randn(xs, 1));
  const w = E.keep(E.randn(ws, 2, 0.05));
  const b = E.keep(E.randn([g.co], 3));
  const gy = E.keep(E.randn([g.nb, g.co, g.oh, g.ow], 4));
  const runNaive = async (mode: 0 | 1 | 2) => {
    if (!withNaive) return undefined;
    const shape = mode === 0 ? gy.shape : mode === 1 ? x.shape : w.shape;
    const [a, bb] = mode === 0 ? [x, w] : mode === 1 ? [gy, w] : [x, gy];
    return time(() => {
      const out = E.Tensor.empty(shape);
      naive(mode, g, a, bb, mode === 0 ? b : null, out);
    }, 0, 2);
  };
  if (parts.includes('fwd') && want(`${label} forward`)) {
    const r = await time(() => void convForwardRaw(x, w, b, g));
    report(`${label} forward`, fl, r, await runNaive(0));
  }
  if (parts.includes('dgrad') && want(`${label} input grad`)) {
    const r = await time(() => void convDataGradRaw(gy, w, null, g));
    report(`${label} input grad`, fl, r, await runNaive(1));
  }
  if (parts.includes('wgrad') && want(`${label} weight grad`)) {
    const r = await time(() => void convWeightGradRaw(x, gy, g));
    report(`${label} weight grad`, fl, r, await runNaive(2));
  }
  if (parts.includes('train') && want(`${label} training pass`)) {
    const r = await time(() => {
      const xp = E.parameter(x.share());
      const wp = E.parameter(w.share());
      const bp = E.parameter(b.share());
      const y = conv2d(xp, wp, bp, { padding: pad, stride, padMode });
      E.backward(y, gy);
      for (const p of [xp, wp, bp]) p.dispose();
    });
    report(`${label} training (fwd+dx+dw+db)`, 3 * fl, r);
  }
  for (const t of [x, w, b, gy]) t.dispose();
}

await convBench('conv 3x3 64->64 128x128 b1', [1, 64, 128, 128], [64, 64, 3, 3], 1, ['fwd', 'dgrad', 'wgrad', 'train']);
await convBench('conv 7x7 3->64 256x256 b1', [1, 3, 256, 256], [64, 3, 7, 7], 3, ['fwd']);
if (args.includes('--more')) {
  // The generator's output layer (few rows) and a residual-block conv, for context.
  // (No naive baseline here: it takes minutes.)
  await convBench('conv 7x7 64->3 256x256 b1', [1, 64, 256, 256], [3, 64, 7, 7], 3, ['fwd', 'dgrad', 'wgrad'], false);
  await convBench('conv 3x3 256->256 64x64 b1', [1, 256, 64, 64], [256, 256, 3, 3], 1, ['fwd', 'dgrad', 'wgrad'], false);
}

if (args.includes('--small')) {
  // The 64x64 ngf 16 generator step's shapes: small launches, where per-launch costs and load
  // instructions weigh most.
  const all = ['fwd', 'dgrad', 'wgrad'] as ('fwd' | 'dgrad' | 'wgrad')[];
  await convBench('small 3x3 64->64 16x16 reflect (G block)', [1, 64, 16, 16], [64, 64, 3, 3], 1, all, false, { padMode: 'reflect' });
  // Zero padding at widths below one 32-pixel strip (the cooperative loads' padding, 2026-12-03).
  await convBench('small 3x3 64->64 8x8 zero pad', [1, 64, 8, 8], [64, 64, 3, 3], 1, ['fwd'], false);
  await convBench('small 3x3 64->64 16x16 zero pad', [1, 64, 16, 16], [64, 64, 3, 3], 1, ['fwd'], false);
  await convBench('small 3x3/2 16->32 64x64 (G down1)', [1, 16, 64, 64], [32, 16, 3, 3], 1, all, false, { stride: 2 });
  await convBench('small 7x7 1->16 64x64 reflect (G in)', [1, 1, 64, 64], [16, 1, 7, 7], 3, all, false, { padMode: 'reflect' });
  await convBench('small 7x7 16->3 64x64 reflect (G out)', [1, 16, 64, 64], [3, 16, 7, 7], 3, all, false, { padMode: 'reflect' });
}

if (want('matmul')) {
  const n = 1024;
  const a = E.keep(E.randn([n, n], 5));
  const bm = E.keep(E.randn([n, n], 6));
  for (const [ta, tb] of [[false, false], [true, false], [false, true]] as const) {
    const r = await time(() => void E.noGrad(() => matmul(a, bm, { transposeA: ta, transposeB: tb })));
    report(`matmul 1024^3${ta ? ' A^T' : ''}${tb ? ' B^T' : ''}`, 2 * n ** 3, r);
  }
}
