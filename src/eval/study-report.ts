/**
 * Reports of `asyndgan experiment`: experiment.md (the table, comparisons, goals, the split's
 * statistics) and experiment.png (per row: a training image and the prediction on test slices;
 * under it a chart of each row's mean with its 95% interval and every run as a dot).
 */
import type { Dataset } from '../data/index.js';
import { splitStatsMarkdown, type DatasetStats } from '../data/split-stats.js';
import {
  blit, composeGrid, createImage, drawLine, drawText, fillCircle, fillRect, fromFloat, labelsToImage, measureText,
  SERIES_COLORS, type RgbImage,
} from '../io/index.js';
import type { RowResult, StudyResults } from './study.js';

/** Everything in experiment.json. */
export interface ExperimentReport {
  command: 'experiment';
  data: string;
  quick: boolean;
  sizes: Record<string, unknown>;
  split: DatasetStats[];
  results: StudyResults;
  seconds: number;
  notes: string[];
}

const kib = (b: number) => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)}` : 'n/a');

function iv(r: RowResult, key: 'dice' | 'diceForeground' | 'hd95', d = 3): string {
  const i = r[key];
  if (i.n === 0) return r.runs.length > 0 ? 'n/a' : 'not run';
  if (i.n === 1) return `${i.mean.toFixed(d)} (1 run)`;
  return `${i.mean.toFixed(d)} [${i.lo.toFixed(d)}, ${i.hi.toFixed(d)}]`;
}

/** The Markdown report. */
export function experimentMarkdown(r: ExperimentReport): string {
  const x = r.results;
  const s = x.segmenter;
  const L: string[] = [];
  L.push(`# Experiment: real vs federated synthetic training data (\`${r.data}\`${r.quick ? ', --quick' : ''})`, '');
  L.push(`Every row trains the same U-Net (depth ${s.depth}, width ${s.width}, ${s.norm} norm, Adam lr ${s.lr}, batch ${s.batchSize}, ${s.iters} iterations, CE + ${s.diceWeight} x soft Dice) ` +
    `and tests it on the same held-out real slices. Segmenter seeds ${x.segSeeds.join(', ')}; generator seeds ${x.genSeeds.join(', ')} ` +
    `(synthetic rows: every generator seed x every segmenter seed, pooled as independent runs).`, '');
  L.push(`Sizes: ${Object.entries(r.sizes).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join('; ')}.`, '');
  L.push(`Primary metric: **${x.metric}**, mean over test slices, then mean and 95% t-interval over runs [low, high]. ` +
    'A row beats another only when the intervals do not overlap; otherwise the comparison is a tie.', '');
  L.push('| row | runs | Dice [95% CI] | foreground Dice [95% CI] | HD95 px [95% CI] | bytes/round (KiB) | bytes total (KiB) | generator updates | generator wall (s) | segmenter wall (s) |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of x.rows) {
    const w = row.wire;
    const note = row.status === 'partial' ? ' (partial)' : '';
    L.push(`| ${row.id}${note} | ${row.runs.length} | ${iv(row, 'dice')} | ${iv(row, 'diceForeground')} | ${iv(row, 'hd95', 2)} | ` +
      `${w ? kib(w.bytesPerRound) : row.kind === 'real' ? '-' : 'not run'} | ${w ? kib(w.bytesTotal) : row.kind === 'real' ? '-' : 'not run'} | ` +
      `${w ? w.generatorUpdates.toFixed(0) : '-'} | ${w ? w.generatorSeconds.toFixed(0) : '-'} | ${row.segmenterSeconds.toFixed(0)} |`);
  }
  L.push('', 'Bytes: measured on the server\'s sockets in the run (both directions, every frame), mean over generator seeds; real rows move no model traffic. ' +
    'Wall times were measured on a shared machine.', '');
  L.push('## Comparisons (95% intervals)', '');
  for (const c of x.comparisons) L.push(`- ${c.claim}: **${c.status}** (${c.detail})`);
  L.push('', '## Goals', '');
  L.push('| goal | status | measured |', '|---|---|---|');
  for (const g of x.goals) L.push(`| ${g.claim} | **${g.status}** | ${g.detail} |`);
  L.push('', '## Generators', '');
  for (const g of x.generators) {
    L.push(`- ${g.kind} seed ${g.seed}: ${g.generatorUpdates} generator updates, ${kib(g.bytesPerRound)} KiB/round, ${kib(g.bytesTotal)} KiB total, ${g.wallSeconds.toFixed(0)} s` +
      (g.details ? ` (${Object.entries(g.details).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`).join(', ')})` : ''));
  }
  L.push('', '## The split', '', splitStatsMarkdown(r.split), '');
  if (r.notes.length) L.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  L.push(`Total time of this invocation: ${r.seconds.toFixed(0)} s.`, '');
  return L.join('\n');
}

/** Chart: per row the mean (bar), its 95% interval (whisker) and every run (dots). */
function intervalChart(rows: readonly RowResult[], width: number, title: string): RgbImage {
  const H = 320;
  const img = createImage(width, H);
  const left = 50, right = 10, top = 30, bottom = 70;
  const plotH = H - top - bottom;
  const plotW = width - left - right;
  drawText(img, title, left, 8, { color: [20, 20, 20] });
  const y = (v: number) => top + plotH * (1 - Math.max(0, Math.min(1, v)));
  for (let t = 0; t <= 10; t += 2) {
    const yy = Math.round(y(t / 10));
    drawLine(img, left, yy, left + plotW, yy, [228, 228, 228]);
    drawText(img, (t / 10).toFixed(1), 8, yy - 3, { color: [90, 90, 90] });
  }
  const slot = plotW / Math.max(1, rows.length);
  rows.forEach((r, i) => {
    const cx = left + slot * (i + 0.5);
    const bw = Math.max(6, slot * 0.5);
    const color = SERIES_COLORS[i % SERIES_COLORS.length]!;
    if (r.dice.n > 0) {
      fillRect(img, Math.round(cx - bw / 2), Math.round(y(r.dice.mean)), Math.round(bw), Math.round(y(0) - y(r.dice.mean)), color);
      const lo = Math.round(y(r.dice.lo));
      const hi = Math.round(y(r.dice.hi));
      drawLine(img, Math.round(cx), lo, Math.round(cx), hi, [0, 0, 0]);
      drawLine(img, Math.round(cx - bw / 4), lo, Math.round(cx + bw / 4), lo, [0, 0, 0]);
      drawLine(img, Math.round(cx - bw / 4), hi, Math.round(cx + bw / 4), hi, [0, 0, 0]);
      r.runs.forEach((run, k) => fillCircle(img, Math.round(cx + bw / 2 + 4 + (k % 3) * 3), Math.round(y(run.dice)), 1.5, [40, 40, 40]));
    } else {
      drawText(img, 'not run', Math.round(cx - measureText('not run').width / 2), Math.round(y(0.05)), { color: [160, 0, 0] });
    }
    // Centred under the bar, but kept inside the image: the first and last labels are never cut.
    const lw = measureText(r.id).width;
    const lx = Math.max(2, Math.min(width - lw - 2, Math.round(cx - lw / 2)));
    drawText(img, r.id, lx, top + plotH + 8 + (i % 2) * 12, { color: [20, 20, 20] });
  });
  drawLine(img, left, Math.round(y(0)), left + plotW, Math.round(y(0)), [64, 64, 64]);
  return img;
}

/** The figure: per row a training image and its predictions on the figure's test slices, then the chart. */
export function experimentFigure(r: ExperimentReport, test: Dataset, figureSlices: readonly number[]): RgbImage {
  const W = test.width;
  const Hh = test.height;
  const plane = W * Hh;
  const tiles: RgbImage[] = [];
  const cols = 1 + figureSlices.length;
  const colLabels = ['image', ...figureSlices.map((i) => `test ${i}`)];
  // First row: a test image and the ground truth; then per row a training image and its predictions.
  tiles.push(fromFloat(test.slices[figureSlices[0] ?? 0]!.image.subarray(0, plane), W, Hh, '-1..1'));
  for (const i of figureSlices) tiles.push(labelsToImage(test.slices[i]!.mask, W, Hh));
  const rowLabels = ['test: truth'];
  for (const row of r.results.rows) {
    const first = row.runs.find((x) => x.figure);
    tiles.push(first?.sample ? fromFloat(Float32Array.from(first.sample), W, Hh, '-1..1') : createImage(W, Hh, [0, 0, 0]));
    for (let k = 0; k < figureSlices.length; k++) {
      const p = first?.figure?.[k];
      tiles.push(p ? labelsToImage(Uint8Array.from(p), W, Hh) : createImage(W, Hh, [0, 0, 0]));
    }
    rowLabels.push(row.id);
  }
  const grid = composeGrid(tiles, { cols, colLabels, rowLabels, scale: W <= 48 ? 3 : W < 96 ? 2 : 1, title: `${r.data}: per row a training image (first modality) and its predictions (first seeds)` });
  const chart = intervalChart(r.results.rows, Math.max(640, grid.width), `${r.results.metric}: mean, 95% interval, runs (dots)`);
  const out = createImage(Math.max(grid.width, chart.width), grid.height + chart.height);
  blit(out, grid, 0, 0);
  blit(out, chart, 0, grid.height);
  return out;
}
