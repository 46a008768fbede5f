/**
 * Image grids: many equally sized tiles (e.g. mask | real | fake per hospital) laid out in rows
 * and columns with padding and optional labels, for sample sheets written during training.
 */
import { blit, createImage, upscaleNearest, WHITE, type Rgb, type RgbImage } from './canvas.js';
import { drawText, fitText, FONT_CAP_HEIGHT, measureText } from './font.js';

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
}

/**
 * Compose tiles into one image: row-major, `cols` per row, all tiles the same size (an error
 * otherwise). Text that does not fit its tile is shortened with '..'.
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
  const tw = tw0 * scale;
  const th = th0 * scale;
  const lineH = (FONT_CAP_HEIGHT + 4) * ts; // capitals + room for descenders and a gap

  const hasTitles = opts.titles?.some((s) => s) ?? false;
  const titleH = opts.title ? lineH + pad : 0;
  const colLabelH = opts.colLabels?.some((s) => s) ? lineH : 0;
  const captionH = hasTitles ? lineH : 0;
  const rowLabelW = opts.rowLabels?.some((s) => s)
    ? Math.max(...opts.rowLabels.map((s) => measureText(s, ts).width)) + pad
    : 0;
  const cellH = captionH + th;
  const width = pad + rowLabelW + cols * (tw + pad);
  const height = pad + titleH + colLabelH + rows * (cellH + pad);
  const out = createImage(width, height, opts.background ?? WHITE);

  if (opts.title) drawText(out, fitText(opts.title, width - 2 * pad, ts), width / 2, pad, { color, scale: ts, align: 'center' });
  const gridTop = pad + titleH;
  const gridLeft = pad + rowLabelW;
  opts.colLabels?.forEach((label, c) => {
    if (c < cols && label) {
      drawText(out, fitText(label, tw, ts), gridLeft + c * (tw + pad) + tw / 2, gridTop, { color, scale: ts, align: 'center' });
    }
  });
  for (let r = 0; r < rows; r++) {
    const y = gridTop + colLabelH + r * (cellH + pad);
    const label = opts.rowLabels?.[r];
    if (label) drawText(out, label, pad, y + captionH + th / 2 - (FONT_CAP_HEIGHT * ts) / 2, { color, scale: ts });
    for (let c = 0; c < cols; c++) {
      const i = r * cols + c;
      if (i >= tiles.length) break;
      const x = gridLeft + c * (tw + pad);
      const caption = opts.titles?.[i];
      if (caption) drawText(out, fitText(caption, tw, ts), x + tw / 2, y, { color, scale: ts, align: 'center' });
      blit(out, scale === 1 ? tiles[i]! : upscaleNearest(tiles[i]!, scale), x, y + captionH);
    }
  }
  return out;
}
