import t from 'tap';
import {
  barChartPng,
  formatTick,
  formatValue,
  lineChartPng,
  niceTicks,
  renderBarChart,
  renderLineChart,
  SERIES_COLORS,
} from '../src/io/chart.js';
import { getPixel, type Rgb, type RgbImage } from '../src/io/canvas.js';
import { decodePng } from '../src/io/png.js';

const same = (a: Rgb, b: Rgb): boolean => a[0] === b[0] && a[1] === b[1] && a[2] === b[2];

/** Longest vertical run of exactly `color` in column x: [top, length]. */
function vrun(img: RgbImage, x: number, color: Rgb): [number, number] {
  let best: [number, number] = [-1, 0];
  let start = -1;
  for (let y = 0; y <= img.height; y++) {
    const hit = y < img.height && same(getPixel(img, x, y), color);
    if (hit && start < 0) start = y;
    if (!hit && start >= 0) {
      if (y - start > best[1]) best = [start, y - start];
      start = -1;
    }
  }
  return best;
}

/** Tallest bar of `color` between columns x0 and x1: [top, height]. */
function tallest(img: RgbImage, x0: number, x1: number, color: Rgb): [number, number] {
  let best: [number, number] = [-1, 0];
  for (let x = Math.floor(x0); x < x1; x++) {
    const r = vrun(img, x, color);
    if (r[1] > best[1]) best = r;
  }
  return best;
}

/** Mean y of pixels of exactly `color` in column x (NaN if none). */
function centroidY(img: RgbImage, x: number, color: Rgb): number {
  let s = 0;
  let n = 0;
  for (let y = 0; y < img.height; y++) if (same(getPixel(img, x, y), color)) (s += y), n++;
  return n ? s / n : NaN;
}

t.test('niceTicks picks 1/2/2.5/5 steps and covers the range', async (t) => {
  const a = niceTicks(0, 0.812);
  t.equal(a.step, 0.2);
  t.equal(a.min, 0);
  t.ok(Math.abs(a.max - 1) < 1e-12);
  t.same(a.values.map((v) => +v.toFixed(10)), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  const b = niceTicks(-12.5, 150);
  t.same([b.step, b.min, b.max, b.values], [50, -50, 150, [-50, 0, 50, 100, 150]]);
  const c = niceTicks(1, 16, 6, false);
  t.same([c.min, c.max, c.step, c.values], [1, 16, 2.5, [2.5, 5, 7.5, 10, 12.5, 15]], 'no widening: ticks inside the data range');
  const flat = niceTicks(3, 3);
  t.ok(flat.min < 3 && flat.max > 3, 'a flat range still gets a window');
  t.ok(niceTicks(0, 0).max > 0);
  t.throws(() => niceTicks(0, Infinity), /not finite/);
  for (const [lo, hi] of [[0, 1e-5], [-3, 7], [1234, 98765], [0.1, 0.13]] as const) {
    const tk = niceTicks(lo, hi);
    t.ok(tk.min <= lo && tk.max >= hi && tk.values.length >= 2 && tk.values.length <= 12, `[${lo}, ${hi}] -> ${tk.values.length} ticks of ${tk.step}`);
  }
});

t.test('tick and value labels', async (t) => {
  t.equal(formatTick(0.6000000000000001, 0.2), '0.6');
  t.equal(formatTick(7.5, 2.5), '7.5');
  t.equal(formatTick(100, 50), '100');
  t.equal(formatTick(0.125, 0.025), '0.125');
  t.equal(formatTick(0, 0.1), '0');
  t.equal(formatTick(2e-5, 1e-5), '2e-5');
  t.equal(formatValue(0.81234), '0.812');
  t.equal(formatValue(150.25), '150');
  t.equal(formatValue(-0.0004), '-4.00e-4');
  t.equal(formatValue(3), '3');
});

t.test('bar heights are proportional to the values; negatives hang below zero', async (t) => {
  const c0 = SERIES_COLORS[0]!;
  const img = renderBarChart({ categories: ['a', 'b'], series: [{ name: 's', values: [1, 2] }], width: 400, height: 300, valueLabels: false });
  t.same([img.width, img.height], [400, 300]);
  const [top1, h1] = tallest(img, 0, 200, c0);
  const [top2, h2] = tallest(img, 200, 400, c0);
  t.ok(h1 > 20, `bar a is drawn (${h1} px)`);
  t.ok(Math.abs(h2 / h1 - 2) < 0.05, `bar b is twice as tall as bar a (${h2} vs ${h1})`);
  t.equal(top1 + h1, top2 + h2, 'both start from the same baseline');

  const neg = renderBarChart({ categories: ['up', 'down'], series: [{ name: 's', values: [1, -1] }], width: 400, height: 300, valueLabels: false });
  const [pt, ph] = tallest(neg, 0, 200, c0);
  const [nt, nh] = tallest(neg, 200, 400, c0);
  t.ok(Math.abs(ph - nh) <= 1, `equal magnitudes give equal lengths (${ph}, ${nh})`);
  t.ok(Math.abs(pt + ph - nt) <= 1, 'the negative bar starts where the positive one ends (the zero line)');

  // Two series: both colours appear, one bar per category each.
  const two = renderBarChart({ categories: ['x', 'y', 'z'], series: [{ name: 'A', values: [1, 2, 3] }, { name: 'B', values: [3, 2, 1] }], valueLabels: false });
  const a = [0, 1, 2].map((i) => tallest(two, (i * two.width) / 3, ((i + 1) * two.width) / 3, SERIES_COLORS[0]!)[1]);
  const b = [0, 1, 2].map((i) => tallest(two, (i * two.width) / 3, ((i + 1) * two.width) / 3, SERIES_COLORS[1]!)[1]);
  t.ok(a[0]! < a[1]! && a[1]! < a[2]!, `series A grows: ${a}`);
  t.ok(b[0]! > b[1]! && b[1]! > b[2]!, `series B shrinks: ${b}`);
  t.ok(Math.abs(a[0]! - b[2]!) <= 1 && Math.abs(a[2]! - b[0]!) <= 1, 'equal values, equal bars across series');
});

t.test('value labels, titles and legends add ink', async (t) => {
  const spec = { categories: ['a', 'b'], series: [{ name: 's', values: [0.5, 0.75] }], width: 300, height: 200 };
  const withLabels = renderBarChart(spec);
  const without = renderBarChart({ ...spec, valueLabels: false });
  let diff = 0;
  for (let i = 0; i < withLabels.data.length; i++) if (withLabels.data[i] !== without.data[i]) diff++;
  t.ok(diff > 20, `value labels drawn (${diff} bytes differ)`);
  const titled = renderBarChart({ ...spec, valueLabels: false, title: 'T', legend: true });
  const [, hT] = tallest(titled, 0, 150, SERIES_COLORS[0]!);
  const [, h0] = tallest(without, 0, 150, SERIES_COLORS[0]!);
  t.ok(hT < h0, 'title and legend take vertical room from the plot');
  t.throws(() => renderBarChart({ categories: ['a'], series: [{ name: 's', values: [1, 2] }] }), /series 's' has 2 values for 1 categories/);
  t.throws(() => renderBarChart({ categories: [], series: [] }), /at least one category/);
  t.throws(() => renderBarChart({ ...spec, width: 40, height: 30 }), /too small/);
});

t.test('line plot: a straight line stays straight (linear and log axes)', async (t) => {
  const col: Rgb = [200, 0, 0];
  for (const [logY, y] of [[false, [0, 1, 2, 3, 4]], [true, [1, 10, 100, 1000, 10000]]] as const) {
    const img = renderLineChart({ series: [{ name: 's', y, color: col }], legend: false, width: 400, height: 300, markers: false, logY });
    const xs: number[] = [];
    for (let x = 0; x < img.width; x++) if (!Number.isNaN(centroidY(img, x, col))) xs.push(x);
    t.ok(xs.length > 200, `the line spans the plot (${xs.length} columns)`);
    const x0 = xs[5]!;
    const x1 = xs[xs.length - 6]!;
    const xm = Math.round((x0 + x1) / 2);
    const y0 = centroidY(img, x0, col);
    const y1 = centroidY(img, x1, col);
    t.ok(y1 < y0 - 100, `${logY ? 'log' : 'linear'}: rising data goes up the image`);
    const ym = centroidY(img, xm, col);
    t.ok(Math.abs(ym - (y0 + y1) / 2) < 2, `${logY ? 'log' : 'linear'}: midpoint on the straight line (${x0},${y0}) (${xm},${ym}) (${x1},${y1})`);
  }
});

t.test('line plot: NaN breaks the line; x values are honoured', async (t) => {
  const col: Rgb = [0, 150, 0];
  const img = renderLineChart({ series: [{ name: 's', y: [1, 1, NaN, 1, 1], color: col }], legend: false, width: 400, height: 300, markers: false });
  const hit = (x: number): boolean => !Number.isNaN(centroidY(img, x, col));
  const cols = Array.from({ length: img.width }, (_, x) => hit(x));
  const first = cols.indexOf(true);
  const last = cols.lastIndexOf(true);
  const gap = cols.slice(first, last).filter((h) => !h).length;
  t.ok(gap > 80, `a gap of ${gap} columns where the NaN is`);

  // Uneven x: the kink at x=1 sits 1/10 of the way along, not 1/2.
  const k = renderLineChart({ series: [{ name: 's', x: [0, 1, 10], y: [0, 1, 1], color: col }], legend: false, width: 400, height: 300, markers: false });
  const ks: number[] = [];
  for (let x = 0; x < k.width; x++) if (!Number.isNaN(centroidY(k, x, col))) ks.push(x);
  const top = Math.min(...ks.map((x) => centroidY(k, x, col)));
  const firstFlat = ks.find((x) => centroidY(k, x, col) <= top + 1)!;
  const frac = (firstFlat - ks[0]!) / (ks[ks.length - 1]! - ks[0]!);
  t.ok(frac > 0.05 && frac < 0.16, `kink at ${frac.toFixed(3)} of the width`);

  t.throws(() => renderLineChart({ series: [{ name: 's', x: [1, 2], y: [1] }] }), /has 2 x for 1 y/);
  t.throws(() => renderLineChart({ series: [] }), /at least one series/);
});

t.test('charts encode to PNGs that decode to the same pixels', async (t) => {
  const bar = { title: 'Dice', categories: ['A', 'B'], series: [{ name: 'x', values: [0.7, 0.8] }, { name: 'y', values: [0.6, 0.9] }] };
  const png = decodePng(barChartPng(bar));
  t.ok(Buffer.from(png.data).equals(Buffer.from(renderBarChart(bar).data)));
  const line = { title: 'Loss', series: [{ name: 'G', y: [3, 2, 1.5, 1.2] }], xLabel: 'round', yLabel: 'loss' };
  const png2 = decodePng(lineChartPng(line));
  t.same([png2.width, png2.height, png2.channels], [800, 480, 3]);
  t.ok(Buffer.from(png2.data).equals(Buffer.from(renderLineChart(line).data)));
});
