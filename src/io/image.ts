/**
 * Turning tensors into pictures: float images and label maps to RGB.
 *
 * This module is also the one-stop import for image work: it re-exports the canvas type, drawing
 * primitives and nearest-neighbour upscaling (canvas.ts), the bitmap font (font.ts) and grid
 * composition (grid.ts).
 */
import { createImage, type Rgb, type RgbImage } from './canvas.js';

export * from './canvas.js';
export * from './font.js';
export * from './grid.js';

/**
 * How float values map to 0..255: '-1..1' (tanh generator outputs), '0..1', or 'auto'
 * (min..max of the data; a constant image becomes mid-gray).
 */
export type FloatRange = '-1..1' | '0..1' | 'auto';

/** Options for fromFloat. */
export interface FromFloatOptions {
  /** 1 (gray, replicated to RGB) or 3; default inferred from data.length / (width * height). */
  channels?: 1 | 3;
  /** 'chw' planar (tensor layout, default) or 'hwc' interleaved; irrelevant for 1 channel. */
  layout?: 'chw' | 'hwc';
}

/**
 * Convert a float image (a tensor slice) to RGB. Values are clamped into the range; NaN becomes 0
 * (black) so a diverged model produces a visibly black tile instead of an exception.
 */
export function fromFloat(
  data: ArrayLike<number>,
  width: number,
  height: number,
  range: FloatRange = '-1..1',
  opts: FromFloatOptions = {},
): RgbImage {
  const n = width * height;
  const channels = opts.channels ?? (data.length === n ? 1 : data.length === 3 * n ? 3 : 0);
  if ((channels !== 1 && channels !== 3) || data.length !== n * channels) {
    throw new Error(`fromFloat: ${data.length} values do not make a ${width}x${height} image with ${opts.channels ?? '1 or 3'} channel(s)`);
  }
  let lo = 0;
  let hi = 1;
  if (range === '-1..1') lo = -1;
  else if (range === 'auto') {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) {
      // Constant (or all-NaN) data: show it as mid-gray rather than dividing by zero.
      lo = (Number.isFinite(lo) ? lo : 0) - 1;
      hi = lo + 2;
    }
  }
  const k = 255 / (hi - lo);
  const img = createImage(width, height, [0, 0, 0]);
  const out = img.data;
  const planar = (opts.layout ?? 'chw') === 'chw';
  for (let p = 0; p < n; p++) {
    for (let c = 0; c < 3; c++) {
      const src = channels === 1 ? p : planar ? c * n + p : p * 3 + c;
      const v = (data[src]! - lo) * k;
      // NaN fails both comparisons and falls to 0.
      out[p * 3 + c] = v >= 255 ? 255 : v > 0 ? Math.round(v) : 0;
    }
  }
  return img;
}

/**
 * The fixed label palette: 0 is black (background), then 20 well-separated colours
 * (after Sasha Trubetskoy's 20-colour list; every pair at least ~50 apart in RGB).
 */
export const LABEL_PALETTE: readonly Rgb[] = [
  [0, 0, 0],
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
  [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
  [170, 255, 195], [128, 128, 0], [30, 15, 255], [0, 0, 128], [128, 128, 128],
];

/**
 * Colour of label `k`: LABEL_PALETTE for small labels, and a deterministic hue (golden-angle
 * spacing, alternating lightness) for larger ones such as atlas region codes.
 */
export function labelColor(k: number): Rgb {
  if (k < LABEL_PALETTE.length) return LABEL_PALETTE[k]!;
  const h = (k * 137.508) % 360;
  const l = k % 2 === 0 ? 0.45 : 0.65;
  return hslToRgb(h, 0.75, l);
}

function hslToRgb(h: number, s: number, l: number): Rgb {
  const c = (1 - Math.abs(2 * l - 1)) * s;
  const hp = h / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const [r, g, b] = hp < 1 ? [c, x, 0] : hp < 2 ? [x, c, 0] : hp < 3 ? [0, c, x] : hp < 4 ? [0, x, c] : hp < 5 ? [x, 0, c] : [c, 0, x];
  const m = l - c / 2;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/**
 * Colour a label map (one integer class per pixel, row-major) with labelColor. Values are rounded
 * to the nearest integer (labels often arrive as floats); negative or NaN labels are an error.
 */
export function labelsToImage(labels: ArrayLike<number>, width: number, height: number): RgbImage {
  if (labels.length !== width * height) throw new Error(`labelsToImage: ${labels.length} labels for a ${width}x${height} image`);
  const img = createImage(width, height, [0, 0, 0]);
  const cache = new Map<number, Rgb>();
  for (let p = 0; p < labels.length; p++) {
    const k = Math.round(labels[p]!);
    if (!(k >= 0)) throw new Error(`labelsToImage: label ${labels[p]} at pixel ${p} is not a non-negative integer`);
    let c = cache.get(k);
    if (c === undefined) cache.set(k, (c = labelColor(k)));
    img.data[p * 3] = c[0];
    img.data[p * 3 + 1] = c[1];
    img.data[p * 3 + 2] = c[2];
  }
  return img;
}
