/**
 * Prints this engine's G/D step and conv3x3 times (from tools/bench.ts JSON) next to PyTorch's
 * (from tools/bench/torch_step.py JSON) measured in the same run of tools/bench-gpu.sh.
 *
 *   node --import tsx tools/bench/compare-torch.ts runs/gpu-X/bench.json runs/gpu-X/torch.json
 */
import { readFileSync } from 'node:fs';
import type { CaseResult } from './harness.js';

interface TorchJson {
  torch: string;
  device: string;
  shape: Record<string, number>;
  results: Record<string, { medianMs: number }>;
}
interface BenchJson {
  adapter: string;
  options: { gan: Record<string, number | string> };
  results: CaseResult[];
}

const [benchPath, torchPath] = process.argv.slice(2);
if (!benchPath || !torchPath) {
  console.error('usage: compare-torch.ts BENCH.json TORCH.json');
  process.exit(2);
}
const bench = JSON.parse(readFileSync(benchPath, 'utf8')) as BenchJson;
const torch = JSON.parse(readFileSync(torchPath, 'utf8')) as TorchJson;

const g = bench.options.gan;
for (const k of ['size', 'ngf', 'ndf', 'blocks', 'layers', 'batch'] as const) {
  if (torch.shape[k] !== undefined && g[k] !== undefined && torch.shape[k] !== g[k]) {
    console.log(`warning: ${k} differs (ours ${g[k]}, torch ${torch.shape[k]})`);
  }
}

function ours(pred: (r: CaseResult) => boolean): number | undefined {
  const r = bench.results.find(pred);
  const t = r?.impls.ours;
  return t && 'medianMs' in t ? t.medianMs : undefined;
}

const rows: [string, number | undefined, number | undefined][] = [
  ['G step', ours((r) => r.workload.startsWith('G step')), torch.results.generator?.medianMs],
  ['D step', ours((r) => r.workload.startsWith('D step')), torch.results.discriminator?.medianMs],
  ...(['fwd', 'dgrad', 'wgrad', 'train'] as const).map(
    (m) => [`conv3x3 ${m}`, ours((r) => r.workload.startsWith('conv3x3') && r.mode === m), torch.results[`conv3x3 ${m}`]?.medianMs] as [string, number | undefined, number | undefined],
  ),
];
console.log(`ours on ${bench.adapter}; PyTorch ${torch.torch} eager fp32 (TF32 off) on ${torch.device}`);
console.log('case             ours ms   torch ms   torch/ours');
for (const [name, o, t] of rows) {
  const f = (v: number | undefined) => (v === undefined ? 'n/a' : v.toFixed(3)).padStart(9);
  const ratio = o !== undefined && t !== undefined ? `${(t / o).toFixed(3)}x` : 'n/a';
  console.log(`${name.padEnd(14)} ${f(o)}  ${f(t)}   ${ratio.padStart(9)}`);
}
console.log('(torch/ours > 1: we are faster; < 1: PyTorch is faster)');
