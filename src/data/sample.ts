/**
 * In-memory data set types shared by every loader (phantom, NIfTI/BraTS, MRIcron templates, PNG pairs)
 * and the helpers that turn them into the dense NCHW tensors the engine consumes.
 *
 * Conventions (all loaders honour them, `validateDataset` checks them):
 *  - a mask is a label map of class ids 0..numClasses-1, row-major [H*W], 0 = background;
 *  - an image is Float32 in [-1, 1], channel-major [M*H*W] (modality m occupies m*H*W .. (m+1)*H*W),
 *    -1 = no signal, which matches the generator's tanh output range;
 *  - every slice of a data set has the same H, W, modalities and class set.
 */
import { Rng } from '../engine/index.js';

/** Free-form, JSON-serializable provenance of a slice (source file, z index, node, tumour size...). */
export type SliceMeta = Record<string, string | number | boolean>;

/** One 2-D training sample: a label map (the condition) and the co-registered MR image(s). */
export interface Slice {
  /** Unique within its data set; stable across runs (used for logging and split bookkeeping). */
  key: string;
  /** Class ids, [H*W], row-major. */
  mask: Uint8Array;
  /** Intensities in [-1, 1], [M*H*W], channel-major. */
  image: Float32Array;
  /** Modality names in channel order, e.g. ['t1', 't2']; equal to the data set's `modalities`. */
  modalities: string[];
  meta: SliceMeta;
}

/** A set of equally sized slices with one class list and one modality list. */
export interface Dataset {
  height: number;
  width: number;
  numClasses: number;
  /** `classNames[c]` names class id c; length numClasses. */
  classNames: string[];
  modalities: string[];
  slices: Slice[];
}

/** Throws an Error describing the first inconsistency (sizes, modalities, class ids, value range). */
export function validateDataset(ds: Dataset, name = 'dataset'): void {
  const { height: H, width: W, numClasses: C } = ds;
  if (!(Number.isInteger(H) && H > 0 && Number.isInteger(W) && W > 0))
    throw new Error(`${name}: invalid size ${H}x${W}`);
  if (!(Number.isInteger(C) && C >= 1 && C <= 256)) throw new Error(`${name}: invalid numClasses ${C}`);
  if (ds.classNames.length !== C)
    throw new Error(`${name}: ${ds.classNames.length} class names for ${C} classes`);
  const M = ds.modalities.length;
  if (M < 1) throw new Error(`${name}: no modalities`);
  const keys = new Set<string>();
  for (const s of ds.slices) {
    if (keys.has(s.key)) throw new Error(`${name}: duplicate slice key '${s.key}'`);
    keys.add(s.key);
    if (s.mask.length !== H * W)
      throw new Error(`${name}: slice '${s.key}' mask has ${s.mask.length} pixels, expected ${H}x${W}`);
    if (s.image.length !== M * H * W)
      throw new Error(`${name}: slice '${s.key}' image has ${s.image.length} values, expected ${M}x${H}x${W}`);
    if (s.modalities.join(',') !== ds.modalities.join(','))
      throw new Error(`${name}: slice '${s.key}' modalities [${s.modalities}] != [${ds.modalities}]`);
    for (let i = 0; i < s.mask.length; i++)
      if (s.mask[i]! >= C) throw new Error(`${name}: slice '${s.key}' has class id ${s.mask[i]} >= ${C}`);
    for (let i = 0; i < s.image.length; i++) {
      const v = s.image[i]!;
      if (!(v >= -1 && v <= 1)) throw new Error(`${name}: slice '${s.key}' image value ${v} outside [-1, 1]`);
    }
  }
}

/**
 * One-hot condition tensor [N, numClasses, H, W] (NCHW, values 0/1) for the given slices.
 * Why one-hot rather than the raw label map: class ids are categorical, a single scalar channel would
 * impose a fake ordering on the generator's first convolution.
 */
export function conditionTensor(slices: readonly Slice[], numClasses: number, out?: Float32Array): Float32Array {
  if (slices.length === 0) return out ?? new Float32Array(0);
  const HW = slices[0]!.mask.length;
  const size = slices.length * numClasses * HW;
  if (out && out.length !== size) throw new Error(`conditionTensor: out has ${out.length} values, need ${size}`);
  const t = out ?? new Float32Array(size);
  if (out) t.fill(0);
  slices.forEach((s, n) => {
    if (s.mask.length !== HW) throw new Error(`conditionTensor: slice '${s.key}' has a different size`);
    const base = n * numClasses * HW;
    for (let i = 0; i < HW; i++) {
      const c = s.mask[i]!;
      if (c >= numClasses) throw new Error(`conditionTensor: slice '${s.key}' class ${c} >= ${numClasses}`);
      t[base + c * HW + i] = 1;
    }
  });
  return t;
}

/** Image tensor [N, M, H, W] (NCHW): the slices' images concatenated (they already are channel-major). */
export function imageTensor(slices: readonly Slice[], out?: Float32Array): Float32Array {
  if (slices.length === 0) return out ?? new Float32Array(0);
  const per = slices[0]!.image.length;
  const size = slices.length * per;
  if (out && out.length !== size) throw new Error(`imageTensor: out has ${out.length} values, need ${size}`);
  const t = out ?? new Float32Array(size);
  slices.forEach((s, n) => {
    if (s.image.length !== per) throw new Error(`imageTensor: slice '${s.key}' has a different size`);
    t.set(s.image, n * per);
  });
  return t;
}

/** Label tensor [N, H, W] of class ids (targets for the segmenter's cross-entropy). */
export function labelTensor(slices: readonly Slice[]): Uint8Array {
  if (slices.length === 0) return new Uint8Array(0);
  const HW = slices[0]!.mask.length;
  const t = new Uint8Array(slices.length * HW);
  slices.forEach((s, n) => {
    if (s.mask.length !== HW) throw new Error(`labelTensor: slice '${s.key}' has a different size`);
    t.set(s.mask, n * HW);
  });
  return t;
}

/** Pixel count per class over all slices (length numClasses). */
export function classHistogram(ds: Dataset): number[] {
  const h = new Array<number>(ds.numClasses).fill(0);
  for (const s of ds.slices) for (let i = 0; i < s.mask.length; i++) h[s.mask[i]!]!++;
  return h;
}

/** A data set with the same header and the slices at `indices` (shared, not copied). */
export function subsetDataset(ds: Dataset, indices: readonly number[]): Dataset {
  return {
    ...ds,
    classNames: [...ds.classNames],
    modalities: [...ds.modalities],
    slices: indices.map((i) => {
      const s = ds.slices[i];
      if (!s) throw new Error(`subsetDataset: index ${i} out of range (0..${ds.slices.length - 1})`);
      return s;
    }),
  };
}

/** Concatenates data sets with identical headers (size, classes, modalities). */
export function concatDatasets(parts: readonly Dataset[]): Dataset {
  if (parts.length === 0) throw new Error('concatDatasets: no data sets');
  const a = parts[0]!;
  for (const b of parts) {
    if (
      b.height !== a.height ||
      b.width !== a.width ||
      b.numClasses !== a.numClasses ||
      b.classNames.join('\n') !== a.classNames.join('\n') ||
      b.modalities.join(',') !== a.modalities.join(',')
    )
      throw new Error('concatDatasets: data sets differ in size, classes or modalities');
  }
  return { ...a, classNames: [...a.classNames], modalities: [...a.modalities], slices: parts.flatMap((p) => p.slices) };
}

/** Keeps only the named modalities (in the given order), copying the image channels. */
export function selectModalities(ds: Dataset, modalities: readonly string[]): Dataset {
  const idx = modalities.map((m) => {
    const i = ds.modalities.indexOf(m);
    if (i < 0) throw new Error(`selectModalities: '${m}' not in [${ds.modalities}]`);
    return i;
  });
  const HW = ds.height * ds.width;
  return {
    ...ds,
    classNames: [...ds.classNames],
    modalities: [...modalities],
    slices: ds.slices.map((s) => {
      const image = new Float32Array(idx.length * HW);
      idx.forEach((src, dst) => image.set(s.image.subarray(src * HW, (src + 1) * HW), dst * HW));
      return { ...s, image, modalities: [...modalities] };
    }),
  };
}

/** Random train/test split by slice, reproducible from `seed`. */
export function trainTestSplit(
  ds: Dataset,
  opts: { testFraction: number; seed: number },
): { train: Dataset; test: Dataset } {
  const { testFraction, seed } = opts;
  if (!(testFraction >= 0 && testFraction <= 1)) throw new Error(`trainTestSplit: testFraction ${testFraction} not in [0, 1]`);
  const order = new Rng(seed).shuffle(ds.slices.map((_, i) => i));
  const nTest = Math.round(testFraction * order.length);
  // Sorting keeps the original slice order inside each part (nicer for logs, irrelevant for training).
  const test = order.slice(0, nTest).sort((x, y) => x - y);
  const train = order.slice(nTest).sort((x, y) => x - y);
  return { train: subsetDataset(ds, train), test: subsetDataset(ds, test) };
}

/**
 * Splits a data set into `numParts` parts with `partOf(slice, index)` in 0..numParts-1, e.g. one part
 * per hospital node. Parts may be empty.
 */
export function partitionDataset(
  ds: Dataset,
  numParts: number,
  partOf: (slice: Slice, index: number) => number,
): Dataset[] {
  const buckets: number[][] = Array.from({ length: numParts }, () => []);
  ds.slices.forEach((s, i) => {
    const p = partOf(s, i);
    if (!(Number.isInteger(p) && p >= 0 && p < numParts))
      throw new Error(`partitionDataset: slice '${s.key}' assigned to part ${p}, expected 0..${numParts - 1}`);
    buckets[p]!.push(i);
  });
  return buckets.map((b) => subsetDataset(ds, b));
}

/**
 * Contiguous split of `n` ordered items into `parts` runs whose lengths differ by at most one
 * (e.g. axial slabs). Returns [start, end) pairs.
 */
export function contiguousRanges(n: number, parts: number): Array<[number, number]> {
  if (!(Number.isInteger(parts) && parts >= 1)) throw new Error(`contiguousRanges: parts must be >= 1, got ${parts}`);
  const out: Array<[number, number]> = [];
  for (let p = 0; p < parts; p++) out.push([Math.floor((p * n) / parts), Math.floor(((p + 1) * n) / parts)]);
  return out;
}
