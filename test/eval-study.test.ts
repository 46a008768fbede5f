/**
 * The experiment's study loop at tiny sizes: every row runs, the files are written, a second run
 * redoes nothing, goals are decided on intervals. The generators come from a stand-in trainer
 * (2 steps of in-process pix2pix, with made-up byte counts) so the test stays within seconds;
 * the real runs train them through runLocalFederation (src/cli/experiment.ts).
 */
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init } from '../src/engine/index.js';
import { concatDatasets, makePhantom } from '../src/data/index.js';
import { splitStats } from '../src/data/split-stats.js';
import { saveImagePng, writeFileAtomic } from '../src/io/index.js';
import { saveModule } from '../src/models/index.js';
import { DEFAULT_GAN_CONFIG } from '../src/train/pix2pix.js';
import { trainGenerator } from '../src/eval/generator.js';
import { GENERATOR_KINDS, checkGoals, primaryMetric, runStudy, scorePredictions, studyRows, summarizeStudy, type GeneratorTrainer, type RowResult, type StudyOptions } from '../src/eval/study.js';
import { experimentFigure, experimentMarkdown, type ExperimentReport } from '../src/eval/study-report.js';
import { tInterval } from '../src/eval/interval.js';

t.test('study: every row, files, resume', async (t) => {
  await init();
  const d = makePhantom({ size: 16, slicesPerNode: 4, testSlices: 3, modalities: ['t1'] });
  const out = mkdtempSync(join(tmpdir(), 'asyndgan-study-'));
  let trained = 0;
  const trainer: GeneratorTrainer = async (kind, seed, dir) => {
    trained++;
    const cfg = { ...DEFAULT_GAN_CONFIG, ngf: 2, ndf: 2, dLayers: 1, blocks: 1, iters: 2, decayIters: 1, seed };
    const g = await trainGenerator(concatDatasets(d.nodes), cfg, { progress: false });
    const path = join(dir, 'generator.safetensors');
    await saveModule(path, g.generator, { asyndgan_generator: JSON.stringify(g.info) });
    g.generator.dispose();
    const perRound = kind === 'fedavg-gan' ? 20000 : 1000;
    return { path, bytesPerRound: perRound, bytesTotal: 2 * perRound, generatorUpdates: 2, wallSeconds: 0.1 };
  };
  const opts: StudyOptions = {
    out, nodes: d.nodes, test: d.test, segmenter: { depth: 1, width: 2, iters: 2, batchSize: 2 },
    segSeeds: [1, 2], genSeeds: [1], kinds: [...GENERATOR_KINDS], trainGenerator: trainer,
    figureSlices: [0, 1], progress: false, log: (l) => { if (/FAILED/.test(l)) t.fail(l); },
  };
  const r = await runStudy(opts);
  t.equal(trained, GENERATOR_KINDS.length, 'one generator per kind trained');
  t.same(r.rows.map((x) => x.id), studyRows(3).map((x) => x.id));
  for (const row of r.rows) {
    t.equal(row.status, 'done', `${row.id} done`);
    t.equal(row.runs.length, 2, `${row.id}: 2 runs`);
    t.ok(row.runs.every((x) => x.dice >= 0 && x.dice <= 1), `${row.id}: Dice in [0, 1]`);
  }
  t.equal(r.rows.find((x) => x.id === 'real-centre-0')!.runs[0]!.trainSlices, 4);
  t.equal(r.rows.find((x) => x.id === 'centre-0+asyndgan')!.runs[0]!.trainSlices, 4 + 12, 'augmentation = centre 0 + synthetic for all masks');
  const bytes = r.goals.find((g) => g.claim.includes('bytes'))!;
  t.equal(bytes.status, 'met', `bytes goal from the records: ${bytes.detail}`);
  const files = readdirSync(join(out, 'runs'));
  t.equal(files.length, (4 + 6) * 2, 'one JSON per row (4 real, 6 synthetic) and seed');

  // Reports render from what is on disk.
  const report: ExperimentReport = { command: 'experiment', data: 'phantom', quick: true, sizes: { size: 16 }, split: splitStats(d.nodes, d.test), results: summarizeStudy(opts), seconds: 1, notes: [] };
  await writeFileAtomic(join(out, 'experiment.md'), experimentMarkdown(report));
  await saveImagePng(join(out, 'experiment.png'), experimentFigure(report, d.test, [0, 1]));
  const md = readFileSync(join(out, 'experiment.md'), 'utf8');
  t.match(md, /\| real-pooled \| 2 \|/);
  t.match(md, /## Goals/);
  t.match(md, /centre 2 \| 4 \|/, 'split statistics table');
  t.ok(statSync(join(out, 'experiment.png')).size > 1000, 'figure written');

  // Resume: nothing is redone.
  const before = files.map((f) => statSync(join(out, 'runs', f)).mtimeMs);
  let logged = '';
  const again = await runStudy({ ...opts, log: (l) => (logged += l + '\n') });
  t.equal(trained, GENERATOR_KINDS.length, 'no generator retrained');
  t.same(readdirSync(join(out, 'runs')).map((f) => statSync(join(out, 'runs', f)).mtimeMs), before, 'no run file rewritten');
  t.match(logged, /resuming, 25 of 25 units/);
  t.same(again.rows.map((x) => x.dice.mean), r.rows.map((x) => x.dice.mean));
  t.ok(existsSync(join(out, 'generators', 'asyndgan-g1.json')));
});

t.test('scores: whole-tumour Dice from label maps', async (t) => {
  const d = makePhantom({ size: 16, slicesPerNode: 1, testSlices: 2, modalities: ['t1'] });
  const m = primaryMetric(d.test.classNames);
  t.same(m.target, [6, 7]);
  const perfect = scorePredictions(d.test.slices.map((s) => s.mask), d.test.slices, d.test, m.target);
  t.equal(perfect.dice, 1);
  t.equal(perfect.diceForeground, 1);
  t.equal(perfect.hd95, 0);
  // Predicting core where the truth says edema is still whole tumour.
  const swapped = d.test.slices.map((s) => s.mask.map((v) => (v === 6 ? 7 : v)));
  t.equal(scorePredictions(swapped, d.test.slices, d.test, m.target).dice, 1);
  const none = d.test.slices.map((s) => s.mask.map((v) => (v >= 6 ? 4 : v)));
  t.equal(scorePredictions(none, d.test.slices, d.test, m.target).dice, 0);
  t.equal(primaryMetric(['background', 'frontal', 'parietal']).target, null, 'no tumour classes: mean foreground Dice');
});

t.test('goals follow the intervals', async (t) => {
  const row = (id: string, values: number[], extra: Partial<RowResult> = {}): RowResult => ({
    id, label: id, kind: 'real', status: 'done', runs: values.map((v) => ({ row: id, genSeed: null, segSeed: 1, dice: v, diceForeground: v, hd95: 1, trainSlices: 1, trainSeconds: 1 })),
    dice: tInterval(values), diceForeground: tInterval(values), hd95: tInterval([1]), segmenterSeconds: 1, ...extra,
  });
  const wire = (b: number) => ({ bytesPerRound: b, bytesTotal: b * 100, generatorUpdates: 100, generatorSeconds: 1, seeds: 2 });
  const rows = [
    row('real-pooled', [0.9, 0.91, 0.89, 0.9, 0.9]),
    row('real-centre-0', [0.5, 0.52, 0.48, 0.5, 0.5], { centre: 0 }),
    row('real-centre-1', [0.84, 0.86, 0.85, 0.85, 0.85], { centre: 1 }),
    row('fedavg-gan', [0.6, 0.62, 0.58, 0.6, 0.6], { kind: 'synthetic', wire: wire(5000) }),
    row('asyndgan', [0.86, 0.87, 0.85, 0.86, 0.86], { kind: 'synthetic', wire: wire(100) }),
  ];
  const { goals, comparisons } = checkGoals(rows, 0);
  const g = Object.fromEntries(goals.map((x) => [x.claim, x.status]));
  t.equal(g['real pooled >= AsynDGAN > FedAvg-GAN'], 'met');
  t.equal(g['AsynDGAN > every single centre'], 'tie', 'asyndgan 0.86 vs centre 1 0.85: intervals overlap');
  t.equal(g['AsynDGAN >= 0.93 x real pooled'], 'met', '0.86 >= 0.837');
  t.equal(g['AsynDGAN >= 10x fewer bytes than FedAvg-GAN (same generator updates)'], 'met');
  t.equal(comparisons.find((c) => c.claim === 'real-pooled vs real-centre-0')!.status, 'met');
  const noFed = checkGoals(rows.filter((r) => r.id !== 'fedavg-gan'), 0).goals;
  t.equal(noFed[0]!.status, 'not run');
});
