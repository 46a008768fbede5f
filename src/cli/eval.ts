/**
 * `asyndgan eval --generator G.safetensors --data phantom --out DIR`: the paper's evaluation. A
 * U-Net is trained (same config, seed and iterations each time) on (a) all real data pooled,
 * (b) each node's real data alone, (c) images the generator synthesizes from all nodes' masks,
 * (d) real + synthetic, and tested on the same held-out real slices. Writes:
 *   OUT/eval.json   settings x per-class Dice, HD95, sensitivity, specificity (+ the claim check)
 *   OUT/eval.md     the same as Markdown tables
 *   OUT/eval.png    test images, ground truth, each setting's prediction; bar chart of mean Dice
 * Without --generator a generator is first trained here with the centralized pix2pix trainer for
 * --gan-iters iterations (labelled as such in the reports).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../engine/index.js';
import { concatDatasets } from '../data/index.js';
import { writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import { DEFAULT_GAN_CONFIG, type GanConfig } from '../train/pix2pix.js';
import { generatorSynthesizer, runExperiment, SETTING_KINDS, type SettingKind } from '../eval/experiment.js';
import { loadGenerator, readGeneratorInfo, trainGenerator } from '../eval/generator.js';
import { describeTrainer, markdownReport, pickFigureRows, writeFigure, type EvalReport, type GeneratorProvenance } from '../eval/report.js';
import { DEFAULT_SEGMENTER_CONFIG, type SegmenterConfig } from '../eval/segmenter.js';
import type { ResnetGenerator } from '../models/index.js';
import { loadDataSource } from './data-source.js';
import { int, num, parseOptions, UsageError } from './options.js';

const D = DEFAULT_SEGMENTER_CONFIG;

export async function evalCommand(argv: string[]): Promise<void> {
  const t0 = performance.now();
  const v = parseOptions('eval', '[--generator G.safetensors] [options]', {
    generator: { type: 'string', help: 'generator.safetensors from asyndgan train/server (default: train one here, see --gan-iters)' },
    data: { type: 'string', default: 'phantom', help: 'phantom[:mods] | mricron | brats:DIR | png:IMAGES,LABELS' },
    out: { type: 'string', default: 'runs/eval', help: 'output folder' },
    size: { type: 'string', help: 'image size (default: the generator\'s, else 64)' },
    nodes: { type: 'string', default: '3', help: 'how the data set is split into centers' },
    seed: { type: 'string', help: 'seed of the data split, the segmenter and a generator trained here (default: the generator\'s seed, else 1)' },
    settings: { type: 'string', default: SETTING_KINDS.join(','), help: 'comma list of real-all, real-node, synthetic, real+synthetic' },
    iters: { type: 'string', default: String(D.iters), help: 'segmenter training iterations (every setting)' },
    repeats: { type: 'string', default: '1', help: 'segmenter runs per setting (seeds seg-seed, seg-seed+1, ...)' },
    'seg-seed': { type: 'string', help: 'first segmenter seed (default: --seed)' },
    'batch-size': { type: 'string', default: String(D.batchSize), help: 'segmenter batch size' },
    depth: { type: 'string', default: String(D.depth), help: 'U-Net poolings' },
    width: { type: 'string', default: String(D.width), help: 'U-Net channels of the first block' },
    norm: { type: 'string', default: D.norm, help: 'U-Net normalization: batch | instance' },
    dropout: { type: 'string', default: String(D.dropout), help: 'U-Net bottleneck dropout' },
    lr: { type: 'string', default: String(D.lr), help: 'segmenter Adam learning rate' },
    'dice-weight': { type: 'string', default: String(D.diceWeight), help: 'weight of the soft Dice loss next to cross-entropy' },
    'gan-iters': { type: 'string', default: '300', help: 'without --generator: centralized pix2pix iterations' },
    'gan-ngf': { type: 'string', default: '16', help: 'without --generator: generator filters' },
    'gan-ndf': { type: 'string', default: '16', help: 'without --generator: discriminator filters' },
    'gan-blocks': { type: 'string', default: '3', help: 'without --generator: generator residual blocks' },
    'figure-rows': { type: 'string', default: '4', help: 'test slices shown in eval.png' },
  }, argv);

  const settings = String(v.settings).split(',').map((s) => s.trim()).filter(Boolean) as SettingKind[];
  for (const s of settings) if (!SETTING_KINDS.includes(s)) throw new UsageError(`--settings: unknown setting "${s}" (use ${SETTING_KINDS.join(', ')})`);
  const needGenerator = settings.includes('synthetic') || settings.includes('real+synthetic');
  const genPath = v.generator !== undefined ? String(v.generator) : undefined;
  const genInfo = genPath && needGenerator ? await readGeneratorInfo(genPath) : undefined;
  const size = v.size !== undefined ? int(v, 'size') : (genInfo?.size ?? 64);
  const seed = v.seed !== undefined ? int(v, 'seed') : (genInfo?.config.seed ?? 1);
  if (genInfo && genInfo.size !== size) throw new UsageError(`--size ${size}: the generator was trained at ${genInfo.size}x${genInfo.size}`);
  const norm = String(v.norm);
  if (norm !== 'batch' && norm !== 'instance') throw new UsageError(`--norm must be batch or instance, got "${norm}"`);
  const seg: SegmenterConfig = {
    depth: int(v, 'depth'),
    width: int(v, 'width'),
    norm,
    dropout: num(v, 'dropout'),
    iters: int(v, 'iters'),
    batchSize: int(v, 'batch-size'),
    lr: num(v, 'lr'),
    diceWeight: num(v, 'dice-weight'),
    seed: v['seg-seed'] !== undefined ? int(v, 'seg-seed') : seed,
  };
  const repeats = int(v, 'repeats');
  if (repeats < 1) throw new UsageError('--repeats must be at least 1');
  if (size % 2 ** seg.depth !== 0) throw new UsageError(`--size ${size} must be a multiple of 2^depth = ${2 ** seg.depth}`);
  const out = String(v.out);
  mkdirSync(out, { recursive: true });

  const data = await loadDataSource(String(v.data), { size, nodes: int(v, 'nodes'), seed });
  const test = data.test;
  if (test.slices.length === 0) throw new Error(`${data.name}: no held-out test slices`);
  const engine = await init();
  console.error(`asyndgan eval: ${data.name}, ${data.nodes.length} nodes (${data.nodes.map((d) => d.slices.length).join('/')} slices), ` +
    `${test.slices.length} test slices, ${size}x${size}, adapter ${engine.gpu.adapterName}`);

  let generator: ResnetGenerator | undefined;
  let provenance: GeneratorProvenance | undefined;
  if (needGenerator) {
    if (genPath) {
      const g = await loadGenerator(genPath);
      checkGenerator(g.info, test.numClasses, test.modalities);
      generator = g.generator;
      provenance = { source: 'file', trainer: g.info.trainer ?? 'unknown', path: genPath, info: g.info };
      console.error(`generator: ${describeTrainer(provenance.trainer, g.info)}, ${genPath}`);
    } else {
      const ganIters = int(v, 'gan-iters');
      const cfg: GanConfig = {
        ...DEFAULT_GAN_CONFIG,
        ngf: int(v, 'gan-ngf'),
        ndf: int(v, 'gan-ndf'),
        blocks: int(v, 'gan-blocks'),
        iters: ganIters,
        decayIters: Math.floor(ganIters / 2),
        seed,
      };
      console.error(`no --generator: training one here with the CENTRALIZED pix2pix trainer (${ganIters} iterations, ngf ${cfg.ngf}, ${cfg.blocks} blocks)`);
      const g = await trainGenerator(concatDatasets(data.nodes), cfg);
      generator = g.generator;
      provenance = { source: 'trained-here', trainer: 'centralized', info: g.info, trainSeconds: g.seconds };
    }
  }

  const synthesize = generator ? generatorSynthesizer(generator, test.numClasses) : undefined;
  const run = await runExperiment(
    { nodes: data.nodes, test, ...(synthesize ? { synthesize } : {}) },
    {
      segmenter: seg,
      settings,
      repeats,
      onSetting: (r) => console.error(`  ${r.id}: mean foreground Dice ${r.foregroundDice.mean.toFixed(3)}` +
        (repeats > 1 ? ` ± ${r.foregroundDice.std.toFixed(3)} over ${repeats} runs` : '') +
        `, HD95 ${r.metrics.foreground.hd95.toFixed(2)} px (${r.trainSeconds.toFixed(0)} s)`),
    },
  );

  const rows = pickFigureRows(test, int(v, 'figure-rows'));
  const synthRows = synthesize ? await synthesize(rows.map((i) => test.slices[i]!)) : undefined;
  generator?.dispose();
  const report: EvalReport = {
    command: 'eval',
    data: data.name,
    ...(provenance ? { generator: provenance } : {}),
    results: run.results,
    seconds: (performance.now() - t0) / 1000,
  };
  await writeFigure(join(out, 'eval.png'), {
    test,
    results: run.results,
    predictions: run.predictions,
    rows,
    ...(synthRows ? { synthetic: synthRows } : {}),
  });
  await writeFileAtomic(join(out, 'eval.md'), markdownReport(report));
  const path = join(out, 'eval.json');
  await writeJsonAtomic(path, report);
  console.log(`report: ${path}`);
}

function checkGenerator(info: { conditionChannels: number; imageChannels: number; modalities: string[] }, numClasses: number, modalities: string[]): void {
  if (info.conditionChannels !== numClasses) {
    throw new UsageError(`the generator takes ${info.conditionChannels}-class masks, the data has ${numClasses} classes`);
  }
  if (info.imageChannels !== modalities.length || info.modalities.join(',') !== modalities.join(',')) {
    throw new UsageError(`the generator makes [${info.modalities.join(', ')}], the data has [${modalities.join(', ')}]`);
  }
}
