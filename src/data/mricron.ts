/**
 * Real MR data available on this machine: the Colin27 templates of the Debian package mricron-data
 * (/usr/share/mricron/templates): ch2.nii.gz (T1), ch2bet.nii.gz (skull-stripped T1, our brain mask)
 * and aal.nii.gz (AAL atlas, values 1..116 indexing aal.nii.txt). All 181x217x181, 1 mm, one grid.
 *
 * Condition maps: background, brain without an AAL label (mostly CSF, ventricles, deep white
 * matter) and 8 lobe groups given by the first digit of the AAL code (2xxx frontal ... 9xxx
 * cerebellum). Images: the T1 slice. The axial slices are split into contiguous slabs, one per node
 * (a strong, anatomical heterogeneity: the bottom node sees cerebellum, the top one cortex only),
 * and every `holdoutEvery`-th slice is held out for evaluation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNifti, type NiftiVolume } from './nifti.js';
import { axialSlice, boundingBox, normalizeIntensity, squareAndResize } from './slices.js';
import { contiguousRanges, type Dataset, type Slice } from './sample.js';

export const MRICRON_TEMPLATES_DIR = '/usr/share/mricron/templates';
export const MRICRON_FILES = { t1: 'ch2.nii.gz', brain: 'ch2bet.nii.gz', aal: 'aal.nii.gz', aalLabels: 'aal.nii.txt' } as const;

/** Lobe groups by the first digit of the AAL code. */
export const AAL_GROUPS: ReadonlyArray<{ digit: number; name: string }> = [
  { digit: 2, name: 'frontal' },
  { digit: 3, name: 'insula' },
  { digit: 4, name: 'limbic' },
  { digit: 5, name: 'occipital' },
  { digit: 6, name: 'parietal' },
  { digit: 7, name: 'subcortical' },
  { digit: 8, name: 'temporal' },
  { digit: 9, name: 'cerebellum' },
];

/** Class names: 0 background, 1 unlabelled brain, 2.. the AAL groups in AAL_GROUPS order. */
export const MRICRON_CLASSES: readonly string[] = ['background', 'brain_unlabelled', ...AAL_GROUPS.map((g) => g.name)];

/**
 * AAL code of each atlas value 1..116 as shipped in aal.nii.txt (index, name, code), compressed to
 * runs of equal first digit: values 1-28 frontal (2xxx), 29-30 insula (3xxx), 31-42 limbic (4xxx),
 * 43-56 occipital (5xxx), 57-70 parietal (6xxx), 71-78 subcortical (7xxx), 79-90 temporal (8xxx),
 * 91-116 cerebellum and vermis (9xxx). Used when aal.nii.txt is not next to the volume.
 */
const AAL_DIGIT_RUNS: ReadonlyArray<[number, number, number]> = [
  [1, 28, 2],
  [29, 30, 3],
  [31, 42, 4],
  [43, 56, 5],
  [57, 70, 6],
  [71, 78, 7],
  [79, 90, 8],
  [91, 116, 9],
];

/** The built-in atlas-value -> first-code-digit table (index = atlas value, 0 = unlabelled). */
export function builtinAalDigits(): Uint8Array {
  const t = new Uint8Array(256);
  for (const [a, b, d] of AAL_DIGIT_RUNS) for (let v = a; v <= b; v++) t[v] = d;
  return t;
}

/** Parses aal.nii.txt ("<value> <name> <code>" per line) into value -> first digit of the code. */
export function parseAalLabels(text: string, source = 'aal.nii.txt'): Uint8Array {
  const t = new Uint8Array(256);
  let n = 0;
  for (const line of text.split(/\r?\n/)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3 || f[0] === '') continue;
    const value = Number(f[0]);
    const code = f[2]!;
    if (!(Number.isInteger(value) && value > 0 && value < 256) || !/^[1-9]\d*$/.test(code))
      throw new Error(`${source}: cannot parse line '${line.trim()}' (expected "<value> <name> <code>")`);
    t[value] = Number(code[0]);
    n++;
  }
  if (n === 0) throw new Error(`${source}: no labels found`);
  return t;
}

export interface MricronOptions {
  /** Folder holding ch2.nii.gz, ch2bet.nii.gz, aal.nii.gz [, aal.nii.txt] (default MRICRON_TEMPLATES_DIR). */
  dir?: string;
  /** Training size (square, default 64). */
  size?: number;
  /** Number of nodes = axial slabs (default 4). */
  numNodes?: number;
  /** Every n-th selected slice (positions n-1, 2n-1, ...) goes to the test set (default 5). */
  holdoutEvery?: number;
  /** Keep axial slices with at least this AAL-labelled area in mm^2 (default 200, resolution independent). */
  minLabelledArea?: number;
  /** Image = brain only (outside the brain mask -1, like BraTS skull-stripped data; default true) or the whole head. */
  skullStrip?: boolean;
  /** Margin in mm around the brain's bounding box (union over the selected slices) before resizing (default 4). */
  marginMm?: number;
}

/** Loaded volumes of the template set (plus the atlas-value -> group-digit table). */
export interface MricronVolumes {
  t1: NiftiVolume;
  brain: NiftiVolume;
  aal: NiftiVolume;
  aalDigits: Uint8Array;
  dir: string;
}

/** The split data: one training set per node (axial slab) and the held-out slices. */
export interface MricronData {
  nodes: Dataset[];
  test: Dataset;
  /** Inclusive [zFirst, zLast] (native voxel index) of each node's training slab. */
  zRanges: Array<[number, number]>;
  /** The voxel-space square cropped from each slice before resizing. */
  box: { top: number; left: number; side: number };
}

/** True when the three template volumes exist in `dir`. */
export function mricronAvailable(dir = MRICRON_TEMPLATES_DIR): boolean {
  return [MRICRON_FILES.t1, MRICRON_FILES.brain, MRICRON_FILES.aal].every((f) => existsSync(join(dir, f)));
}

/** Loads the three volumes and checks they share one grid. */
export async function loadMricronVolumes(dir = MRICRON_TEMPLATES_DIR): Promise<MricronVolumes> {
  const missing = [MRICRON_FILES.t1, MRICRON_FILES.brain, MRICRON_FILES.aal].filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0)
    throw new Error(
      `MRIcron templates not found: missing ${missing.map((f) => join(dir, f)).join(', ')}; ` +
        "install mricron-data: sudo apt-get install mricron-data (or run the project's scripts/setup-system.sh)" +
        (dir === MRICRON_TEMPLATES_DIR ? '' : `, or point \`dir\` at a folder with ${MRICRON_FILES.t1}, ${MRICRON_FILES.brain} and ${MRICRON_FILES.aal}`),
    );
  const [t1, brain, aal] = await Promise.all([
    loadNifti(join(dir, MRICRON_FILES.t1)),
    loadNifti(join(dir, MRICRON_FILES.brain)),
    loadNifti(join(dir, MRICRON_FILES.aal)),
  ]);
  const named: Array<[string, NiftiVolume]> = [
    [MRICRON_FILES.brain, brain],
    [MRICRON_FILES.aal, aal],
  ];
  for (const [f, v] of named)
    if (v.dims.some((d, i) => d !== t1.dims[i]))
      throw new Error(`MRIcron templates: ${join(dir, f)} has dims [${v.dims}] but ${join(dir, MRICRON_FILES.t1)} has [${t1.dims}]`);
  const txt = join(dir, MRICRON_FILES.aalLabels);
  const aalDigits = existsSync(txt) ? parseAalLabels(readFileSync(txt, 'utf8'), txt) : builtinAalDigits();
  return { t1, brain, aal, aalDigits, dir };
}

/** Class-id volume: 0 background, 1 brain without AAL label, 2+g AAL group g. */
export function mricronLabelVolume(v: MricronVolumes): Uint8Array {
  const groupOfDigit = new Int16Array(10).fill(-1);
  AAL_GROUPS.forEach((g, i) => (groupOfDigit[g.digit] = i));
  const n = v.t1.data.length;
  const out = new Uint8Array(n);
  const aalPath = join(v.dir, MRICRON_FILES.aal);
  for (let i = 0; i < n; i++) {
    const a = v.aal.data[i]!;
    if (a > 0) {
      const digit = Number.isInteger(a) && a < 256 ? v.aalDigits[a]! : 0;
      const g = groupOfDigit[digit]!;
      if (g < 0) throw new Error(`${aalPath}: atlas value ${a} at voxel ${i} has no known AAL code`);
      out[i] = 2 + g;
    } else if (v.brain.data[i]! > 0) out[i] = 1;
  }
  return out;
}

/** Builds the node / test split from loaded volumes (pure: no file access). */
export function buildMricronData(v: MricronVolumes, opts: MricronOptions = {}): MricronData {
  const size = opts.size ?? 64;
  const numNodes = opts.numNodes ?? 4;
  const every = opts.holdoutEvery ?? 5;
  if (!(Number.isInteger(every) && every >= 2)) throw new Error(`mricron: holdoutEvery must be an integer >= 2, got ${every}`);
  const skullStrip = opts.skullStrip ?? true;
  const [X, Y, Z] = v.t1.dims;
  const [dx, dy] = v.t1.pixdim;
  const minPixels = Math.max(1, Math.round((opts.minLabelledArea ?? 200) / (dx * dy)));
  const labels = mricronLabelVolume(v);

  // Image region: brain (skull-stripped) or head; normalization percentiles are taken inside it.
  const region = new Uint8Array(labels.length);
  for (let i = 0; i < region.length; i++) region[i] = skullStrip ? (labels[i]! > 0 ? 1 : 0) : v.t1.data[i]! > 0 ? 1 : 0;
  const image = normalizeIntensity(v.t1.data, region);

  const vol = (data: ArrayLike<number>) => ({ dims: [X, Y, Z] as const, data });
  const zs: number[] = [];
  for (let z = 0; z < Z; z++) {
    const m = axialSlice(vol(labels), z);
    let n = 0;
    for (let i = 0; i < m.length; i++) if (m[i]! >= 2) n++;
    if (n >= minPixels) zs.push(z);
  }
  if (zs.length < numNodes + 1) throw new Error(`mricron: only ${zs.length} axial slices have >= ${minPixels} labelled pixels`);

  // One square box for every slice (union of the brain's extent): keeps the geometry identical
  // across slices and nodes, so position in the image means the same anatomy everywhere.
  const union = new Uint8Array(X * Y);
  for (const z of zs) {
    const m = axialSlice(vol(labels), z);
    for (let i = 0; i < union.length; i++) if (m[i]! > 0) union[i] = 1;
  }
  const bb = boundingBox(union, Y, X)!;
  const margin = Math.round((opts.marginMm ?? 4) / Math.min(dx, dy));
  const side = Math.max(bb[2] - bb[0], bb[3] - bb[1]) + 2 * margin;
  const box = { side, top: Math.floor((bb[0] + bb[2] - side) / 2), left: Math.floor((bb[1] + bb[3] - side) / 2) };

  const makeSlice = (z: number, node: number): Slice => {
    const m = Uint8Array.from(axialSlice(vol(labels), z));
    const r = squareAndResize(m, axialSlice(vol(image), z), 1, Y, X, size, box);
    return { key: `colin27-z${z}`, mask: r.mask, image: r.image, modalities: ['t1'], meta: { source: 'colin27', z, node } };
  };
  const heldOut = zs.filter((_, i) => i % every === every - 1);
  const train = zs.filter((_, i) => i % every !== every - 1);
  const ranges = contiguousRanges(train.length, numNodes);
  const ds = (slices: Slice[]): Dataset => ({
    height: size,
    width: size,
    numClasses: MRICRON_CLASSES.length,
    classNames: [...MRICRON_CLASSES],
    modalities: ['t1'],
    slices,
  });
  return {
    nodes: ranges.map(([a, b], k) => ds(train.slice(a, b).map((z) => makeSlice(z, k)))),
    test: ds(heldOut.map((z) => makeSlice(z, -1))),
    zRanges: ranges.map(([a, b]) => [train[a]!, train[b - 1]!] as [number, number]),
    box,
  };
}

/** Loads the templates from `opts.dir` (default: the Debian package) and builds the split. */
export async function loadMricron(opts: MricronOptions = {}): Promise<MricronData> {
  return buildMricronData(await loadMricronVolumes(opts.dir ?? MRICRON_TEMPLATES_DIR), opts);
}
