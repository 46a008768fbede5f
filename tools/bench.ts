/**
 * `npm run bench`: this engine against its peers on the same machine and, for tfjs, the same Dawn
 * adapter: @tensorflow/tfjs-backend-webgpu (forward, input gradient, weight gradient, training
 * pass, norms, Adam, the G and D training steps), onnxruntime-node's WebGPU and CPU execution
 * providers (forward only) and, whenever python3 has torch, PyTorch eager fp32 on the CPU (the G
 * and D steps and the convolutions, tools/bench/torch.ts). Each case warms every implementation up, then times them interleaved
 * and takes medians; every figure is a ratio against a peer measured in the same run, plus GFLOP/s.
 * Prints a table, writes JSON (runs/bench.json or --out), and ends with exactly one line
 * `conv3x3 train speedup vs tfjs-webgpu: X.XXx`.
 *
 * Options: --quick (CI-sized: the conv3x3 cases, small matmul/norm, G/D steps at 32x32; about 2 min)
 *          --repeats N (5)  --warmup N (1)  --min-repeats N (3)  --case-budget S (15)  --budget S (1200)
 *          --only REGEX (workload names)  --peers tfjs-webgpu,ort-webgpu,ort-cpu  --out FILE
 *          --gan-size N (64)  --ngf N (16)  --ndf N (16)  --blocks N (9)  --batch N (1)  --torch-threads N
 *          --conv-path auto|subgroup|tiled (convolution kernels: auto = tiled on GPUs, subgroup on CPUs)
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { toolArgs } from './tool-args.js';
import { init } from '../src/engine/engine.js';
import type { ConvKernels } from '../src/engine/device.js';
import { tensor } from '../src/engine/ops/create.js';
import { relu } from '../src/engine/ops/elementwise.js';
import { DEFAULT_GAN, type GanShape } from './bench/gan-step.js';
import {
  formatResults, IMPLS, measure, median, summarize, type CaseResult, type Impl, type Runner,
} from './bench/harness.js';
import { ortRunner } from './bench/ort.js';
import { crossCheck, type CrossCheck } from './bench/crosscheck.js';
import { generatorParamShapes, oursRunner } from './bench/ours.js';
import { matmul } from '../src/engine/ops/matmul.js';
import { startTfjs, tfjsRunner, type TfjsPeer } from './bench/tfjs.js';
import { startTorch, torchRunner, type TorchPeer } from './bench/torch.js';
import { caseFlops, CONV3X3, modesOf, workloads } from './bench/workloads.js';

const USAGE = `
usage: npm run bench -- [options]
  this engine against tfjs-webgpu and onnxruntime-node (WebGPU, CPU) on the same machine; prints a
  table, writes JSON, ends with the line \`conv3x3 train speedup vs tfjs-webgpu: X.XXx\`

  --quick                 CI-sized: the conv3x3 cases, small matmul/norm, G/D steps at 32x32 (~2 min)
  --repeats N             timed repeats per case (5)
  --warmup N              warm-up runs per implementation (1)
  --min-repeats N         at least this many repeats within the case budget (3)
  --case-budget S         seconds per case (15)
  --budget S              seconds for the whole run (1200)
  --only REGEX            only workloads whose name matches
  --peers LIST            tfjs-webgpu,ort-webgpu,ort-cpu,torch-cpu (default: all four, torch-cpu
                          only on CPU adapters; it needs python3 with torch:
                          pip install 'torch==2.13.0+cpu')
  --out FILE              JSON results (runs/bench.json)
  --gan-size N --ngf N --ndf N --blocks N --batch N   G/D step shape (64, 16, 16, 9, 1)
  --torch-threads N       PyTorch's CPU threads (default: its own choice, one per core; 1 when the
                          load average is at least the core count)
  --conv-path auto|subgroup|tiled           convolution kernels (auto: tiled on GPUs, subgroup on CPUs)
`;

const a = toolArgs('npm run bench', USAGE, {
  quick: { type: 'boolean', default: false },
  repeats: { type: 'string' },
  warmup: { type: 'string', default: '1' },
  'min-repeats': { type: 'string', default: '3' },
  'case-budget': { type: 'string' },
  budget: { type: 'string' },
  only: { type: 'string' },
  peers: { type: 'string' },
  out: { type: 'string', default: 'runs/bench.json' },
  'gan-size': { type: 'string' },
  'conv-path': { type: 'string', default: 'auto' },
  ngf: { type: 'string' },
  ndf: { type: 'string' },
  blocks: { type: 'string' },
  batch: { type: 'string' },
  'torch-threads': { type: 'string' },
});

const num = (name: string, v: string | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${v}`);
  return n;
};
const quick = a.quick!;
const opts = {
  warmup: num('warmup', a.warmup, 1),
  repeats: num('repeats', a.repeats, quick ? 3 : 5),
  minRepeats: num('min-repeats', a['min-repeats'], 3),
  caseBudgetMs: 1000 * num('case-budget', a['case-budget'], quick ? 6 : 15),
};
const budgetMs = 1000 * num('budget', a.budget, quick ? 240 : 1200);
// torch-cpu is a default peer on CPU adapters only: on a GPU the peer is PyTorch on that GPU
// (tools/bench-gpu.sh runs torch_step.py there); --peers torch-cpu still asks for it anywhere.
const peersGiven = a.peers !== undefined;
const peers = (a.peers ?? 'tfjs-webgpu,ort-webgpu,ort-cpu,torch-cpu').split(',').filter((p) => p.length > 0) as Exclude<Impl, 'ours'>[];
for (const p of peers) if (!IMPLS.includes(p) || p === ('ours' as string)) throw new Error(`--peers: unknown peer ${p}`);
const gan: GanShape = {
  ...DEFAULT_GAN,
  size: num('gan-size', a['gan-size'], quick ? 32 : DEFAULT_GAN.size),
  ngf: num('ngf', a.ngf, DEFAULT_GAN.ngf),
  ndf: num('ndf', a.ndf, DEFAULT_GAN.ndf),
  blocks: num('blocks', a.blocks, DEFAULT_GAN.blocks),
  batch: num('batch', a.batch, DEFAULT_GAN.batch),
};
const torchThreads = a['torch-threads'] !== undefined ? num('torch-threads', a['torch-threads'], 0) : undefined;
const only = a.only ? new RegExp(a.only, 'i') : null;
const convPath = a['conv-path'] as ConvKernels;
if (!['auto', 'subgroup', 'tiled'].includes(convPath)) throw new Error(`--conv-path must be auto, subgroup or tiled, got ${convPath}`);

const started = performance.now();
const load0 = loadavg();
const engine = await init({ convKernels: convPath });
const adapter = engine.gpu.adapterName;
console.log(`bench: ${adapter}; ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; load ${load0.map((l) => l.toFixed(2)).join(' ')}`);

// --- peers ---------------------------------------------------------------------------------------
let tfjs: TfjsPeer | null = null;
const peerProblems = new Map<Impl, string>();
if (peers.includes('tfjs-webgpu')) {
  const r = await startTfjs(adapter);
  if (typeof r === 'string') peerProblems.set('tfjs-webgpu', r);
  else {
    tfjs = r;
    if (r.adapterName !== adapter) console.log(`warning: tfjs got adapter "${r.adapterName}", ours is "${adapter}"`);
    // Two create() instances of the webgpu package in one process: check ours still computes.
    const y = await relu(tensor([-1, 2, -3, 4])).read();
    if (y.join(',') !== '0,2,0,4') throw new Error(`our engine broke after tfjs started: relu gave ${y.join(',')}`);
  }
}

let torch: TorchPeer | null = null;
if (!peersGiven && !engine.gpu.software && peers.includes('torch-cpu')) {
  peers.splice(peers.indexOf('torch-cpu'), 1);
  console.log('torch-cpu: not a default peer on a GPU adapter (--peers ...,torch-cpu to add it)');
}
if (peers.includes('torch-cpu')) {
  // PyTorch's OpenMP threads spin at every barrier: on oversubscribed cores a descheduled thread
  // stalls each of the G step's hundreds of small parallel regions (measured here at load 13 on 2
  // cores: G step 9.5 s with 2 threads, 0.14 s with 1). Under such load it gets 1 thread, said aloud.
  const busy = torchThreads === undefined && load0[0]! >= cpus().length;
  if (busy) console.log(`torch-cpu: load ${load0[0]!.toFixed(1)} >= ${cpus().length} cores: PyTorch gets 1 thread (its OpenMP threads stall when oversubscribed; --torch-threads N overrides)`);
  const threads = busy ? 1 : torchThreads;
  const r = await startTorch({ ...(threads ? { threads } : {}) });
  if (typeof r === 'string') {
    peerProblems.set('torch-cpu', r);
    console.log(`torch-cpu: ${r}`);
  } else {
    torch = r;
    console.log(`torch-cpu: PyTorch ${r.version} eager fp32 on the CPU, ${r.threads} thread${r.threads === 1 ? '' : 's'}, interleaved with ours`);
  }
}

/** The installed version of a package, resolved from this file (so the offline bundle reads its own copies). */
function versionOf(pkg: string): string {
  try {
    const path = createRequire(import.meta.url).resolve(`${pkg}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

// --- agreement with tfjs on small odd shapes, before any timing ----------------------------------
let checks: CrossCheck[] = [];
if (tfjs) {
  checks = await crossCheck(tfjs, (x, y) => matmul(x, y));
  const bad = checks.filter((c) => !c.ok);
  const worst = Math.max(...checks.map((c) => c.relErr));
  console.log(`cross-check vs tfjs: ${checks.length - bad.length}/${checks.length} agree (worst relative error ${worst.toExponential(1)})`);
  for (const c of bad) console.log(`WARNING: ${c.name} disagrees with tfjs (relative error ${c.relErr.toExponential(2)})`);
}

// --- cases ---------------------------------------------------------------------------------------
const list = workloads(gan).filter((w) => (!quick || w.quick) && (!only || only.test(w.name)));
const needsAdam = list.some((w) => w.kind === 'adam');
const adamShapes = needsAdam ? generatorParamShapes() : [];
const adamParams = adamShapes.reduce((n, s) => n + s.reduce((x, y) => x * y, 1), 0);

async function makeRunner(impl: Impl, w: (typeof list)[number], mode: string): Promise<Runner | string> {
  try {
    switch (impl) {
      case 'ours':
        return await oursRunner(w, mode, adamShapes);
      case 'tfjs-webgpu':
        return tfjs ? await tfjsRunner(tfjs, w, mode, adamShapes) : peerProblems.get(impl) ?? 'not started';
      case 'ort-webgpu':
        return await ortRunner('webgpu', w, mode);
      case 'ort-cpu':
        return await ortRunner('cpu', w, mode);
      case 'torch-cpu':
        return torch ? await torchRunner(torch, w, mode) : peerProblems.get(impl) ?? 'not started';
    }
  } catch (err) {
    return `setup failed: ${(err as Error).message.split('\n')[0]}`;
  }
}

const results: CaseResult[] = [];
for (const w of list) {
  for (const mode of modesOf(w)) {
    const flops = caseFlops(w, mode, adamParams);
    const skipped = new Map<Impl, string>();
    if (performance.now() - started > budgetMs) {
      for (const impl of ['ours', ...peers] as Impl[]) skipped.set(impl, 'total time budget spent');
      results.push(summarize(w.name, mode, flops, new Map(), skipped));
      console.log(`${w.name} ${mode}: skipped (time budget)`);
      continue;
    }
    const runners = new Map<Impl, Runner>();
    for (const impl of ['ours', ...peers] as Impl[]) {
      const r = await makeRunner(impl, w, mode);
      if (typeof r === 'string') skipped.set(impl, r);
      else runners.set(impl, r);
    }
    let times = new Map<Impl, number[]>();
    const watchTfjs = tfjs !== null && runners.has('tfjs-webgpu');
    if (watchTfjs) tfjs!.watchErrors();
    try {
      times = await measure(runners, opts);
    } catch (err) {
      // One implementation failing must not hide the others: retry them one by one.
      console.log(`${w.name} ${mode}: ${(err as Error).message.split('\n')[0]}; measuring separately`);
      for (const [impl, r] of runners) {
        try {
          times.set(impl, (await measure(new Map([[impl, r]]), opts)).get(impl)!);
        } catch (e) {
          skipped.set(impl, `failed: ${(e as Error).message.split('\n')[0]}`);
        }
      }
    }
    if (watchTfjs) {
      const err = await tfjs!.sync().then(() => tfjs!.checkErrors());
      if (err) {
        times.delete('tfjs-webgpu');
        skipped.set('tfjs-webgpu', `GPU validation error: ${err}`);
      }
    }
    const memory = runners.get('ours')?.memory?.();
    const dispatches = runners.get('ours')?.dispatches?.();
    for (const r of runners.values()) await r.dispose();
    const res = summarize(w.name, mode, flops, times, skipped);
    if (memory) res.memory = memory;
    if (dispatches && dispatches.length > 0) res.dispatches = median(dispatches);
    results.push(res);
    const oursMs = (res.impls.ours as { medianMs?: number } | undefined)?.medianMs;
    const parts = [`ours ${oursMs !== undefined ? `${oursMs.toFixed(2)} ms` : 'n/a'}${res.dispatches !== undefined ? ` (${res.dispatches} dispatches)` : ''}`];
    for (const p of peers) {
      const t = res.impls[p];
      if (t && 'medianMs' in t) parts.push(`${p} ${t.medianMs.toFixed(2)} ms (${(res.speedup[p] ?? NaN).toFixed(2)}x)`);
    }
    console.log(`${w.name} ${mode}: ${parts.join(', ')}`);
  }
}

// --- report --------------------------------------------------------------------------------------
const measuredPeers = peers.filter((p) => results.some((r) => r.impls[p] && 'medianMs' in r.impls[p]!));
console.log('\n' + formatResults(results, measuredPeers));
for (const [p, why] of peerProblems) console.log(`${p}: ${why}`);
const skippedNotes = new Set<string>();
for (const r of results) for (const [impl, t] of Object.entries(r.impls)) if (t && 'skipped' in t) skippedNotes.add(`${impl}: ${t.skipped}`);
for (const n of skippedNotes) console.log(`n/a ${n}`);
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
for (const r of results) {
  if (!r.memory) continue;
  const m = r.memory;
  console.log(
    `memory, ours, ${r.workload}: peak in use ${MiB(m.peakBytesInUse)} (weights, Adam moments and batch included), ` +
      `pool now ${MiB(m.bytesAllocated)}; ${m.buffersCreatedInSteadySteps} buffers created in ${m.steadySteps} steady-state steps`,
  );
}

// The G and D steps against PyTorch CPU, from this run's interleaved medians.
const vsTorch: Record<string, { oursMs: number; torchMs: number; oursOverTorch: number; dispatches: number | null }> = {};
for (const r of results.filter((x) => x.workload.startsWith('G step') || x.workload.startsWith('D step') || (x.workload === CONV3X3 && x.mode === 'train'))) {
  const o = r.impls.ours;
  const t = r.impls['torch-cpu'];
  const name = r.workload === CONV3X3 ? `${CONV3X3} train` : r.workload;
  if (o && 'medianMs' in o && t && 'medianMs' in t) {
    vsTorch[name] = { oursMs: o.medianMs, torchMs: t.medianMs, oursOverTorch: o.medianMs / t.medianMs, dispatches: r.dispatches ?? null };
    const how = o.medianMs >= t.medianMs ? `${(o.medianMs / t.medianMs).toFixed(2)}x slower` : `${(t.medianMs / o.medianMs).toFixed(2)}x faster`;
    console.log(`vs PyTorch CPU, ${name}: ours ${o.medianMs.toFixed(1)} ms, torch ${t.medianMs.toFixed(1)} ms: ours ${how}` +
      `${r.dispatches !== undefined ? `; ${r.dispatches} dispatches per step` : ''} (medians of ${o.runsMs.length} interleaved runs)`);
  } else if (r.dispatches !== undefined) {
    console.log(`${name}: ${r.dispatches} dispatches per step; PyTorch CPU not measured${peerProblems.has('torch-cpu') ? ` (${peerProblems.get('torch-cpu')})` : ''}`);
  }
}
torch?.close();

const train = results.find((r) => r.workload === CONV3X3 && r.mode === 'train');
const speedup = train?.speedup['tfjs-webgpu'];
const elapsedS = (performance.now() - started) / 1000;
const report = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadavgStart: load0,
    loadavgEnd: loadavg(),
    node: process.version,
  },
  adapter,
  tfjsAdapter: tfjs?.adapterName ?? null,
  versions: {
    webgpu: versionOf('webgpu'),
    '@tensorflow/tfjs': versionOf('@tensorflow/tfjs'),
    '@tensorflow/tfjs-backend-webgpu': versionOf('@tensorflow/tfjs-backend-webgpu'),
    'onnxruntime-node': versionOf('onnxruntime-node'),
    torch: torch?.version ?? null,
  },
  torchThreads: torch?.threads ?? null,
  options: { quick, ...opts, budgetMs, peers, gan, only: a.only ?? null, convPath },
  adamParams,
  crossCheck: checks,
  elapsedS,
  results,
  summary: { conv3x3TrainSpeedupVsTfjs: speedup ?? null, vsTorchCpu: vsTorch },
};
mkdirSync(dirname(a.out!), { recursive: true });
writeFileSync(a.out!, JSON.stringify(report, null, 1));
console.log(`\nwrote ${a.out} (${elapsedS.toFixed(0)} s)`);
console.log(`conv3x3 train speedup vs tfjs-webgpu: ${speedup !== undefined ? `${speedup.toFixed(2)}x` : 'n/a'}`);
