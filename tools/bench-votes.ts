/**
 * `npm run bench:votes`: what the server's robust aggregation costs. One generator step of the
 * server's EngineGenerator (generate a batch of m nodes x b masks, then step on the nodes'
 * gradients), timed three ways in the same minutes, interleaved so that load changes hit all three:
 *
 *  - sum:          applyGradients, the weighted sum in fake space (clipped-median, the default);
 *  - median:       applyVotes 'trimmed-mean' at the median (aggregation coordinate-median);
 *  - median-trust: applyVotes 'median-trust' (aggregation median-trust).
 *
 * The vote modes generate one forward pass per node and back-propagate every node's gradient
 * through its own rows, then combine m parameter-gradient vectors: the same arithmetic as one
 * whole-batch step, in m times the dispatches, plus the copies and the combination.
 * Prints a Markdown table (median ms per step and the ratio to `sum`) and writes --json.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Adam, engine, init } from '../src/engine/index.js';
import { EngineGenerator } from '../src/federation/generator-backend.js';
import { DEFAULT_GAN_CONFIG, makeGenerator, type GanConfig } from '../src/train/pix2pix.js';
import type { GeneratorBatch } from '../src/net/backend.js';
import { Rng } from '../src/engine/random.js';
import { median } from './bench/harness.js';
import { positiveInt, toolArgs } from './tool-args.js';

const USAGE = `
usage: npm run bench:votes -- [options]
  server generator step: weighted sum vs coordinate-median vs median-trust votes

  --nodes LIST     votes per step (3,8,16)
  --size N         image size (32)
  --batch-size N   masks per node (2)
  --ngf N --blocks N   generator (12, 3: the demo's)
  --steps N        timed steps per mode and node count (5, after 1 warm-up)
  --json FILE      also write the results as JSON
`;

const a = toolArgs('npm run bench:votes', USAGE, {
  nodes: { type: 'string', default: '3,8,16' },
  size: { type: 'string', default: '32' },
  'batch-size': { type: 'string', default: '2' },
  ngf: { type: 'string', default: '12' },
  blocks: { type: 'string', default: '3' },
  steps: { type: 'string', default: '5' },
  json: { type: 'string' },
});

const positive = (name: string, v: unknown): number => positiveInt('npm run bench:votes', name, String(v));
const nodeCounts = String(a.nodes).split(',').map((x) => positive('nodes', x));
const size = positive('size', a.size);
const b = positive('batch-size', a['batch-size']);
const steps = positive('steps', a.steps);
const classes = 8;
const modalities = 4;

await init();
const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ngf: positive('ngf', a.ngf), blocks: positive('blocks', a.blocks), iters: 1000, decayIters: 0 };
const g = makeGenerator(cfg, classes, modalities);
const gen = new EngineGenerator(g, new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), { lr: 1e-4 }), cfg);
const rng = new Rng(1);
const plane = size * size;

type Mode = 'sum' | 'median' | 'median-trust';
const MODES: Mode[] = ['sum', 'median', 'median-trust'];

/** One timed server step with m nodes: generate, then the mode's update. */
async function step(mode: Mode, m: number): Promise<number> {
  const rows = m * b;
  const masks = new Float32Array(rows * classes * plane);
  for (let i = 0; i < rows * plane; i++) masks[(Math.floor(i / plane) * classes + Math.floor(rng.next() * classes)) * plane + (i % plane)] = 1;
  // As the server does: the vote modes generate one forward pass per node (segments).
  const batch: GeneratorBatch = { round: 1, masks, shape: [rows, classes, size, size], ...(mode === 'sum' ? {} : { segments: Array(m).fill(b) }) };
  const t0 = performance.now();
  await gen.generate(batch);
  const img = modalities * plane;
  // Node k's gradient, at its rows k*b.. of the batch.
  const perNode = Array.from({ length: m }, () => Float32Array.from({ length: b * img }, () => (rng.next() - 0.5) * 1e-3));
  if (mode === 'sum') {
    const sum = new Float32Array(rows * img);
    perNode.forEach((v, k) => sum.set(v.map((x) => x / m), k * b * img));
    await gen.applyGradients([{ batch, gradFakes: sum }]);
  } else {
    const votes = perNode.map((gradFakes, k) => ({ batch, gradFakes, rows: { offset: k * b, count: b } }));
    await gen.applyVotes(votes, mode === 'median' ? { kind: 'trimmed-mean', trim: Math.floor((m - 1) / 2) } : { kind: 'median-trust', weights: perNode.map(() => 1 / m) });
  }
  await engine().sync();
  return performance.now() - t0;
}

const results: { nodes: number; mode: Mode; ms: number; ratio: number }[] = [];
console.error(`bench:votes: ${size}x${size}, ngf ${cfg.ngf}, ${cfg.blocks} blocks, ${b} masks per node, ${g.numParameters()} generator parameters, load ${loadavg()[0]!.toFixed(1)}`);
for (const m of nodeCounts) {
  const times = new Map<Mode, number[]>(MODES.map((x) => [x, []]));
  for (const mode of MODES) await step(mode, m); // warm-up: pipelines and buffers
  for (let s = 0; s < steps; s++) for (const mode of MODES) times.get(mode)!.push(await step(mode, m));
  const base = median(times.get('sum')!);
  for (const mode of MODES) {
    const ms = median(times.get(mode)!);
    results.push({ nodes: m, mode, ms, ratio: ms / base });
  }
  console.error(`  ${m} nodes done`);
}
console.log(`| nodes | sum (clipped-median) | coordinate-median | median-trust |\n|---:|---:|---:|---:|`);
for (const m of nodeCounts) {
  const r = (mode: Mode) => results.find((x) => x.nodes === m && x.mode === mode)!;
  console.log(`| ${m} | ${r('sum').ms.toFixed(0)} ms | ${r('median').ms.toFixed(0)} ms (${r('median').ratio.toFixed(2)}x) | ${r('median-trust').ms.toFixed(0)} ms (${r('median-trust').ratio.toFixed(2)}x) |`);
}
console.log(`(median of ${steps} interleaved steps each; generate + update; load average at the end ${loadavg()[0]!.toFixed(1)})`);
if (a.json) writeFileSync(String(a.json), JSON.stringify({ size, batchPerNode: b, ngf: cfg.ngf, blocks: cfg.blocks, parameters: g.numParameters(), steps, results }, null, 2));
