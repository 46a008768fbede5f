/**
 * PNG encoding and decoding with nothing but node:zlib, so sample grids, charts and mask files can
 * be written and read without native image libraries.
 *
 * Encoder: 8-bit gray, gray+alpha, RGB or RGBA, non-interlaced, one IDAT.
 * Decoder: every non-interlaced PNG of bit depth <= 8 (gray 1/2/4/8 bit, gray+alpha, RGB, RGBA,
 * palette 1/2/4/8 bit), plus 16-bit images rounded down to 8 bits. Interlaced (Adam7) files are
 * refused with a clear error. Every chunk's CRC is checked.
 */
import { readFile } from 'node:fs/promises';
import { deflateSync, inflateSync } from 'node:zlib';
import { crc32 } from './crc32.js';
import { writeFileAtomic } from './atomic.js';

/** An 8-bit image, rows top to bottom, channels interleaved (gray / gray+alpha / RGB / RGBA). */
export interface PngImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

/** Row filter for the encoder: 0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth, or per-row best guess. */
export type PngFilter = 0 | 1 | 2 | 3 | 4 | 'adaptive';

/** Encoder options. */
export interface PngEncodeOptions {
  /** Row filter; 'adaptive' (default) picks, per row, the filter with the smallest sum of |residual|. */
  filter?: PngFilter;
  /** zlib level 0-9, default 6. */
  level?: number;
}

const SIGNATURE = Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]);
const COLOR_TYPE_OF_CHANNELS = { 1: 0, 2: 4, 3: 2, 4: 6 } as const;

/** Encode an 8-bit image as PNG. */
export function encodePng(img: PngImage, opts: PngEncodeOptions = {}): Buffer {
  const { width, height, channels, data } = img;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new Error(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(channels in COLOR_TYPE_OF_CHANNELS)) throw new Error(`encodePng: channels must be 1, 2, 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new Error(`encodePng: ${width}x${height}x${channels} needs ${width * height * channels} bytes, data has ${data.length}`);
  }
  const filter = opts.filter ?? 'adaptive';
  if (filter !== 'adaptive' && ![0, 1, 2, 3, 4].includes(filter)) throw new Error(`encodePng: unknown filter ${String(filter)}`);

  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = COLOR_TYPE_OF_CHANNELS[channels];
  // [10] compression 0 (deflate), [11] filter method 0, [12] interlace 0: all zero already.

  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  const candidates = filter === 'adaptive' ? [0, 1, 2, 3, 4] : [filter];
  const scratch = candidates.map(() => new Uint8Array(stride));
  const zeroRow = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const cur = data.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? data.subarray((y - 1) * stride, y * stride) : zeroRow;
    let best = 0;
    let bestScore = Infinity;
    for (let c = 0; c < candidates.length; c++) {
      filterRow(candidates[c]!, cur, prev, channels, scratch[c]!);
      if (candidates.length === 1) break;
      // libpng's heuristic: treat residuals as signed bytes and minimise the sum of magnitudes.
      let score = 0;
      const s = scratch[c]!;
      for (let i = 0; i < stride; i++) score += s[i]! < 128 ? s[i]! : 256 - s[i]!;
      if (score < bestScore) {
        bestScore = score;
        best = c;
      }
    }
    raw[y * (stride + 1)] = candidates[best]!;
    raw.set(scratch[best]!, y * (stride + 1) + 1);
  }
  const idat = deflateSync(raw, { level: opts.level ?? 6 });
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

function filterRow(type: number, cur: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): void {
  const n = cur.length;
  switch (type) {
    case 0:
      out.set(cur);
      break;
    case 1:
      for (let i = 0; i < n; i++) out[i] = cur[i]! - (i >= bpp ? cur[i - bpp]! : 0);
      break;
    case 2:
      for (let i = 0; i < n; i++) out[i] = cur[i]! - prev[i]!;
      break;
    case 3:
      for (let i = 0; i < n; i++) out[i] = cur[i]! - (((i >= bpp ? cur[i - bpp]! : 0) + prev[i]!) >> 1);
      break;
    case 4:
      for (let i = 0; i < n; i++) out[i] = cur[i]! - paeth(i >= bpp ? cur[i - bpp]! : 0, prev[i]!, i >= bpp ? prev[i - bpp]! : 0);
      break;
  }
}

/** Paeth predictor (PNG spec 9.4): whichever of left, up, up-left is closest to left + up - upleft. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  if (pb <= pc) return b;
  return c;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  // The CRC covers the chunk type and data, not the length.
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** Bit depths allowed for each colour type (PNG spec table 11.1) and its samples per pixel. */
const COLOR_TYPES: Record<number, { samples: number; depths: number[]; name: string }> = {
  0: { samples: 1, depths: [1, 2, 4, 8, 16], name: 'grayscale' },
  2: { samples: 3, depths: [8, 16], name: 'RGB' },
  3: { samples: 1, depths: [1, 2, 4, 8], name: 'palette' },
  4: { samples: 2, depths: [8, 16], name: 'gray+alpha' },
  6: { samples: 4, depths: [8, 16], name: 'RGBA' },
};

/**
 * Decode a PNG. Output is 8-bit: gray -> 1 channel, gray+alpha -> 2, RGB -> 3, RGBA -> 4,
 * palette -> 3 (RGB), or 4 (RGBA) when the file has a tRNS chunk. 16-bit samples are rounded to
 * 8 bits; gray of depth 1/2/4 is scaled to 0..255. `source` names the file in errors.
 */
export function decodePng(bytes: Uint8Array, source = '<bytes>'): PngImage {
  const fail = (msg: string): never => {
    throw new Error(`PNG ${source}: ${msg}`);
  };
  if (bytes.length < 8 || !SIGNATURE.every((b, i) => bytes[i] === b)) fail('bad signature (not a PNG file)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let hdr: { width: number; height: number; depth: number; colorType: number; interlace: number } | undefined;
  let palette: Uint8Array | undefined;
  let trns: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (!sawEnd) {
    if (pos + 8 > bytes.length) fail(`truncated: file ends at byte ${bytes.length} before the IEND chunk`);
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) fail(`invalid chunk type ${JSON.stringify(type)} at byte ${pos}`);
    if (len > 0x7fffffff) fail(`chunk ${type} at byte ${pos} has invalid length ${len}`);
    if (pos + 12 + len > bytes.length) {
      fail(`truncated: chunk ${type} at byte ${pos} needs ${len + 12} bytes, only ${bytes.length - pos} remain`);
    }
    const body = bytes.subarray(pos + 8, pos + 8 + len);
    const stored = dv.getUint32(pos + 8 + len);
    const actual = crc32(bytes.subarray(pos + 4, pos + 8 + len));
    if (stored !== actual) fail(`bad CRC in chunk ${type} at byte ${pos} (stored ${hex(stored)}, computed ${hex(actual)})`);
    if (hdr === undefined && type !== 'IHDR') fail(`first chunk is ${type}, expected IHDR`);
    switch (type) {
      case 'IHDR': {
        if (hdr !== undefined) fail('more than one IHDR chunk');
        if (len !== 13) fail(`IHDR is ${len} bytes, expected 13`);
        const bd = new DataView(body.buffer, body.byteOffset, 13);
        hdr = { width: bd.getUint32(0), height: bd.getUint32(4), depth: body[8]!, colorType: body[9]!, interlace: body[12]! };
        const ct = COLOR_TYPES[hdr.colorType];
        if (hdr.width === 0 || hdr.height === 0 || hdr.width > 0x7fffffff || hdr.height > 0x7fffffff) fail(`invalid size ${hdr.width}x${hdr.height}`);
        if (ct === undefined) fail(`invalid colour type ${hdr.colorType}`);
        if (!ct!.depths.includes(hdr.depth)) fail(`bit depth ${hdr.depth} is not allowed for ${ct!.name} images`);
        if (body[10] !== 0) fail(`unknown compression method ${body[10]}`);
        if (body[11] !== 0) fail(`unknown filter method ${body[11]}`);
        if (hdr.interlace === 1) fail('interlaced (Adam7) PNGs are not supported; re-save the image without interlacing');
        if (hdr.interlace !== 0) fail(`unknown interlace method ${hdr.interlace}`);
        break;
      }
      case 'PLTE':
        if (len % 3 !== 0 || len === 0 || len > 768) fail(`PLTE length ${len} is not 3 x (1..256)`);
        palette = body;
        break;
      case 'tRNS':
        trns = body;
        break;
      case 'IDAT':
        idat.push(body);
        break;
      case 'IEND':
        sawEnd = true;
        break;
      default:
        // Uppercase first letter = critical chunk: we may not ignore what we do not understand.
        if (type.charCodeAt(0) < 97) fail(`unknown critical chunk ${type}`);
    }
    pos += 12 + len;
  }
  const { width, height, depth, colorType } = hdr!;
  if (idat.length === 0) fail('no IDAT chunk (no image data)');
  if (colorType === 3 && palette === undefined) fail('palette image without a PLTE chunk');

  const samples = COLOR_TYPES[colorType]!.samples;
  const bitsPerPixel = samples * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const expected = height * (stride + 1);
  const outChannels: 1 | 2 | 3 | 4 = colorType === 3 ? (trns ? 4 : 3) : (samples as 1 | 2 | 3 | 4);
  if (width * height * outChannels > 0x7fffffff) fail(`image ${width}x${height} is too large to decode`);

  let raw: Uint8Array;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0]! : Buffer.concat(idat));
  } catch (e) {
    return fail(`image data (IDAT) is corrupt or truncated: ${(e as Error).message}`);
  }
  if (raw.length < expected) fail(`image data is truncated: ${raw.length} bytes after decompression, expected ${expected}`);

  // Undo the row filters in place (filter byte at the start of each row).
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const ft = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const cur = rows.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : undefined;
    if (!unfilterRow(ft, src, cur, prev, bpp)) fail(`row ${y} has invalid filter type ${ft} (must be 0-4)`);
  }

  const out = new Uint8Array(width * height * outChannels);
  if (depth === 8 && colorType !== 3) {
    out.set(rows);
  } else if (depth === 16) {
    for (let i = 0; i < out.length; i++) out[i] = Math.round(((rows[2 * i]! << 8) | rows[2 * i + 1]!) / 257);
  } else {
    // Sub-byte samples (gray or palette indices), or 8-bit palette indices.
    const mask = (1 << depth) - 1;
    const scale = 255 / mask;
    const pal = palette;
    const nPal = pal ? pal.length / 3 : 0;
    for (let y = 0; y < height; y++) {
      const row = rows.subarray(y * stride, (y + 1) * stride);
      for (let x = 0; x < width; x++) {
        const bit = x * depth;
        const v = (row[bit >> 3]! >> (8 - depth - (bit & 7))) & mask;
        const o = (y * width + x) * outChannels;
        if (colorType === 0) {
          out[o] = v * scale;
        } else {
          if (v >= nPal) fail(`pixel (${x}, ${y}) uses palette index ${v} but PLTE has ${nPal} entries`);
          out[o] = pal![3 * v]!;
          out[o + 1] = pal![3 * v + 1]!;
          out[o + 2] = pal![3 * v + 2]!;
          if (outChannels === 4) out[o + 3] = v < trns!.length ? trns![v]! : 255;
        }
      }
    }
  }
  return { width, height, channels: outChannels, data: out };
}

/** Reverse one row's filter into `out`; returns false for an unknown filter type. */
function unfilterRow(type: number, src: Uint8Array, out: Uint8Array, prev: Uint8Array | undefined, bpp: number): boolean {
  const n = src.length;
  switch (type) {
    case 0:
      out.set(src);
      return true;
    case 1:
      for (let i = 0; i < n; i++) out[i] = src[i]! + (i >= bpp ? out[i - bpp]! : 0);
      return true;
    case 2:
      for (let i = 0; i < n; i++) out[i] = src[i]! + (prev ? prev[i]! : 0);
      return true;
    case 3:
      for (let i = 0; i < n; i++) out[i] = src[i]! + (((i >= bpp ? out[i - bpp]! : 0) + (prev ? prev[i]! : 0)) >> 1);
      return true;
    case 4:
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? out[i - bpp]! : 0;
        const b = prev ? prev[i]! : 0;
        const c = prev && i >= bpp ? prev[i - bpp]! : 0;
        out[i] = src[i]! + paeth(a, b, c);
      }
      return true;
    default:
      return false;
  }
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

/** Encode and write a PNG atomically. */
export async function writePng(path: string, img: PngImage, opts?: PngEncodeOptions): Promise<void> {
  await writeFileAtomic(path, encodePng(img, opts));
}

/** Read and decode a PNG file; errors name `path`. */
export async function readPng(path: string): Promise<PngImage> {
  return decodePng(await readFile(path), path);
}
