/**
 * `npm run profile -- --size 64 --ngf 16 --trace out.json`
 *
 * Profiles one training step of the generator and one of the discriminator (ResnetGenerator and
 * PatchDiscriminator, batch norm, Adam) after one warm-up iteration, prints a per-kernel table for
 * each, and optionally writes a Chrome trace (open it in https://ui.perfetto.dev or
 * chrome://tracing): process 1 is the generator step, process 2 the discriminator step.
 *
 * Options: --size N (64)  --batch N (1)  --ngf N (16)  --ndf N (16)  --blocks N (9)  --layers N (3)
 *          --norm batch|instance  --in-channels N (1)  --out-channels N (3)  --rows N (table rows, 25)
 *          --timing auto|gpu|cpu  --quantized (keep Dawn's 65.5 us timestamp quantization)
 *          --trace FILE  --json FILE (the raw reports)
 *          --conv-path auto|subgroup|tiled (convolution kernels: auto = tiled on GPUs, subgroup on CPUs)
 *          --unfused-norm (norm layers on the split kernels with separate activation / residual ops, as
 *          before the fused norm kernels: for before/after comparisons in the same minutes)
 * The last line gives the dispatches per step: `dispatches per step: G N, D M (plus buffer copies: ...)`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { toolArgs } from './tool-args.js';
import { init } from '../src/engine/engine.js';
import type { ConvKernels } from '../src/engine/device.js';
import { Profiler, PROFILER_DAWN_FLAGS, type ProfileReport } from '../src/engine/profiler.js';
import { normTuning } from '../src/engine/ops/norm.js';
import { formatTable, toChromeTrace, type TraceEvent } from '../src/engine/profile-render.js';
import type { NormKind } from '../src/models/resnet-generator.js';
import { DEFAULT_GAN, discriminatorStep, generatorStep, makeFake, makeGan, stepFlops, type GanShape } from './bench/gan-step.js';

const USAGE = `
usage: npm run profile -- [options]
  profiles one generator and one discriminator training step after a warm-up; prints a per-kernel
  table for each, optionally a Chrome trace (process 1 = G step, process 2 = D step)

  --size N (64)  --batch N (1)  --ngf N (16)  --ndf N (16)  --blocks N (9)  --layers N (3)
  --norm batch|instance   --in-channels N (1)   --out-channels N (3)
  --rows N                table rows (25)
  --timing auto|gpu|cpu   --quantized (keep Dawn's 65.5 us timestamp quantization)
  --trace FILE            Chrome trace (open in https://ui.perfetto.dev)
  --json FILE             the raw reports
  --conv-path auto|subgroup|tiled   convolution kernels (auto: tiled on GPUs, subgroup on CPUs)
  --unfused-norm          norm layers without the fused kernels (before/after comparisons)
  last line: dispatches per step: G N, D M
`;

const a = toolArgs('npm run profile', USAGE, {
  size: { type: 'string', default: String(DEFAULT_GAN.size) },
  batch: { type: 'string', default: String(DEFAULT_GAN.batch) },
  ngf: { type: 'string', default: String(DEFAULT_GAN.ngf) },
  ndf: { type: 'string', default: String(DEFAULT_GAN.ndf) },
  blocks: { type: 'string', default: String(DEFAULT_GAN.blocks) },
  layers: { type: 'string', default: String(DEFAULT_GAN.layers) },
  norm: { type: 'string', default: DEFAULT_GAN.norm },
  'in-channels': { type: 'string', default: String(DEFAULT_GAN.inC) },
  'out-channels': { type: 'string', default: String(DEFAULT_GAN.outC) },
  rows: { type: 'string', default: '25' },
  timing: { type: 'string', default: 'auto' },
  'conv-path': { type: 'string', default: 'auto' },
  quantized: { type: 'boolean', default: false },
  'unfused-norm': { type: 'boolean', default: false },
  trace: { type: 'string' },
  json: { type: 'string' },
});

const int = (name: string, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
};
if (a.norm !== 'batch' && a.norm !== 'instance') throw new Error(`--norm must be batch or instance, got ${a.norm}`);
if (!['auto', 'gpu', 'cpu'].includes(a.timing!)) throw new Error(`--timing must be auto, gpu or cpu, got ${a.timing}`);

const shape: GanShape = {
  ...DEFAULT_GAN,
  size: int('size', a.size),
  batch: int('batch', a.batch),
  ngf: int('ngf', a.ngf),
  ndf: int('ndf', a.ndf),
  blocks: int('blocks', a.blocks),
  layers: int('layers', a.layers),
  norm: a.norm as NormKind,
  inC: int('in-channels', a['in-channels']),
  outC: int('out-channels', a['out-channels']),
};
const timing = a.timing as 'auto' | 'gpu' | 'cpu';

const engine = await init({ dawnFlags: a.quantized ? [] : [...PROFILER_DAWN_FLAGS] });
if (!['auto', 'subgroup', 'tiled'].includes(a['conv-path']!)) throw new Error(`--conv-path must be auto, subgroup or tiled, got ${a['conv-path']}`);
engine.convKernels = a['conv-path'] as ConvKernels;
if (a['unfused-norm']) normTuning.fusedMax = 0;
const gan = makeGan(shape);
console.log(
  `profile: ResnetGenerator(${shape.inC}->${shape.outC}, ngf ${shape.ngf}, ${shape.blocks} blocks, ${shape.norm}) ` +
    `${(gan.gParams / 1e6).toFixed(2)}M params, PatchDiscriminator(${shape.inC + shape.outC}, ndf ${shape.ndf}, ` +
    `${shape.layers} layers) ${(gan.dParams / 1e6).toFixed(2)}M params, batch ${shape.batch} x ${shape.size}x${shape.size}`,
);
console.log(`adapter: ${engine.gpu.adapterName}`);

// Warm-up: two full iterations build every pipeline and fill the buffer pool (the second still
// allocates: the first's gradients and Adam moments are alive while it runs).
let t0 = performance.now();
for (let i = 0; i < 2; i++) {
  const fake = makeFake(gan);
  discriminatorStep(gan, fake);
  fake.dispose();
  generatorStep(gan);
  await engine.sync();
}
console.log(`warm-up (2 iterations): ${(performance.now() - t0).toFixed(0)} ms`);

// Unprofiled timings of the two steps (medians of 5), for comparison with the profiled kernel
// totals. `record` is the CPU time until the step function returns (autograd, kernel selection,
// command encoding): when it is close to the wall time, the step is bound by the CPU, not the GPU.
interface Plain {
  wallMs: number;
  recordMs: number;
  /** CPU time of the whole process (main thread + lavapipe's workers): steadier than wall time on shared cores. */
  cpuMs: number;
}
/** Counts recorded by one call of a step function: dispatches, and buffer-to-buffer copies (the optimizer's arena copies). */
interface Counts {
  dispatches: number;
  copies: number;
}
async function timeStep(step: () => void, runs = 5): Promise<[Plain, Counts]> {
  const wall: number[] = [];
  const record: number[] = [];
  const cpu: number[] = [];
  const counts: Counts = { dispatches: 0, copies: 0 };
  for (let i = 0; i < runs; i++) {
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const before = engine.recorder.dispatches;
    const copiesBefore = engine.recorder.copies;
    step();
    counts.dispatches = engine.recorder.dispatches - before;
    counts.copies = engine.recorder.copies - copiesBefore;
    record.push(performance.now() - start);
    await engine.sync();
    wall.push(performance.now() - start);
    const c = process.cpuUsage(cpu0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)]!;
  return [{ wallMs: median(wall), recordMs: median(record), cpuMs: median(cpu) }, counts];
}
const pool = engine.pool;
const createdAfterWarmup = pool.stats.created;
pool.resetPeak();
const [plainG, countsG] = await timeStep(() => generatorStep(gan));
const peakG = pool.stats.peakBytesInUse;
const fake = makeFake(gan);
await engine.sync();
pool.resetPeak();
const [plainD, countsD] = await timeStep(() => discriminatorStep(gan, fake));
const peakD = pool.stats.peakBytesInUse;
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const memory = {
  generatorPeakBytes: peakG,
  discriminatorPeakBytes: peakD,
  poolBytes: pool.stats.bytesAllocated,
  buffersCreatedAfterWarmup: pool.stats.created - createdAfterWarmup,
};
console.log(
  `memory: peak in use ${MiB(peakG)} during a G step, ${MiB(peakD)} during a D step (weights, Adam moments, batch ` +
    `included); pool ${MiB(memory.poolBytes)}; ${memory.buffersCreatedAfterWarmup} buffers created in 10 steady-state steps`,
);

const flops = stepFlops(shape);

async function profile(name: string, step: () => void, nominalFlops: number, plain: Plain): Promise<ProfileReport> {
  const p = Profiler.start(engine, { timing });
  step();
  const r = await p.stop();
  console.log(
    `\n=== ${name} step (unprofiled: ${plain.wallMs.toFixed(1)} ms, of which ${plain.recordMs.toFixed(1)} ms recording on the CPU; ` +
      `process CPU ${plain.cpuMs.toFixed(1)} ms; ` +
      `${(nominalFlops / (plain.wallMs * 1e6)).toFixed(2)} GFLOP/s nominal) ===`,
  );
  console.log(formatTable(r, int('rows', a.rows)));
  return r;
}

const g = await profile('generator', () => generatorStep(gan), flops.generator, plainG);
const d = await profile('discriminator', () => discriminatorStep(gan, fake), flops.discriminator, plainD);
fake.dispose();

if (a.trace) {
  const tg = toChromeTrace(g);
  const td = toChromeTrace(d);
  const endG = Math.max(0, ...tg.traceEvents.map((e) => (e.ts ?? 0) + (e.dur ?? 0)));
  const relabel = (events: TraceEvent[], pid: number, title: string, offsetUs: number): TraceEvent[] =>
    events.map((e) => ({
      ...e,
      pid,
      ...(e.ts !== undefined ? { ts: Math.round((e.ts + offsetUs) * 1e3) / 1e3 } : {}),
      ...(e.name === 'process_name' ? { args: { name: `${title} (${e.args?.name as string})` } } : {}),
    }));
  const trace = {
    traceEvents: [
      ...relabel(tg.traceEvents, 1, 'generator step', 0),
      ...relabel(td.traceEvents, 2, 'discriminator step', endG + 1000),
    ],
    displayTimeUnit: 'ms',
    otherData: { ...tg.otherData, shape, note: 'pid 1: generator step; pid 2: discriminator step (shifted to follow it)' },
  };
  write(a.trace, JSON.stringify(trace));
  console.log(`\ntrace: ${a.trace} (${trace.traceEvents.length} events; open in https://ui.perfetto.dev)`);
}
if (a.json) {
  write(a.json, JSON.stringify({ shape, adapter: engine.gpu.adapterName, unprofiledMs: { generator: plainG, discriminator: plainD }, dispatches: { generator: countsG.dispatches, discriminator: countsD.dispatches }, copies: { generator: countsG.copies, discriminator: countsD.copies }, memory, generator: g, discriminator: d }, null, 1));
  console.log(`reports: ${a.json}`);
}
gan.dispose();
console.log(
  `dispatches per step: G ${countsG.dispatches}, D ${countsD.dispatches} ` +
    `(plus buffer copies: G ${countsG.copies}, D ${countsD.copies})${a['unfused-norm'] ? ' (--unfused-norm)' : ''}`,
);

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}
