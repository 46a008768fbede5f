/**
 * A minimal 8-bit RGB raster ("canvas") and the drawing primitives that sample grids and charts
 * need: filled rectangles, anti-aliased thick lines, copying one image into another, and
 * nearest-neighbour upscaling (small 64x64 samples stay crisp when enlarged).
 * Kept deliberately tiny: no fonts, no paths, no external libraries.
 */
import { encodePng } from './png.js';
import { writeFileAtomic } from './atomic.js';

/** An RGB colour, each component 0..255. */
export type Rgb = readonly [number, number, number];

/** An 8-bit RGB image: `data[(y * width + x) * 3 + c]`, rows top to bottom. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Common colours. */
export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];

/** A new `width` x `height` image filled with `background` (default white). */
export function createImage(width: number, height: number, background: Rgb = WHITE): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new Error(`createImage: size must be non-negative integers, got ${width}x${height}`);
  }
  const data = new Uint8Array(width * height * 3);
  if (background[0] !== 0 || background[1] !== 0 || background[2] !== 0) {
    for (let i = 0; i < data.length; i += 3) {
      data[i] = background[0];
      data[i + 1] = background[1];
      data[i + 2] = background[2];
    }
  }
  return { width, height, data };
}

/**
 * Blend `color` into pixel (x, y) with opacity `alpha` (0..1). Out-of-bounds and non-integer
 * coordinates are ignored, so callers can draw shapes that cross the edges.
 */
export function blendPixel(img: RgbImage, x: number, y: number, color: Rgb, alpha = 1): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height || !Number.isInteger(x) || !Number.isInteger(y) || !(alpha > 0)) return;
  const i = (y * img.width + x) * 3;
  const d = img.data;
  if (alpha >= 1) {
    d[i] = color[0];
    d[i + 1] = color[1];
    d[i + 2] = color[2];
  } else {
    d[i] = Math.round(d[i]! + (color[0] - d[i]!) * alpha);
    d[i + 1] = Math.round(d[i + 1]! + (color[1] - d[i + 1]!) * alpha);
    d[i + 2] = Math.round(d[i + 2]! + (color[2] - d[i + 2]!) * alpha);
  }
}

/** Colour of pixel (x, y). */
export function getPixel(img: RgbImage, x: number, y: number): Rgb {
  const i = (y * img.width + x) * 3;
  return [img.data[i]!, img.data[i + 1]!, img.data[i + 2]!];
}

/** Fill the axis-aligned rectangle [x, x+w) x [y, y+h), clipped to the image. Coordinates are rounded. */
export function fillRect(img: RgbImage, x: number, y: number, w: number, h: number, color: Rgb, alpha = 1): void {
  const x0 = Math.max(0, Math.round(x));
  const y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(img.width, Math.round(x + w));
  const y1 = Math.min(img.height, Math.round(y + h));
  for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) blendPixel(img, xx, yy, color, alpha);
}

/** Outline of a rectangle, 1 pixel wide, inside [x, x+w) x [y, y+h). */
export function strokeRect(img: RgbImage, x: number, y: number, w: number, h: number, color: Rgb): void {
  fillRect(img, x, y, w, 1, color);
  fillRect(img, x, y + h - 1, w, 1, color);
  fillRect(img, x, y, 1, h, color);
  fillRect(img, x + w - 1, y, 1, h, color);
}

/**
 * Anti-aliased line from (x0, y0) to (x1, y1) of the given width, with round caps. Coordinates are
 * in pixel units where pixel (i, j) covers [i, i+1) x [j, j+1), so (i + 0.5, j + 0.5) is its centre.
 * Coverage is estimated from each pixel centre's distance to the segment: cheap and smooth enough
 * for charts.
 */
export function drawLine(img: RgbImage, x0: number, y0: number, x1: number, y1: number, color: Rgb, width = 1): void {
  const r = width / 2;
  const minX = Math.max(0, Math.floor(Math.min(x0, x1) - r - 1));
  const maxX = Math.min(img.width - 1, Math.ceil(Math.max(x0, x1) + r + 1));
  const minY = Math.max(0, Math.floor(Math.min(y0, y1) - r - 1));
  const maxY = Math.min(img.height - 1, Math.ceil(Math.max(y0, y1) + r + 1));
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len2 = dx * dx + dy * dy;
  for (let py = minY; py <= maxY; py++) {
    for (let px = minX; px <= maxX; px++) {
      const cx = px + 0.5;
      const cy = py + 0.5;
      // Distance from the pixel centre to the closest point of the segment.
      const t = len2 > 0 ? Math.max(0, Math.min(1, ((cx - x0) * dx + (cy - y0) * dy) / len2)) : 0;
      const ex = cx - (x0 + t * dx);
      const ey = cy - (y0 + t * dy);
      const cover = Math.min(1, r + 0.5 - Math.sqrt(ex * ex + ey * ey));
      if (cover > 0) blendPixel(img, px, py, color, cover);
    }
  }
}

/** Anti-aliased filled disc centred on (cx, cy) (same coordinate convention as drawLine). */
export function fillCircle(img: RgbImage, cx: number, cy: number, radius: number, color: Rgb): void {
  drawLine(img, cx, cy, cx, cy, color, radius * 2);
}

/** Copy `src` into `dst` with its top-left corner at (x, y), clipped to `dst`. */
export function blit(dst: RgbImage, src: RgbImage, x: number, y: number): void {
  x = Math.round(x);
  y = Math.round(y);
  const x0 = Math.max(0, -x);
  const x1 = Math.min(src.width, dst.width - x);
  if (x1 <= x0) return;
  for (let sy = Math.max(0, -y); sy < src.height && sy + y < dst.height; sy++) {
    const s = (sy * src.width + x0) * 3;
    dst.data.set(src.data.subarray(s, s + (x1 - x0) * 3), ((sy + y) * dst.width + x + x0) * 3);
  }
}

/** Enlarge by an integer factor, each pixel becoming a factor x factor block (keeps hard edges). */
export function upscaleNearest(img: RgbImage, factor: number): RgbImage {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`upscaleNearest: factor must be a positive integer, got ${factor}`);
  if (factor === 1) return { width: img.width, height: img.height, data: img.data.slice() };
  const out = createImage(img.width * factor, img.height * factor, [0, 0, 0]);
  const rowBytes = out.width * 3;
  for (let y = 0; y < img.height; y++) {
    const row = out.data.subarray(y * factor * rowBytes, (y * factor + 1) * rowBytes);
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * 3;
      for (let d = 0; d < factor; d++) {
        const o = (x * factor + d) * 3;
        row[o] = img.data[s]!;
        row[o + 1] = img.data[s + 1]!;
        row[o + 2] = img.data[s + 2]!;
      }
    }
    // The other rows of the block are copies of the first.
    for (let d = 1; d < factor; d++) out.data.copyWithin((y * factor + d) * rowBytes, y * factor * rowBytes, (y * factor + 1) * rowBytes);
  }
  return out;
}

/** Encode an RGB image as a PNG file's bytes. */
export function imageToPng(img: RgbImage): Buffer {
  return encodePng({ width: img.width, height: img.height, channels: 3, data: img.data });
}

/** Write an RGB image to `path` as PNG, atomically. */
export async function saveImagePng(path: string, img: RgbImage): Promise<void> {
  await writeFileAtomic(path, imageToPng(img));
}
