/**
 * Reports of the segmentation evaluation: the Markdown tables (eval.md) and the figure (eval.png:
 * sample test images, ground truth, each setting's prediction, and a bar chart of mean foreground
 * Dice per setting). The JSON report is the `EvalReport` object itself.
 */
import type { Dataset } from '../data/index.js';
import {
  blit, composeGrid, createImage, fromFloat, labelsToImage, renderBarChart, saveImagePng, type RgbImage,
} from '../io/index.js';
import type { ExperimentResults, SettingResult } from './experiment.js';
import type { Stat } from './metrics.js';
import type { GeneratorInfo, GeneratorTrainer } from './generator.js';

/** Where the generator came from, for the report. */
export interface GeneratorProvenance {
  /** 'file': loaded from `path`; 'trained-here': centralized pix2pix trained by `asyndgan eval` itself. */
  source: 'file' | 'trained-here';
  /** How it was trained; 'unknown' for files written before generators recorded it. */
  trainer: GeneratorTrainer | 'unknown';
  path?: string;
  info: GeneratorInfo;
  /** Seconds spent training it here (source 'trained-here'). */
  trainSeconds?: number;
}

/** Everything written to eval.json. */
export interface EvalReport {
  command: 'eval';
  data: string;
  generator?: GeneratorProvenance;
  results: ExperimentResults;
  /** Wall-clock seconds of the whole command. */
  seconds: number;
}

const METRIC_NOTES = [
  'Metrics are computed per test slice and class, then averaged over the slices in which the class occurs in the ground truth or the prediction (mean ± population std).',
  'Dice = 2TP/(2TP+FP+FN): a missed or hallucinated structure counts as 0. Sensitivity = TP/(TP+FN), over slices where the class is in the ground truth. Specificity = TN/(TN+FP).',
  'HD95: 95th percentile of the symmetric distances (pixels, exact Euclidean) between the boundary pixels (4-neighbourhood) of prediction and ground truth; undefined when one of the two is empty: such slices are left out of the mean and counted in brackets as [k undefined].',
  'Foreground = the unweighted mean over the non-background classes of the per-class means.',
];

function fmt(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : 'n/a';
}

function pm(s: Stat, digits = 3): string {
  return s.n === 0 ? 'n/a' : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`;
}

/** One line on how a generator was trained: federated (rounds, nodes), centralized, or unknown. */
export function describeTrainer(trainer: GeneratorTrainer | 'unknown', info: GeneratorInfo): string {
  const c = info.config;
  if (trainer === 'federated') {
    const f = info.federation;
    return `FEDERATED (AsynDGAN server${f ? `, ${f.rounds} rounds, ${f.nodes} nodes` : ''})`;
  }
  if (trainer === 'centralized') return `CENTRALIZED pix2pix on pooled data (${c.iters} iterations)`;
  return 'unknown trainer (the file predates provenance records)';
}

function describeGenerator(g: GeneratorProvenance | undefined): string {
  if (!g) return 'none (no synthetic settings)';
  const c = g.info.config;
  // A federated run's schedule length is its rounds; iterations mean centralized steps.
  const steps = g.trainer === 'federated' ? `${c.iters} rounds` : `${c.iters} iterations`;
  const arch = `ResNet generator ngf ${c.ngf}, ${c.blocks} blocks, ${c.norm} norm, ${steps} at ${g.info.size}x${g.info.size}`;
  if (g.source === 'trained-here') {
    return `**trained here by \`asyndgan eval\` with the CENTRALIZED pix2pix trainer on all nodes' real data pooled (not a federated AsynDGAN generator)**: ${arch}` +
      (g.trainSeconds !== undefined ? `, ${g.trainSeconds.toFixed(0)} s` : '');
  }
  return `**${describeTrainer(g.trainer, g.info)}**: \`${g.path}\` (${arch})`;
}

/** The Markdown report. */
export function markdownReport(r: EvalReport): string {
  const x = r.results;
  const s = x.segmenter;
  const fgClasses = x.classNames.slice(1);
  const lines: string[] = [];
  lines.push('# Segmentation evaluation: real vs synthetic training data', '');
  lines.push(`- data: \`${r.data}\`, ${x.nodeSlices.length} nodes with ${x.nodeSlices.join(' / ')} real training slices; ${x.testSlices} held-out real test slices; ${x.height}x${x.width}; modalities ${x.modalities.join(', ')}`);
  lines.push(`- generator: ${describeGenerator(r.generator)}`);
  if (x.synthetic) lines.push(`- synthetic training set: ${x.synthetic.slices} images from the masks of all nodes (${x.synthetic.seconds.toFixed(1)} s)`);
  const runs = x.seeds.length;
  lines.push(`- segmenter (identical in every setting): U-Net depth ${s.depth}, width ${s.width}, ${s.norm} norm, dropout ${s.dropout}; Adam lr ${s.lr}, batch ${s.batchSize}, ${s.iters} iterations, loss CE + ${s.diceWeight} x soft Dice; ` +
    (runs > 1 ? `${runs} runs per setting with seeds ${x.seeds.join(', ')} (per-class tables pool the slices of all runs)` : `seed ${s.seed}`));
  lines.push(`- total time ${r.seconds.toFixed(0)} s`, '');

  lines.push('## Summary (mean over foreground classes)', '');
  const across = runs > 1 ? ` Dice per run (mean ± std over ${runs} runs) |` : '';
  lines.push(`| setting | training slices | Dice | HD95 (px) | sensitivity | specificity |${across} train time (s) |`);
  lines.push(`|---|---:|---:|---:|---:|---:|${runs > 1 ? '---:|' : ''}---:|`);
  for (const st of x.settings) {
    const f = st.metrics.foreground;
    const spread = runs > 1 ? ` ${pm(st.foregroundDice)} (${st.runs.map((r) => fmt(r.foreground.dice)).join(', ')}) |` : '';
    lines.push(`| ${st.id} | ${st.trainSlices} | ${fmt(f.dice)} | ${fmt(f.hd95, 2)} | ${fmt(f.sensitivity)} | ${fmt(f.specificity)} |${spread} ${st.trainSeconds.toFixed(0)} |`);
  }
  lines.push('');
  if (x.claim) {
    const c = x.claim;
    lines.push(`Paper's claim (synthetic beats every single node and comes close to all real data), on mean foreground Dice${runs > 1 ? ` (average of the ${runs} runs)` : ''}: ` +
      `synthetic ${fmt(c.syntheticDice)} vs single nodes ${fmt(c.worstSingleNodeDice)}..${fmt(c.bestSingleNodeDice)} ` +
      `(${c.beatsEverySingleNode ? 'beats every single node' : 'does NOT beat every single node'}); ` +
      `real, all nodes ${fmt(c.realAllDice)} (gap ${fmt(c.gapToRealAll)}).`, '');
  }

  const perClass = (title: string, pick: (st: SettingResult, c: number) => string, classes: string[], offset: number) => {
    lines.push(`## ${title}`, '');
    lines.push(`| setting | ${classes.join(' | ')} |`);
    lines.push(`|---|${classes.map(() => '---:').join('|')}|`);
    for (const st of x.settings) lines.push(`| ${st.id} | ${classes.map((_, i) => pick(st, i + offset)).join(' | ')} |`);
    lines.push('');
  };
  perClass('Dice per class (mean ± std)', (st, c) => pm(st.metrics.classes[c]!.dice), fgClasses, 1);
  perClass('HD95 per class (pixels, mean ± std)', (st, c) => {
    const k = st.metrics.classes[c]!;
    return pm(k.hd95, 2) + (k.hd95Undefined > 0 ? ` [${k.hd95Undefined} undefined]` : '');
  }, fgClasses, 1);
  perClass('Sensitivity per class', (st, c) => pm(st.metrics.classes[c]!.sensitivity), fgClasses, 1);
  perClass('Specificity per class', (st, c) => pm(st.metrics.classes[c]!.specificity), fgClasses, 1);
  const first = x.settings[0];
  lines.push(`Slices in which each class occurs (ground truth or prediction) for ${first?.id ?? 'n/a'}` +
    (runs > 1 ? `, counted over its ${runs} runs (${x.testSlices} test slices x ${runs})` : ` (of ${x.testSlices} test slices)`) + ': ' +
    (first ? x.classNames.map((n, c) => `${n} ${first.metrics.classes[c]!.slices}`).join(', ') : 'n/a') + '.', '');
  lines.push('## Definitions', '', ...METRIC_NOTES.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

export interface FigureInput {
  test: Dataset;
  results: ExperimentResults;
  predictions: Record<string, Uint8Array[]>;
  /** Indices of the test slices shown (one row each). */
  rows: readonly number[];
  /** Synthetic images for those rows' ground-truth masks (same order), shown next to the real image. */
  synthetic?: readonly Float32Array[];
  title?: string;
}

/** Test slices for the figure: `count` evenly spaced ones, preferring those with the most classes. */
export function pickFigureRows(test: Dataset, count: number): number[] {
  const n = test.slices.length;
  if (n <= count) return test.slices.map((_, i) => i);
  const out: number[] = [];
  for (let r = 0; r < count; r++) {
    const lo = Math.floor((r * n) / count);
    const hi = Math.floor(((r + 1) * n) / count);
    let best = lo;
    let bestClasses = -1;
    for (let i = lo; i < hi; i++) {
      const k = new Set(test.slices[i]!.mask).size;
      if (k > bestClasses) {
        best = i;
        bestClasses = k;
      }
    }
    out.push(best);
  }
  return out;
}

/** Renders the figure: an image grid (rows = test slices) above a bar chart of mean foreground Dice. */
export function renderFigure(f: FigureInput): RgbImage {
  const { test, results } = f;
  const W = test.width;
  const H = test.height;
  const plane = W * H;
  const mod = test.modalities[0] ?? 'image';
  const tiles: RgbImage[] = [];
  const colLabels = [`real ${mod}`, ...(f.synthetic ? [`synth ${mod}`] : []), 'ground truth', ...results.settings.map((s) => s.id)];
  f.rows.forEach((idx, r) => {
    const s = test.slices[idx]!;
    tiles.push(fromFloat(s.image.subarray(0, plane), W, H, '-1..1'));
    if (f.synthetic) tiles.push(fromFloat(f.synthetic[r]!.subarray(0, plane), W, H, '-1..1'));
    tiles.push(labelsToImage(s.mask, W, H));
    for (const st of results.settings) {
      const p = f.predictions[st.id]?.[idx];
      tiles.push(p ? labelsToImage(p, W, H) : createImage(W, H, [0, 0, 0]));
    }
  });
  const scale = W <= 48 ? 3 : W < 96 ? 2 : 1;
  const grid = composeGrid(tiles, {
    cols: colLabels.length,
    colLabels,
    rowLabels: f.rows.map((i) => `test ${i}`),
    title: f.title ?? 'held-out real test slices: ground truth and each setting\'s prediction',
    scale,
  });
  const chart = renderBarChart({
    title: `mean foreground Dice on the real test slices${results.seeds.length > 1 ? ` (average of ${results.seeds.length} runs)` : ''}`,
    categories: results.settings.map((s) => s.id),
    series: [{ name: 'Dice', values: results.settings.map((s) => s.foregroundDice.mean) }],
    yMin: 0,
    yMax: 1,
    width: Math.max(640, grid.width),
    height: 300,
    textScale: 1,
    format: (v) => v.toFixed(3),
  });
  const out = createImage(Math.max(grid.width, chart.width), grid.height + chart.height);
  blit(out, grid, 0, 0);
  blit(out, chart, 0, grid.height);
  return out;
}

export async function writeFigure(path: string, f: FigureInput): Promise<void> {
  await saveImagePng(path, renderFigure(f));
}
