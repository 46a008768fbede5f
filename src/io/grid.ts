/**
 * Image grids: many equally sized tiles (e.g. mask | real | fake per hospital) laid out in rows
 * and columns with padding, optional labels (never cut off) and a colour legend, for sample
 * sheets written during training.
 */
import { blit, createImage, fillRect, strokeRect, upscaleNearest, WHITE, type Rgb, type RgbImage } from './canvas.js';
import { drawText, fitText, FONT_CAP_HEIGHT, measureText, widestWord, wrapText } from './font.js';

/** Options for composeGrid. */
export interface GridOptions {
  /** Tiles per row (default: all tiles in one row). */
  cols?: number;
  /** Pixels between tiles and around the border (default 4). */
  padding?: number;
  /** Background colour (default white). */
  background?: Rgb;
  /** Text colour (default black). */
  textColor?: Rgb;
  /** Integer nearest-neighbour magnification applied to every tile (default 1). */
  scale?: number;
  /** Text magnification (default 1). */
  textScale?: number;
  /** Caption above each tile (same order as tiles; missing or empty entries leave no text). */
  titles?: readonly (string | undefined)[];
  /** Caption at the top of the sheet. */
  title?: string;
  /** Labels left of each row. */
  rowLabels?: readonly string[];
  /** Labels above each column (above the tile captions). */
  colLabels?: readonly string[];
  /** Colour legend under the grid, e.g. the mask classes (labelColor(k) and the class names). */
  legend?: readonly LegendEntry[];
}

/** One entry of a colour legend: a swatch and its label. */
export interface LegendEntry {
  label: string;
  color: Rgb;
}

/**
 * Compose tiles into one image: row-major, `cols` per row, all tiles the same size (an error
 * otherwise). Text is never cut: column labels and captions wrap at spaces, and a column is
 * widened (tile centred) when a single word is wider than the tile; the title wraps too.
 */
export function composeGrid(tiles: readonly RgbImage[], opts: GridOptions = {}): RgbImage {
  if (tiles.length === 0) throw new Error('composeGrid: no tiles');
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`composeGrid: scale must be a positive integer, got ${scale}`);
  const tw0 = tiles[0]!.width;
  const th0 = tiles[0]!.height;
  tiles.forEach((t, i) => {
    if (t.width !== tw0 || t.height !== th0) throw new Error(`composeGrid: tile ${i} is ${t.width}x${t.height}, tile 0 is ${tw0}x${th0}`);
  });
  const cols = Math.max(1, Math.min(opts.cols ?? tiles.length, tiles.length));
  const rows = Math.ceil(tiles.length / cols);
  const pad = opts.padding ?? 4;
  const ts = Math.max(1, Math.round(opts.textScale ?? 1));
  const color = opts.textColor ?? [0, 0, 0];
  const tw = tiles[0]!.width * scale;
  const th = th0 * scale;
  const lineH = (FONT_CAP_HEIGHT + 4) * ts; // capitals + room for descenders and a gap

  // Every column as wide as the tile or the widest word above any tile, whichever is more.
  const colLabels = (opts.colLabels ?? []).slice(0, cols);
  const captions = opts.titles ?? [];
  const cw = Math.max(tw, ...[...colLabels, ...captions].map((t) => (t ? widestWord(t, ts) : 0)));
  const wrap = (t: string | undefined): string[] => (t ? wrapText(t, cw, ts) : []);
  const colLabelLines = colLabels.map(wrap);
  const captionLines = tiles.map((_, i) => wrap(captions[i]));
  const colLabelH = Math.max(0, ...colLabelLines.map((l) => l.length)) * lineH;
  const captionH = Math.max(0, ...captionLines.map((l) => l.length)) * lineH;
  const rowLabelW = opts.rowLabels?.some((s) => s)
    ? Math.max(...opts.rowLabels.map((s) => measureText(s, ts).width)) + pad
    : 0;
  const cellH = captionH + th;
  const legend = opts.legend ?? [];
  const swatch = FONT_CAP_HEIGHT * ts;
  const entryW = legend.map((e) => swatch + 3 * ts + measureText(e.label, ts).width);
  const width = Math.max(pad + rowLabelW + cols * (cw + pad), ...entryW.map((w) => w + 2 * pad));
  const titleLines = opts.title ? wrapText(opts.title, width - 2 * pad, ts).map((l) => fitText(l, width - 2 * pad, ts)) : [];
  const titleH = titleLines.length ? titleLines.length * lineH + pad : 0;
  // Legend entries flow left to right, wrapping within the sheet.
  const spots: { x: number; row: number }[] = [];
  let lx = pad;
  let lrow = 0;
  entryW.forEach((w) => {
    if (lx > pad && lx + w > width - pad) {
      lrow++;
      lx = pad;
    }
    spots.push({ x: lx, row: lrow });
    lx += w + 4 * pad;
  });
  const legendH = legend.length ? (lrow + 1) * lineH + pad : 0;
  const height = pad + titleH + colLabelH + rows * (cellH + pad) + legendH;
  const out = createImage(width, height, opts.background ?? WHITE);

  titleLines.forEach((l, k) => drawText(out, l, width / 2, pad + k * lineH, { color, scale: ts, align: 'center' }));
  const gridTop = pad + titleH;
  const gridLeft = pad + rowLabelW;
  colLabelLines.forEach((lines, c) => {
    lines.forEach((l, k) => drawText(out, l, gridLeft + c * (cw + pad) + cw / 2, gridTop + k * lineH, { color, scale: ts, align: 'center' }));
  });
  for (let r = 0; r < rows; r++) {
    const y = gridTop + colLabelH + r * (cellH + pad);
    const label = opts.rowLabels?.[r];
    if (label) drawText(out, label, pad, y + captionH + th / 2 - (FONT_CAP_HEIGHT * ts) / 2, { color, scale: ts });
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (i >= tiles.length) break;
      const x = gridLeft + c * (cw + pad);
      captionLines[i]!.forEach((l, k) => drawText(out, l, x + cw / 2, y + k * lineH, { color, scale: ts, align: 'center' }));
      blit(out, scale === 1 ? tiles[i]! : upscaleNearest(tiles[i]!, scale), x + Math.floor((cw - tw) / 2), y + captionH);
    }
  }
  const legendTop = height - legendH;
  legend.forEach((e, k) => {
    const { x, row } = spots[k]!;
    const y = legendTop + row * lineH;
    fillRect(out, x, y, swatch, swatch, e.color);
    strokeRect(out, x, y, swatch, swatch, [128, 128, 128]);
    drawText(out, e.label, x + swatch + 3 * ts, y, { color, scale: ts });
  });
  return out;
}
