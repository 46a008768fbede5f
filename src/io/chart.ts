/**
 * Two small chart types rendered straight into an RGB canvas (then PNG), so experiment reports
 * need no plotting stack: a grouped bar chart (e.g. Dice/FID per method and hospital) and a line
 * plot (e.g. G and D losses over rounds).
 *
 * Layout, top to bottom: title, legend (one or more rows, never over the data), plot area with
 * light grid lines at "nice" ticks (1, 2, 2.5, 5 x 10^k), tick labels, axis labels.
 */
import { blit, createImage, drawLine, fillCircle, fillRect, imageToPng, WHITE, type Rgb, type RgbImage } from './canvas.js';
import { drawText, fitText, FONT_CAP_HEIGHT, measureText } from './font.js';

/** Series colours (Tableau 10), used in order unless a series sets its own. */
export const SERIES_COLORS: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

const AXIS: Rgb = [64, 64, 64];
const GRID: Rgb = [228, 228, 228];
const TEXT: Rgb = [20, 20, 20];
const SUBTLE: Rgb = [90, 90, 90];

/** Options shared by both chart types. */
export interface ChartCommon {
  title?: string;
  /** Canvas size in pixels (default 800 x 480). */
  width?: number;
  height?: number;
  /** Label of the vertical axis (drawn rotated). */
  yLabel?: string;
  /** Force the value axis range; by default it is fitted to the data and rounded to ticks. */
  yMin?: number;
  yMax?: number;
  /** Text magnification for labels (default 2 when width >= 600, else 1); the title is one step larger. */
  textScale?: number;
  /** Show the legend (default: line plots always, bar charts when there are several series). */
  legend?: boolean;
}

/** A grouped bar chart: one group per category, one bar per series inside each group. */
export interface BarChartSpec extends ChartCommon {
  categories: readonly string[];
  series: readonly { name: string; values: readonly number[]; color?: Rgb }[];
  /** Print each bar's value at its end (default true). */
  valueLabels?: boolean;
  /** Format of value labels (default: 3 significant digits). */
  format?: (v: number) => string;
}

/** A line plot: each series is y over x (x defaults to 0, 1, 2, ...). NaN/Infinity break the line. */
export interface LineChartSpec extends ChartCommon {
  series: readonly { name: string; y: readonly number[]; x?: readonly number[]; color?: Rgb }[];
  xLabel?: string;
  /** Logarithmic value axis (non-positive values are skipped). */
  logY?: boolean;
  /** Draw a dot at each point (default: when no series has more than 40 points). */
  markers?: boolean;
  /** Line width in pixels (default 2). */
  lineWidth?: number;
}

/** Tick positions for an axis. */
export interface Ticks {
  /** Axis range, widened to whole steps when fitted. */
  min: number;
  max: number;
  step: number;
  values: number[];
}

/**
 * "Nice" ticks covering [lo, hi]: a step of 1, 2, 2.5 or 5 x 10^k giving about `target` intervals.
 * With `extend`, min/max are widened outward to whole steps; otherwise they stay lo/hi.
 */
export function niceTicks(lo: number, hi: number, target = 5, extend = true): Ticks {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new Error(`niceTicks: range [${lo}, ${hi}] is not finite`);
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    // A flat series still needs a visible axis: open a window around the value.
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = snap((f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag);
  // Work in whole multiples of the step and snap, so 3 x 0.1 gives 0.3, not 0.30000000000000004.
  const k0 = Math.floor(lo / step + 1e-9);
  const k1 = Math.ceil(hi / step - 1e-9);
  const min = extend ? snap(k0 * step) : lo;
  const max = extend ? snap(k1 * step) : hi;
  const values: number[] = [];
  for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9; k++) values.push(snap(k * step));
  return { min, max, step, values };
}

/** Round away binary floating-point noise (keeps 12 significant digits). */
function snap(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(12));
}

/** Label for a tick value, with just enough decimals for the step (or exponent form). */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-4) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
  const dec = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9) + (Math.abs(step / 10 ** Math.floor(Math.log10(step)) - 2.5) < 1e-9 ? 1 : 0));
  return v.toFixed(Math.min(dec, 10));
}

/** Default value label: up to 3 significant digits, no trailing zeros. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace('e+', 'e');
  return String(Number(v.toPrecision(3)));
}

interface Frame {
  img: RgbImage;
  ts: number;
  /** Plot area [left, right) x [top, bottom) in pixels. */
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/**
 * Draw title and legend, reserve space for axes, and return the plot rectangle.
 * `yTickLabels` are the labels that will sit left of the plot (to size the margin).
 */
function layout(
  spec: ChartCommon,
  legend: { name: string; color: Rgb }[],
  swatch: 'box' | 'line',
  yTickLabels: string[],
  xLabel: string | undefined,
): Frame {
  const width = spec.width ?? 800;
  const height = spec.height ?? 480;
  const ts = Math.max(1, Math.round(spec.textScale ?? (width >= 600 ? 2 : 1)));
  const img = createImage(width, height, WHITE);
  const lineH = (FONT_CAP_HEIGHT + 4) * ts;
  const m = 6 * ts;
  let top = m;
  if (spec.title) {
    const tts = ts + 1;
    drawText(img, fitText(spec.title, width - 2 * m, tts), width / 2, top, { color: TEXT, scale: tts, align: 'center' });
    top += (FONT_CAP_HEIGHT + 5) * tts;
  }
  // Legend: entries flow left to right, wrapping into centred rows.
  if (legend.length > 0) {
    const sw = swatch === 'box' ? FONT_CAP_HEIGHT * ts : 3 * FONT_CAP_HEIGHT * ts;
    const gap = 4 * ts;
    const items = legend.map((e) => ({ ...e, w: sw + gap + measureText(e.name, ts).width }));
    const sep = 4 * gap;
    const rows: (typeof items)[] = [];
    let row: typeof items = [];
    let rowW = 0;
    for (const it of items) {
      const need = row.length > 0 ? rowW + sep + it.w : it.w;
      if (row.length > 0 && need > width - 2 * m) {
        rows.push(row);
        row = [it];
        rowW = it.w;
      } else {
        row.push(it);
        rowW = need;
      }
    }
    rows.push(row);
    for (const row of rows) {
      const total = row.reduce((s, it) => s + it.w, 0) + sep * (row.length - 1);
      let x = Math.round((width - total) / 2);
      for (const it of row) {
        const cy = top + (FONT_CAP_HEIGHT * ts) / 2;
        if (swatch === 'box') fillRect(img, x, top, sw, FONT_CAP_HEIGHT * ts, it.color);
        else drawLine(img, x, cy, x + sw, cy, it.color, Math.max(2, ts + 1));
        drawText(img, it.name, x + sw + gap, top, { color: TEXT, scale: ts });
        x += it.w + sep;
      }
      top += lineH;
    }
  }
  top += m;
  const tickW = Math.max(0, ...yTickLabels.map((s) => measureText(s, ts).width));
  const left = m + (spec.yLabel ? lineH + m : 0) + tickW + 3 * ts + 4;
  // Below the plot: one line of tick or category labels, then the optional axis label.
  const bottom = height - m - lineH - (xLabel ? lineH : 0) - 2 * ts;
  const right = width - 3 * m;
  if (right - left < 20 || bottom - top < 20) throw new Error(`chart: ${width}x${height} is too small for its labels`);
  if (spec.yLabel) {
    drawText(img, fitText(spec.yLabel, bottom - top, ts), m, (top + bottom) / 2, { color: TEXT, scale: ts, rotate: 90, align: 'center' });
  }
  if (xLabel) {
    drawText(img, fitText(xLabel, right - left, ts), (left + right) / 2, height - m - FONT_CAP_HEIGHT * ts, { color: TEXT, scale: ts, align: 'center' });
  }
  return { img, ts, left, right, top, bottom };
}

/** Horizontal grid lines and value-axis tick labels; returns the value-to-pixel mapping. */
function valueAxis(f: Frame, ticks: Ticks, labelOf: (v: number) => string, toUnit: (v: number) => number): (v: number) => number {
  const u0 = toUnit(ticks.min);
  const u1 = toUnit(ticks.max);
  const yOf = (v: number): number => f.bottom - ((toUnit(v) - u0) / (u1 - u0)) * (f.bottom - f.top);
  for (const v of ticks.values) {
    const y = Math.round(yOf(v));
    if (y < f.top - 1 || y > f.bottom + 1) continue;
    fillRect(f.img, f.left, y, f.right - f.left, 1, GRID);
    fillRect(f.img, f.left - 3 * f.ts, y, 3 * f.ts, 1, AXIS);
    drawText(f.img, labelOf(v), f.left - 3 * f.ts - 4, y - Math.floor((FONT_CAP_HEIGHT * f.ts) / 2), { color: SUBTLE, scale: f.ts, align: 'right' });
  }
  return yOf;
}

/** Value-axis ticks: fitted and widened to whole steps, except at an end the caller forced. */
function valueTicks(lo: number, hi: number, forcedMin: number | undefined, forcedMax: number | undefined): Ticks {
  const fitted = niceTicks(lo, hi, 5, true);
  if (forcedMin === undefined && forcedMax === undefined) return fitted;
  return niceTicks(forcedMin ?? fitted.min, forcedMax ?? fitted.max, 5, false);
}

/** Left axis line, and the bottom one unless a zero line inside the plot takes its role. */
function drawAxes(f: Frame, bottomLine = true): void {
  fillRect(f.img, f.left, f.top, 1, f.bottom - f.top + 1, AXIS);
  if (bottomLine) fillRect(f.img, f.left, f.bottom, f.right - f.left, 1, AXIS);
}

function dataRange(values: Iterable<number>, keep: (v: number) => boolean): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v) || !keep(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Render a grouped bar chart. Bars start at 0, so negative values hang below the zero line. */
export function renderBarChart(spec: BarChartSpec): RgbImage {
  const { categories, series } = spec;
  if (categories.length === 0 || series.length === 0) throw new Error('renderBarChart: needs at least one category and one series');
  for (const s of series) {
    if (s.values.length !== categories.length) {
      throw new Error(`renderBarChart: series '${s.name}' has ${s.values.length} values for ${categories.length} categories`);
    }
  }
  const fmt = spec.format ?? formatValue;
  let [dlo, dhi] = dataRange(series.flatMap((s) => s.values), () => true);
  if (!Number.isFinite(dlo)) [dlo, dhi] = [0, 1];
  // Bars grow from 0, so a fitted range always includes it.
  const lo = spec.yMin ?? Math.min(0, dlo);
  let hi = spec.yMax ?? Math.max(0, dhi);
  const showValues = spec.valueLabels ?? true;
  if (showValues && spec.yMax === undefined && hi > 0) {
    // Leave headroom so value labels above the tallest bar stay inside the plot.
    const t0 = niceTicks(lo, hi);
    if (hi > t0.max - 0.08 * (t0.max - t0.min)) hi += 0.12 * (hi - lo);
  }
  const ticks = valueTicks(lo, hi, spec.yMin, spec.yMax);
  const colors = series.map((s, i) => s.color ?? SERIES_COLORS[i % SERIES_COLORS.length]!);
  const f = layout(
    spec,
    (spec.legend ?? series.length > 1) ? series.map((s, i) => ({ name: s.name, color: colors[i]! })) : [],
    'box',
    ticks.values.map((v) => formatTick(v, ticks.step)),
    undefined,
  );
  const yOf = valueAxis(f, ticks, (v) => formatTick(v, ticks.step), (v) => v);
  const ts = f.ts;
  const groupW = (f.right - f.left) / categories.length;
  const barW = Math.max(1, Math.floor((groupW * 0.78) / series.length));
  // Zero line, kept inside the plot when a forced yMin/yMax excludes 0.
  const y0 = Math.round(Math.max(f.top, Math.min(f.bottom, yOf(0))));
  // Value labels at the label size when every one fits across its bar, else one size smaller.
  const fitsAt = (sc: number): boolean => series.every((s) => s.values.every((v) => !Number.isFinite(v) || measureText(fmt(v), sc).width + 3 <= barW));
  const vs = fitsAt(ts) ? ts : Math.max(1, ts - 1);
  categories.forEach((cat, c) => {
    const gx = f.left + c * groupW + (groupW - barW * series.length) / 2;
    series.forEach((s, i) => {
      const v = s.values[c]!;
      if (!Number.isFinite(v)) return;
      const x = Math.round(gx + i * barW);
      const yv = Math.round(Math.max(f.top, Math.min(f.bottom, yOf(v))));
      // Positive bars fill the rows above the zero line, negative ones the rows below it.
      const [yt, yb] = v >= 0 ? [yv, y0] : [y0 + 1, yv + 1];
      // 1 px white gap between neighbouring bars keeps them distinguishable.
      fillRect(f.img, x, yt, Math.max(1, barW - (barW > 3 ? 1 : 0)), Math.max(1, yb - yt), colors[i]!);
      if (showValues) {
        const label = fmt(v);
        const { width: lw } = measureText(label, vs);
        const cx = x + (barW - 1) / 2;
        if (lw + 3 <= barW) {
          const ly = v >= 0 ? yt - FONT_CAP_HEIGHT * vs - 3 : yb + 3;
          drawText(f.img, label, cx, ly, { color: TEXT, scale: vs, align: 'center' });
        } else {
          // Too wide for the bar: write it vertically along the bar's end.
          const lx = Math.round(cx - (FONT_CAP_HEIGHT * vs) / 2);
          if (v >= 0) drawText(f.img, label, lx, yt - 3, { color: TEXT, scale: vs, rotate: 90 });
          else drawText(f.img, label, lx, yb + 3 + lw, { color: TEXT, scale: vs, rotate: 90 });
        }
      }
    });
    const name = fitText(cat, Math.max(0, groupW - 2 * ts), ts);
    drawText(f.img, name, f.left + (c + 0.5) * groupW, f.bottom + 4 * ts, { color: TEXT, scale: ts, align: 'center' });
  });
  // With negative bars the zero line is the baseline; a bottom line would clip the lowest bar.
  drawAxes(f, ticks.min >= 0);
  if (ticks.min < 0 && ticks.max > 0) fillRect(f.img, f.left, y0, f.right - f.left, 1, AXIS);
  return f.img;
}

/** Render a line plot of one or more series. */
export function renderLineChart(spec: LineChartSpec): RgbImage {
  const { series } = spec;
  if (series.length === 0) throw new Error('renderLineChart: needs at least one series');
  for (const s of series) {
    if (s.x !== undefined && s.x.length !== s.y.length) throw new Error(`renderLineChart: series '${s.name}' has ${s.x.length} x for ${s.y.length} y`);
  }
  const logY = spec.logY ?? false;
  const xs = (s: LineChartSpec['series'][number]): readonly number[] => s.x ?? s.y.map((_, i) => i);
  let [xlo, xhi] = dataRange(series.flatMap((s) => xs(s)), () => true);
  if (!Number.isFinite(xlo)) [xlo, xhi] = [0, 1];
  let [ylo, yhi] = dataRange(series.flatMap((s) => s.y), (v) => !logY || v > 0);
  if (!Number.isFinite(ylo)) [ylo, yhi] = logY ? [1, 10] : [0, 1];
  ylo = spec.yMin ?? ylo;
  yhi = spec.yMax ?? yhi;

  let yt: Ticks;
  let toUnit: (v: number) => number;
  let ylabel: (v: number) => string;
  if (logY) {
    toUnit = Math.log10;
    const e0 = Math.floor(Math.log10(ylo) + 1e-9);
    const e1 = Math.max(e0 + 1, Math.ceil(Math.log10(yhi) - 1e-9));
    const values: number[] = [];
    const decades = e1 - e0;
    for (let e = e0; e <= e1; e++) {
      values.push(10 ** e);
      if (decades <= 2 && e < e1) values.push(2 * 10 ** e, 5 * 10 ** e);
    }
    yt = { min: spec.yMin ?? 10 ** e0, max: spec.yMax ?? 10 ** e1, step: 0, values };
    ylabel = (v) => formatValue(v);
  } else {
    yt = valueTicks(ylo, yhi, spec.yMin, spec.yMax);
    toUnit = (v) => v;
    ylabel = (v) => formatTick(v, yt.step);
  }
  // x axis: data range exactly (no widening), ticks at nice values inside it.
  const xt = niceTicks(xlo, xhi, 6, false);
  const colors = series.map((s, i) => s.color ?? SERIES_COLORS[i % SERIES_COLORS.length]!);
  const f = layout(
    spec,
    (spec.legend ?? true) ? series.map((s, i) => ({ name: s.name, color: colors[i]! })) : [],
    'line',
    yt.values.map(ylabel),
    spec.xLabel,
  );
  const ts = f.ts;
  const yOf = valueAxis(f, yt, ylabel, toUnit);
  // Inset so that points at the x extremes are not drawn on the axis line.
  const inset = 4 * ts;
  const xOf = (v: number): number => f.left + inset + ((v - xt.min) / (xt.max - xt.min || 1)) * (f.right - f.left - 2 * inset);
  for (const v of xt.values) {
    const x = Math.round(xOf(v));
    fillRect(f.img, x, f.top, 1, f.bottom - f.top, GRID);
    fillRect(f.img, x, f.bottom, 1, 3 * ts, AXIS);
    drawText(f.img, formatTick(v, xt.step), x, f.bottom + 4 * ts + 1, { color: SUBTLE, scale: ts, align: 'center' });
  }

  // Draw the data on a copy of the plot area so lines outside a forced y range are clipped. Where
  // the range is fitted, the copy reaches a few pixels further so markers on the extreme ticks are
  // not cut in half.
  const markersDefault = Math.max(...series.map((s) => s.y.length)) <= 40;
  const markers = spec.markers ?? markersDefault;
  const lw = spec.lineWidth ?? Math.max(2, ts);
  const spill = Math.ceil(lw + 2);
  const ox = f.left + 1;
  const oy = Math.max(0, f.top - (spec.yMax === undefined ? spill : 0));
  const pw = f.right - f.left - 1;
  const ph = Math.min(f.img.height, f.bottom + (spec.yMin === undefined ? spill : 0)) - oy;
  const plot = createImage(pw, ph);
  for (let y = 0; y < ph; y++) {
    const s = ((oy + y) * f.img.width + ox) * 3;
    plot.data.set(f.img.data.subarray(s, s + pw * 3), y * pw * 3);
  }
  series.forEach((s, i) => {
    const x = xs(s);
    let prev: [number, number] | undefined;
    for (let k = 0; k < s.y.length; k++) {
      const v = s.y[k]!;
      if (!Number.isFinite(v) || !Number.isFinite(x[k]!) || (logY && v <= 0)) {
        prev = undefined; // a gap in the data breaks the line
        continue;
      }
      const p: [number, number] = [xOf(x[k]!) - ox, yOf(v) - oy];
      if (prev) drawLine(plot, prev[0], prev[1], p[0], p[1], colors[i]!, lw);
      else if (!markers) fillCircle(plot, p[0], p[1], lw / 2, colors[i]!); // isolated point stays visible
      if (markers) fillCircle(plot, p[0], p[1], lw + 1, colors[i]!);
      prev = p;
    }
  });
  blit(f.img, plot, ox, oy);
  drawAxes(f);
  return f.img;
}

/** Render a bar chart straight to PNG bytes. */
export function barChartPng(spec: BarChartSpec): Buffer {
  return imageToPng(renderBarChart(spec));
}

/** Render a line plot straight to PNG bytes. */
export function lineChartPng(spec: LineChartSpec): Buffer {
  return imageToPng(renderLineChart(spec));
}
