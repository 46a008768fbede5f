/**
 * `node --import tsx tools/completion-table.ts [--size 32] [--iters 600] [--seed 1] [--out runs/completion-table]`
 *
 * The README's completion table: ONE completion model trained on random missing subsets (no
 * focus), then, for each modality in turn, that modality hidden on every held-out slice and
 * synthesized from the other three. Next to it, measured on the same slices: the per-class mean,
 * the per-class linear regression on the three given modalities, and two ablations trained with
 * the same budget: the same refiner without the linear residual, and the pix2pix ResnetGenerator
 * without it (close to the previous design of `asyndgan complete`). Prints Markdown and writes
 * OUT/completion-table.json.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../src/engine/index.js';
import { concatDatasets, makePhantom } from '../src/data/index.js';
import { writeJsonAtomic } from '../src/io/index.js';
import { COMPLETION_GAN_DEFAULTS, CompletionTrainer, evaluateCompletion, type CompletionOptions, type ImageMetrics } from '../src/train/completion.js';
import { DEFAULT_GAN_CONFIG, type GanConfig } from '../src/train/pix2pix.js';
import { toolArgs } from './tool-args.js';

const v = toolArgs('completion-table', `
usage: node --import tsx tools/completion-table.ts [options]
  --size N          image size (default 32)
  --iters N         training iterations of every model (default 600)
  --batch-size N    (default 16)
  --seed N          phantom and weight seed (default 1)
  --ablations       also train the two ablations (no residual; ResnetGenerator without residual)
  --out DIR         (default runs/completion-table)
`, {
  size: { type: 'string', default: '32' },
  iters: { type: 'string', default: '600' },
  'batch-size': { type: 'string', default: '16' },
  seed: { type: 'string', default: '1' },
  ablations: { type: 'boolean', default: false },
  out: { type: 'string', default: 'runs/completion-table' },
});
const size = Number(v.size);
const iters = Number(v.iters);
const batchSize = Number(v['batch-size']);
const seed = Number(v.seed);
await init();
const data = makePhantom({ size, numNodes: 3, seed });
const train = concatDatasets(data.nodes);
const test = data.test;
const M = train.modalities.length;
// The CLI's defaults (src/cli/complete.ts).
const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ...COMPLETION_GAN_DEFAULTS, iters, decayIters: Math.floor(iters / 2), seed };
const models: { name: string; cfg: GanConfig; options: CompletionOptions }[] = [
  { name: 'completion (refiner + linear residual)', cfg, options: {} },
];
if (v.ablations) {
  models.push({ name: 'refiner, no residual', cfg, options: { residual: false } });
  models.push({ name: 'ResnetGenerator ngf 12 / 3 blocks, no residual', cfg: { ...cfg, ngf: 12, blocks: 3, lr: 2e-3 }, options: { residual: false, generator: 'resnet' } });
}
type Row = Record<string, ImageMetrics>;
const table: Record<string, Row> = Object.fromEntries(train.modalities.map((m) => [m, {}]));
const seconds: Record<string, number> = {};
for (const spec of models) {
  const model = new CompletionTrainer(spec.cfg, train, spec.options);
  const t0 = performance.now();
  let last = 0;
  await model.train(train, {
    batchSize,
    onStep: (iter) => {
      if (performance.now() - last > 10_000) {
        last = performance.now();
        console.error(`${spec.name}: ${iter}/${iters}`);
      }
    },
  });
  seconds[spec.name] = (performance.now() - t0) / 1000;
  for (let m = 0; m < M; m++) {
    const r = await evaluateCompletion(model, train, test, [m]);
    const x = r.evaluation.metrics[train.modalities[m]!]!;
    const row = table[train.modalities[m]!]!;
    row['per-class mean'] = x.classMean;
    row['per-class linear'] = x.classLinear;
    row[spec.name] = x.completion;
  }
}
const methods = ['per-class mean', 'per-class linear', ...models.map((s) => s.name)];
console.log(`phantom ${size}x${size}, seed ${seed}: ${train.slices.length} training slices, ${test.slices.length} held out; ` +
  `${iters} iterations of batch ${batchSize} per model, random missing subsets; the other three modalities given`);
console.log(`\n| missing | ${methods.join(' | ')} |\n|---|${methods.map(() => '---:').join('|')}|`);
for (const [mod, row] of Object.entries(table)) {
  console.log(`| ${mod} | ${methods.map((k) => `${row[k]!.mae.toFixed(4)} / ${row[k]!.psnr.toFixed(2)} dB`).join(' | ')} |`);
}
console.log(`\n(MAE / PSNR on [-1, 1] intensities; training seconds: ${Object.entries(seconds).map(([k, s]) => `${k} ${s.toFixed(0)}`).join(', ')})`);
mkdirSync(String(v.out), { recursive: true });
await writeJsonAtomic(join(String(v.out), 'completion-table.json'), { size, iters, batchSize, seed, config: cfg, table, seconds });
