/**
 * `node --import tsx tools/fedavg-sweep.ts [--out runs/fedavg-sweep] [--updates 96] [--E 1,4,16] [--lr 2e-4,1e-3]`
 *
 * How FedAvg-GAN's E (local steps between averagings) and learning rate were chosen
 * (docs/FEDAVG.md): every configuration runs the same number of generator updates (--updates =
 * rounds x E) through `runLocalFederation` (real server and node processes on loopback), and is
 * scored by the generator's L1 on the held-out test masks (mean |G(mask) - real| over pixels and
 * channels, generator in eval mode). AsynDGAN runs the same number of updates (one per round) at
 * each learning rate, for the bytes and the L1 side by side. Bytes are the server's counts of the
 * frames on its sockets. Resumable: a configuration whose result.json exists is not rerun.
 * Writes OUT/sweep.json and OUT/sweep.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { init, noGrad, tensor, tidy } from '../src/engine/index.js';
import { conditionTensor, imageTensor } from '../src/data/index.js';
import { loadModule } from '../src/models/index.js';
import { makeGenerator, type GanConfig } from '../src/train/pix2pix.js';
import { loadDataSource } from '../src/cli/data-source.js';
import { runLocalFederation, type FederationAlgorithm, type FederationRunReport } from '../src/cli/demo.js';
import { toolArgs } from './tool-args.js';

const USAGE = `
usage: node --import tsx tools/fedavg-sweep.ts [options]
  FedAvg-GAN's E and learning rate, scored by the generator's L1 on the test masks (real processes)

  --out DIR        results (runs/fedavg-sweep); a configuration with a result.json is not rerun
  --updates N      generator updates per configuration, rounds x E (96)
  --E LIST         local steps between averagings (1,4,16)
  --lr LIST        learning rates (2e-4,1e-3)
  --nodes N --size N --batch-size N   federation (3, 32, 4)
  --ngf N --ndf N --blocks N          model (8, 8, 2)
  --data SPEC      data source (phantom)
  --seed N         weights, batch sampling and split (1)
  --adam-reset-E N also run E=N with Adam reset every round, at each lr
`;

const v = toolArgs('tools/fedavg-sweep.ts', USAGE, {
  out: { type: 'string', default: 'runs/fedavg-sweep' },
  updates: { type: 'string', default: '96' },
  E: { type: 'string', default: '1,4,16' },
  lr: { type: 'string', default: '2e-4,1e-3' },
  nodes: { type: 'string', default: '3' },
  size: { type: 'string', default: '32' },
  'batch-size': { type: 'string', default: '4' },
  ngf: { type: 'string', default: '8' },
  ndf: { type: 'string', default: '8' },
  blocks: { type: 'string', default: '2' },
  data: { type: 'string', default: 'phantom' },
  /** Seed of the weights, the batch sampling and the data split (as in every run of the CLI). */
  seed: { type: 'string', default: '1' },
  asyndgan: { type: 'boolean', default: true },
  /** Also run E with Adam reset every round, at each lr (the Adam-state decision). */
  'adam-reset-E': { type: 'string' },
});
const out = String(v.out);
const updates = Number(v.updates);
const Es = String(v.E).split(',').map(Number);
const lrs = String(v.lr).split(',').map(Number);
const nodes = Number(v.nodes);
const size = Number(v.size);
const batchSize = Number(v['batch-size']);
const seed = Number(v.seed);
const model: Partial<GanConfig> = { ngf: Number(v.ngf), ndf: Number(v.ndf), blocks: Number(v.blocks), seed };
mkdirSync(out, { recursive: true });

interface Row {
  algorithm: FederationAlgorithm;
  seed?: number;
  adam?: 'local' | 'reset';
  E: number;
  lr: number;
  rounds: number;
  generatorUpdates: number;
  heldOutL1: number;
  bytesPerRound: number;
  bytesTotal: number;
  bytesPerGeneratorUpdate: number;
  wallSeconds: number;
}

// The same split the run's server and nodes load (runLocalFederation splits with the config's seed).
const data = await loadDataSource(String(v.data), { size, nodes, seed });
const engine = await init();

/** Mean |G(mask) - real| over the test set, generator in eval mode. */
async function heldOutL1(path: string, cfg: GanConfig): Promise<number> {
  const test = data.test;
  const g = makeGenerator(cfg, test.numClasses, test.modalities.length);
  await loadModule(path, g);
  g.eval();
  let sum = 0;
  let count = 0;
  for (let i = 0; i < test.slices.length; i += 8) {
    const batch = test.slices.slice(i, i + 8);
    const fake = noGrad(() => tidy(() => g.forward(tensor(conditionTensor(batch, test.numClasses), [batch.length, test.numClasses, size, size]))));
    const f = await fake.read();
    fake.dispose();
    const real = imageTensor(batch);
    for (let j = 0; j < f.length; j++) sum += Math.abs(f[j]! - real[j]!);
    count += f.length;
  }
  g.dispose();
  await engine.sync();
  return sum / count;
}

const configs: { algorithm: FederationAlgorithm; E: number; lr: number; adam?: 'reset' }[] = [];
for (const lr of lrs) {
  for (const E of Es) configs.push({ algorithm: 'fedavg-gan', E, lr });
  if (v['adam-reset-E']) configs.push({ algorithm: 'fedavg-gan', E: Number(v['adam-reset-E']), lr, adam: 'reset' });
  if (v.asyndgan) configs.push({ algorithm: 'asyndgan', E: 1, lr });
}
const rows: Row[] = [];
for (const [i, c] of configs.entries()) {
  const name = `${c.algorithm}-E${c.E}-lr${c.lr}${c.adam ? '-adam-reset' : ''}${seed !== 1 ? `-seed${seed}` : ''}`;
  const dir = join(out, name);
  const resultFile = join(dir, 'result.json');
  if (existsSync(resultFile)) {
    rows.push(JSON.parse(readFileSync(resultFile, 'utf8')) as Row);
    console.error(`[${i + 1}/${configs.length}] ${name}: done before`);
    continue;
  }
  const rounds = Math.round(updates / c.E);
  console.error(`[${i + 1}/${configs.length}] ${name}: ${rounds} rounds`);
  const run: FederationRunReport = await runLocalFederation({
    algorithm: c.algorithm, data: String(v.data), nodes, size, batchSize, rounds, localSteps: c.E, out: dir,
    // The same schedule for all: constant, then linear decay over the second half of the updates.
    gan: { ...model, lr: c.lr, decayIters: Math.floor(rounds / 2) }, privacy: 'off', progress: false, ...(c.adam ? { adam: c.adam } : {}),
  });
  const row: Row = {
    algorithm: c.algorithm, seed, ...(c.algorithm === 'fedavg-gan' ? { adam: c.adam ?? 'local' } : {}), E: c.E, lr: c.lr, rounds, generatorUpdates: run.generatorUpdates, heldOutL1: await heldOutL1(run.generator, run.config),
    bytesPerRound: run.bytes.meanPerRound, bytesTotal: run.bytes.total, bytesPerGeneratorUpdate: run.bytes.perGeneratorUpdate, wallSeconds: run.wallSeconds,
  };
  writeFileSync(resultFile, JSON.stringify(row, null, 2));
  console.error(`  held-out L1 ${row.heldOutL1.toFixed(4)}, ${(row.bytesPerRound / 1024).toFixed(1)} KiB/round, ${(row.bytesPerGeneratorUpdate / 1024).toFixed(1)} KiB/update, ${row.wallSeconds.toFixed(0)} s`);
  rows.push(row);
}

const kib = (b: number): string => (b / 1024).toFixed(1);
const md = [
  `Sweep at ${size}x${size}, ${nodes} nodes, batch ${batchSize}, ngf ${model.ngf}, ndf ${model.ndf}, ${model.blocks} blocks, ${updates} generator updates each, data ${data.name}.`,
  '',
  '| algorithm | seed | Adam | E | lr | rounds | generator updates | held-out L1 | KiB / round | KiB / generator update | KiB total | wall s |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.algorithm} | ${r.seed ?? 1} | ${r.adam ?? '-'} | ${r.algorithm === 'asyndgan' ? '-' : r.E} | ${r.lr} | ${r.rounds} | ${r.generatorUpdates} | ${r.heldOutL1.toFixed(4)} | ${kib(r.bytesPerRound)} | ${kib(r.bytesPerGeneratorUpdate)} | ${kib(r.bytesTotal)} | ${r.wallSeconds.toFixed(0)} |`),
].join('\n');
const tag = seed !== 1 ? `-seed${seed}` : '';
writeFileSync(join(out, `sweep${tag}.json`), JSON.stringify({ updates, nodes, size, batchSize, model, rows }, null, 2));
writeFileSync(join(out, `sweep${tag}.md`), md + '\n');
console.log(md);
process.exit(0);
