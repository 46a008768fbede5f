/**
 * `npm run bench:scaling`: how a federation's cost grows, measured with the real CLI processes on
 * loopback (one `asyndgan server`, N `asyndgan node` processes, phantom data, small models):
 *
 *  - nodes: the server's round time at 1, 3, 8 and 16 nodes (32x32);
 *  - sizes: round time and bytes per round at 32, 64, 128 and 256 (3 nodes), in f32 and in
 *    scaled f16 on the wire (`--wire-dtype f16s`);
 *  - wire:  a short federation per seed in f32 and f16s, comparing the final generator L1 (the
 *    nodes' mean |fake - real| over the last rounds) against the spread between seeds.
 *
 * The round time is the server's own `durationMs` (request sent to generator step done: the nodes'
 * D steps, the transfer and the G step), median over the rounds after the first (which compiles
 * the kernels and carries the mask uploads); bytes are those the server counted on its sockets
 * for that round, both directions. Every node, the server and this tool share the machine's
 * cores: with N nodes the D steps of one round run N at a time on the same CPUs.
 *
 * Writes docs/scaling.json (or --out; parts not rerun are kept) and PNG curves next to it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { positiveInt, toolArgs } from './tool-args.js';
import { lineChartPng } from '../src/io/chart.js';
import { median } from './bench/harness.js';
import { serverUrl } from '../src/cli/demo.js';

const CLI = fileURLToPath(new URL('../bin/asyndgan.js', import.meta.url));

const USAGE = `
usage: npm run bench:scaling -- [options]
  round time and bytes per round of a loopback federation (real server and node processes)

  --part LIST       nodes,sizes,wire (default all three); 'report' only redraws the figures and
                    prints the Markdown tables from the existing --out JSON
  --nodes LIST      node counts (1,3,8,16)
  --sizes LIST      image sizes (32,64,128,256)
  --rounds N        rounds per run (6; the first is not counted)
  --rounds-256 N    rounds at 256x256 (4)
  --wire-rounds N   rounds of each wire comparison run (40)
  --seeds LIST      seeds of the wire comparison (1,2)
  --ngf N --ndf N --blocks N   model (8, 8, 2)
  --batch-size N    masks per node per round (2)
  --out FILE        JSON results (docs/scaling.json); PNGs go next to it
`;

const a = toolArgs('npm run bench:scaling', USAGE, {
  part: { type: 'string', default: 'nodes,sizes,wire' },
  nodes: { type: 'string', default: '1,3,8,16' },
  sizes: { type: 'string', default: '32,64,128,256' },
  rounds: { type: 'string', default: '6' },
  'rounds-256': { type: 'string', default: '4' },
  'wire-rounds': { type: 'string', default: '40' },
  seeds: { type: 'string', default: '1,2' },
  ngf: { type: 'string', default: '8' },
  ndf: { type: 'string', default: '8' },
  blocks: { type: 'string', default: '2' },
  'batch-size': { type: 'string', default: '2' },
  out: { type: 'string', default: 'docs/scaling.json' },
});

function fail(msg: string): never {
  console.error(`npm run bench:scaling: ${msg}`);
  process.exit(2);
}
const int = (name: string, v: string): number => positiveInt('npm run bench:scaling', name, v);
const list = (name: string, v: string): number[] => v.split(',').map((x) => int(name, x.trim()));
const parts = a.part!.split(',');
for (const p of parts) if (!['nodes', 'sizes', 'wire', 'report'].includes(p)) fail(`--part: unknown part "${p}" (nodes, sizes, wire, report)`);
const model = { ngf: int('ngf', a.ngf!), ndf: int('ndf', a.ndf!), blocks: int('blocks', a.blocks!), batchSize: int('batch-size', a['batch-size']!) };
// Every argument is checked before the first process starts.
const opt = {
  nodes: list('nodes', a.nodes!), sizes: list('sizes', a.sizes!), seeds: list('seeds', a.seeds!),
  rounds: int('rounds', a.rounds!), rounds256: int('rounds-256', a['rounds-256']!), wireRounds: int('wire-rounds', a['wire-rounds']!),
};
for (const s of opt.sizes) if (s % 4 !== 0 || s < 32) fail(`--sizes: ${s} is not a multiple of 4 of at least 32`);

/** One federation run's measurements. */
export interface RunResult {
  nodes: number;
  size: number;
  wire: 'f32' | 'f16s';
  seed: number;
  rounds: number;
  /** Median server round time over rounds 2..R, ms (and every round's time). */
  roundMs: number;
  roundsMs: number[];
  /** Median bytes per round over rounds 2..R, both directions, and split. */
  bytesPerRound: number;
  bytesIn: number;
  bytesOut: number;
  /** Mean gL1 (|fake - real|, unweighted by lambda) over the last min(5, R) rounds. */
  finalL1: number;
  l1: number[];
  wallS: number;
}

interface History {
  round: number;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
  losses: { gL1: number };
}

/** Phantom data's classes and modalities, as `asyndgan demo` passes them to the server. */
const PHANTOM = { classes: 4, classNames: 'background,tissue,edema,tumor', modalities: 't1,t1c,t2,flair' };

async function phantomInfo(): Promise<typeof PHANTOM> {
  const { loadDataSource } = await import('../src/cli/data-source.js');
  const d = await loadDataSource('phantom', { size: 32, nodes: 1, seed: 1 });
  return { classes: d.test.numClasses, classNames: d.test.classNames.join(','), modalities: d.test.modalities.join(',') };
}

/** One loopback federation of the real CLI: server + `nodes` node processes; resolves with its measurements. */
async function federate(o: { nodes: number; size: number; rounds: number; wire: 'f32' | 'f16s'; seed: number }, data: typeof PHANTOM): Promise<RunResult> {
  const dir = join(tmpdir(), `asyndgan-scaling-${process.pid}-${o.nodes}n-${o.size}-${o.wire}-s${o.seed}`);
  mkdirSync(dir, { recursive: true });
  const ids = [...Array(o.nodes).keys()].map((i) => `site-${i}`);
  const tokens = Object.fromEntries(ids.map((id) => [id, randomBytes(16).toString('hex')]));
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ nodes: tokens }), { mode: 0o600 });
  const flags = ['--ngf', model.ngf, '--ndf', model.ndf, '--blocks', model.blocks, '--seed', o.seed, '--iters', o.rounds,
    '--decay-iters', Math.max(1, Math.floor(o.rounds / 2)), '--no-dropout', '--size', o.size].map(String);
  const children: ChildProcess[] = [];
  const t0 = Date.now();
  try {
    const server = spawn(process.execPath, [CLI, 'server', '--tokens', join(dir, 'tokens.json'), '--port', '0',
      '--classes', String(data.classes), '--class-names', data.classNames, '--modalities', data.modalities,
      '--batch-size', String(model.batchSize), '--rounds', String(o.rounds), '--min-nodes', String(o.nodes),
      // Every node answers every round: the round time is the slowest node's, nothing is dropped as late.
      '--round-timeout', '900000', '--wire-dtype', o.wire, '--out', dir, '--exit-when-done', '--quiet', ...flags],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    const log: string[] = [];
    const exited = new Promise<number>((r) => server.once('exit', (c) => r(c ?? 1)));
    const url = await serverUrl(server, log);
    ids.forEach((id, i) => {
      const child = spawn(process.execPath, [CLI, 'node', '--server', url, '--id', id, '--index', String(i), '--nodes', String(o.nodes),
        '--data', 'phantom', '--privacy', 'off', '--quiet', ...flags],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ASYNDGAN_TOKEN: tokens[id] } });
      const err: string[] = [];
      child.stderr!.on('data', (b: Buffer) => err.push(b.toString()));
      child.once('exit', (c) => c !== 0 && writeFileSync(join(dir, `${id}.log`), err.join('')));
      children.push(child);
    });
    const code = await exited;
    if (code !== 0) throw new Error(`server exited with code ${code}: ${log.join('').trim().split('\n').slice(-2).join(' | ')} (logs in ${dir})`);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  }
  const report = JSON.parse(readFileSync(join(dir, 'server-report.json'), 'utf8')) as { history: History[] };
  const h = report.history.filter((x) => x.round > 1);
  if (h.length === 0) throw new Error(`no rounds after the first in ${dir}/server-report.json`);
  const last = report.history.slice(-Math.min(5, report.history.length));
  return {
    nodes: o.nodes, size: o.size, wire: o.wire, seed: o.seed, rounds: o.rounds,
    roundMs: median(h.map((x) => x.durationMs)), roundsMs: report.history.map((x) => x.durationMs),
    bytesPerRound: median(h.map((x) => x.bytesIn + x.bytesOut)), bytesIn: median(h.map((x) => x.bytesIn)), bytesOut: median(h.map((x) => x.bytesOut)),
    finalL1: last.reduce((s, x) => s + x.losses.gL1, 0) / last.length, l1: report.history.map((x) => x.losses.gL1),
    wallS: (Date.now() - t0) / 1000,
  };
}

const out = resolve(a.out!);
const outDir = dirname(out);
try {
  mkdirSync(outDir, { recursive: true });
} catch (e) {
  fail(`--out: cannot create ${outDir} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
}
type Results = { nodes?: RunResult[]; sizes?: RunResult[]; wire?: RunResult[] };
const previous = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { results?: Results }).results ?? {} : {};
const results: Results = { ...previous };
const data = parts.some((p) => p !== 'report') ? await phantomInfo() : PHANTOM;
const load0 = loadavg();
console.log(`scaling: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${load0.map((l) => l.toFixed(2)).join(' ')}; ngf ${model.ngf}, ndf ${model.ndf}, ${model.blocks} blocks, batch ${model.batchSize} per node`);
const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const say = (r: RunResult) => console.log(`  ${r.nodes} nodes, ${r.size}x${r.size}, ${r.wire}, seed ${r.seed}: round ${r.roundMs.toFixed(0)} ms, ${kib(r.bytesPerRound)} per round (in ${kib(r.bytesIn)}, out ${kib(r.bytesOut)}), final L1 ${r.finalL1.toFixed(4)}, ${r.wallS.toFixed(0)} s`);

function save(): void {
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, loadavgStart: load0, loadavgEnd: loadavg() }, model, results }, null, 1));
}

/** Runs one part's federations in order, saving after each (an interrupted part keeps its finished runs). */
async function runPart(part: keyof Results, title: string, runs: Parameters<typeof federate>[0][]): Promise<void> {
  if (!parts.includes(part)) return;
  console.log(title);
  const done: RunResult[] = (results[part] = []);
  for (const o of runs) {
    const r = await federate(o, data);
    done.push(r);
    say(r);
    save();
  }
}
const WIRES = ['f32', 'f16s'] as const;
await runPart('nodes', 'nodes (32x32, f32):', opt.nodes.map((n) => ({ nodes: n, size: 32, rounds: opt.rounds, wire: 'f32', seed: 1 })));
await runPart('sizes', 'sizes (3 nodes, f32 and f16s):', opt.sizes.flatMap((s) => WIRES.map((wire) => ({ nodes: 3, size: s, rounds: s >= 256 ? opt.rounds256 : opt.rounds, wire, seed: 1 }))));
await runPart('wire', 'wire (3 nodes, 32x32):', opt.seeds.flatMap((seed) => WIRES.map((wire) => ({ nodes: 3, size: 32, rounds: opt.wireRounds, wire, seed }))));
if (parts.some((p) => p !== 'report')) save();

// ---- figures -----------------------------------------------------------------------------
const png = (name: string, buf: Buffer) => {
  writeFileSync(join(outDir, name), buf);
  console.log(`wrote ${join(outDir, name)}`);
};
if (results.nodes?.length) {
  const r = results.nodes;
  png('scaling-nodes.png', lineChartPng({
    title: 'Server round time vs nodes (loopback, 32x32, f32)', xLabel: 'nodes', yLabel: 'round time, ms',
    series: [{ name: 'median round time', x: r.map((x) => x.nodes), y: r.map((x) => x.roundMs) }], yMin: 0,
  }));
}
if (results.sizes?.length) {
  const by = (w: string) => results.sizes!.filter((x) => x.wire === w);
  png('scaling-size-time.png', lineChartPng({
    title: 'Round time vs image size (3 nodes)', xLabel: 'image side, px', yLabel: 'round time, ms', logY: true,
    series: ['f32', 'f16s'].map((w) => ({ name: w, x: by(w).map((x) => x.size), y: by(w).map((x) => x.roundMs) })),
  }));
  png('scaling-size-bytes.png', lineChartPng({
    title: 'Bytes per round vs image size (3 nodes, both directions)', xLabel: 'image side, px', yLabel: 'KiB per round', logY: true,
    series: ['f32', 'f16s'].map((w) => ({ name: w, x: by(w).map((x) => x.size), y: by(w).map((x) => x.bytesPerRound / 1024) })),
  }));
}
if (results.wire?.length) {
  png('scaling-wire-l1.png', lineChartPng({
    title: 'Generator L1 per round, f32 vs f16s wire', xLabel: 'round', yLabel: 'L1 |fake - real|',
    series: results.wire.map((x) => ({ name: `${x.wire} seed ${x.seed}`, y: x.l1, x: x.l1.map((_, i) => i + 1) })),
  }));
}
if (parts.some((p) => p !== 'report')) console.log(`wrote ${out}`);

// ---- tables (Markdown, for docs/BENCHMARKS.md) ----------------------------------------------
const ms = (v: number) => v.toFixed(0);
if (results.nodes?.length) {
  console.log('\n| nodes | median round, ms | rounds (ms, first = compile + uploads) | KiB per round |');
  console.log('|--:|--:|---|--:|');
  for (const r of results.nodes) console.log(`| ${r.nodes} | ${ms(r.roundMs)} | ${r.roundsMs.map(ms).join(', ')} | ${(r.bytesPerRound / 1024).toFixed(1)} |`);
}
if (results.sizes?.length) {
  console.log('\n| size | f32 round, ms | f16s round, ms | f32 KiB per round | f16s KiB per round | f16s / f32 bytes |');
  console.log('|--:|--:|--:|--:|--:|--:|');
  for (const size of [...new Set(results.sizes.map((r) => r.size))]) {
    const f = results.sizes.find((r) => r.size === size && r.wire === 'f32');
    const h = results.sizes.find((r) => r.size === size && r.wire === 'f16s');
    const kb = (r?: RunResult) => (r ? (r.bytesPerRound / 1024).toFixed(1) : '-');
    console.log(`| ${size} | ${f ? ms(f.roundMs) : '-'} | ${h ? ms(h.roundMs) : '-'} | ${kb(f)} | ${kb(h)} | ${f && h ? (h.bytesPerRound / f.bytesPerRound).toFixed(3) : '-'} |`);
  }
}
if (results.wire?.length) {
  console.log('\n| wire | seed | rounds | final L1 (mean of last 5 rounds) | KiB per round |');
  console.log('|---|--:|--:|--:|--:|');
  for (const r of results.wire) console.log(`| ${r.wire} | ${r.seed} | ${r.rounds} | ${r.finalL1.toFixed(4)} | ${(r.bytesPerRound / 1024).toFixed(1)} |`);
  const of = (w: string) => results.wire!.filter((r) => r.wire === w).map((r) => r.finalL1);
  const f = of('f32');
  const h = of('f16s');
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  const seeds = [...new Set(results.wire.map((r) => r.seed))];
  const paired = seeds.map((sd) => {
    const x = results.wire!.find((r) => r.seed === sd && r.wire === 'f32');
    const y = results.wire!.find((r) => r.seed === sd && r.wire === 'f16s');
    return x && y ? Math.abs(x.finalL1 - y.finalL1) : NaN;
  });
  console.log(`\nseed spread of the final L1: f32 ${spread(f).toFixed(4)}, f16s ${spread(h).toFixed(4)}; |f16s - f32| at the same seed: ${paired.map((d) => d.toFixed(4)).join(', ')}`);
}
