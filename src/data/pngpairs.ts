/**
 * 2-D data set from two folders of PNG files with the same names: images (grayscale or RGB) and
 * label maps (one class per pixel value, or per RGB colour).
 *
 * Pairs are matched by file name; a file without its partner, an image and label map of different
 * sizes, or a label value outside the declared classes is an error naming the files involved,
 * because silently dropping or misaligning pairs would corrupt training without any symptom.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodePng, type PngImage } from '../io/png.js';
import { clampUnit, resizeBilinear, resizeNearest } from './slices.js';
import type { Dataset, Slice } from './sample.js';

export interface PngPairsOptions {
  imagesDir: string;
  labelsDir: string;
  /**
   * Grayscale label maps: `labelValues[c]` is the pixel value of class c (e.g. [0, 255] for binary
   * masks). Default: the pixel value is the class id.
   */
  labelValues?: number[];
  /** RGB label maps: `labelColors[c]` is the colour of class c. Required for colour label maps. */
  labelColors?: Array<[number, number, number]>;
  /** Number of classes (default: from labelValues / labelColors, else the largest label + 1). */
  numClasses?: number;
  /** Class names (default class0, class1, ...). */
  classNames?: string[];
  /** Resize every pair to this size (labels nearest, images bilinear); default: keep the native size, which must then be the same for all pairs. */
  size?: number | { height: number; width: number };
  /** Channel names (default ['gray'] or ['r', 'g', 'b']). */
  modalities?: string[];
}

/** Largest class count inferred from pixel values without labelValues / numClasses. */
const MAX_INFERRED_CLASSES = 64;

async function listPngs(dir: string, what: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.toLowerCase().endsWith('.png')).sort();
  } catch (e) {
    throw new Error(`PNG pairs: cannot list ${what} folder ${dir}: ${(e as Error).message}`);
  }
}

async function readPngFile(path: string): Promise<PngImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`PNG pairs: cannot read ${path}: ${(e as Error).message}`);
  }
  return decodePng(bytes, path);
}

/** PNG image -> channel-major float image in [-1, 1] (alpha dropped). */
function toImage(png: PngImage): { channels: number; data: Float32Array } {
  const channels = png.channels <= 2 ? 1 : 3;
  const HW = png.width * png.height;
  const out = new Float32Array(channels * HW);
  for (let i = 0; i < HW; i++)
    for (let c = 0; c < channels; c++) out[c * HW + i] = png.data[i * png.channels + c]! / 127.5 - 1;
  return { channels, data: out };
}

/** PNG label map -> class ids, using the value / colour tables. */
function toLabels(png: PngImage, path: string, opts: PngPairsOptions): Uint8Array {
  const HW = png.width * png.height;
  const out = new Uint8Array(HW);
  const ch = png.channels;
  const colour = ch >= 3;
  if (colour && opts.labelColors) {
    const key = (r: number, g: number, b: number): number => (r << 16) | (g << 8) | b;
    const lut = new Map<number, number>();
    opts.labelColors.forEach(([r, g, b], c) => lut.set(key(r, g, b), c));
    for (let i = 0; i < HW; i++) {
      const [r, g, b] = [png.data[i * ch]!, png.data[i * ch + 1]!, png.data[i * ch + 2]!];
      const c = lut.get(key(r, g, b));
      if (c === undefined)
        throw new Error(`${path}: colour (${r}, ${g}, ${b}) at pixel (${i % png.width}, ${Math.floor(i / png.width)}) is not in labelColors`);
      out[i] = c;
    }
    return out;
  }
  const lut = new Int16Array(256).fill(-1);
  if (opts.labelValues) opts.labelValues.forEach((v, c) => (lut[v] = c));
  else for (let v = 0; v < 256; v++) lut[v] = v;
  for (let i = 0; i < HW; i++) {
    const v = png.data[i * ch]!;
    if (colour && (png.data[i * ch + 1] !== v || png.data[i * ch + 2] !== v))
      throw new Error(`${path}: colour label map (pixel (${i % png.width}, ${Math.floor(i / png.width)}) is not gray); pass labelColors`);
    const c = lut[v]!;
    if (c < 0) throw new Error(`${path}: label value ${v} at pixel (${i % png.width}, ${Math.floor(i / png.width)}) is not in labelValues [${opts.labelValues}]`);
    out[i] = c;
  }
  return out;
}

/** Loads all pairs (sorted by file name) into a Dataset. */
export async function loadPngPairs(opts: PngPairsOptions): Promise<Dataset> {
  const [imgs, labs] = await Promise.all([listPngs(opts.imagesDir, 'images'), listPngs(opts.labelsDir, 'labels')]);
  const labSet = new Set(labs);
  const imgSet = new Set(imgs);
  for (const f of imgs)
    if (!labSet.has(f)) throw new Error(`PNG pairs: ${join(opts.imagesDir, f)} has no label map ${join(opts.labelsDir, f)}`);
  for (const f of labs)
    if (!imgSet.has(f)) throw new Error(`PNG pairs: ${join(opts.labelsDir, f)} has no image ${join(opts.imagesDir, f)}`);
  if (imgs.length === 0) throw new Error(`PNG pairs: no .png files in ${opts.imagesDir}`);

  const target = typeof opts.size === 'number' ? { height: opts.size, width: opts.size } : opts.size;
  let H = target?.height ?? -1;
  let W = target?.width ?? -1;
  let channels = -1;
  let firstFile = '';
  let maxLabel = 0;
  let maxLabelFile = '';
  const slices: Slice[] = [];
  for (const f of imgs) {
    const ip = join(opts.imagesDir, f);
    const lp = join(opts.labelsDir, f);
    const [ipng, lpng] = await Promise.all([readPngFile(ip), readPngFile(lp)]);
    if (ipng.width !== lpng.width || ipng.height !== lpng.height)
      throw new Error(`PNG pairs: size mismatch: ${ip} is ${ipng.width}x${ipng.height} but ${lp} is ${lpng.width}x${lpng.height}`);
    const im = toImage(ipng);
    if (channels < 0) {
      channels = im.channels;
      firstFile = ip;
    } else if (im.channels !== channels)
      throw new Error(`PNG pairs: ${ip} has ${im.channels} colour channel(s) but ${firstFile} has ${channels}; convert them to one kind`);
    if (!target) {
      if (H < 0) [H, W] = [ipng.height, ipng.width];
      else if (ipng.height !== H || ipng.width !== W)
        throw new Error(`PNG pairs: ${ip} is ${ipng.width}x${ipng.height} but ${firstFile} is ${W}x${H}; pass \`size\` to resize`);
    }
    let mask = toLabels(lpng, lp, opts);
    let image = im.data;
    if (ipng.height !== H || ipng.width !== W) {
      mask = resizeNearest(mask, ipng.height, ipng.width, H, W);
      image = clampUnit(resizeBilinear(image, ipng.height, ipng.width, H, W, channels));
    }
    for (const v of mask)
      if (v > maxLabel) {
        maxLabel = v;
        maxLabelFile = lp;
      }
    slices.push({ key: f.replace(/\.png$/i, ''), mask, image, modalities: [], meta: { image: ip, labels: lp } });
  }
  const declared = opts.numClasses ?? opts.labelColors?.length ?? opts.labelValues?.length;
  // Inferring the class count from pixel values: a 0/255 binary mask would become 256 classes, so
  // large values must be declared explicitly.
  if (declared === undefined && maxLabel >= MAX_INFERRED_CLASSES)
    throw new Error(
      `PNG pairs: ${maxLabelFile} has label value ${maxLabel}; pass labelValues (e.g. [0, 255] for binary masks) or numClasses`,
    );
  const numClasses = declared ?? maxLabel + 1;
  if (maxLabel >= numClasses) throw new Error(`PNG pairs: label ${maxLabel} found but numClasses is ${numClasses}`);
  const classNames = opts.classNames ?? Array.from({ length: numClasses }, (_, c) => `class${c}`);
  if (classNames.length !== numClasses) throw new Error(`PNG pairs: ${classNames.length} class names for ${numClasses} classes`);
  const modalities = opts.modalities ?? (channels === 1 ? ['gray'] : ['r', 'g', 'b']);
  if (modalities.length !== channels) throw new Error(`PNG pairs: ${modalities.length} modality names for ${channels} channel(s)`);
  for (const s of slices) s.modalities = [...modalities];
  return { height: H, width: W, numClasses, classNames: [...classNames], modalities: [...modalities], slices };
}
