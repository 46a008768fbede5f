/**
 * BraTS-style data sets: one folder per case, `<case>/<case>_{t1,t1ce,t2,flair,seg}.nii[.gz]`.
 *
 * Each modality is normalized per volume (percentile clip within its non-zero, i.e. skull-stripped
 * brain, region), axial slices with enough tumour are kept, squared and resized to the training size.
 * BraTS labels {0, 1, 2, 4} (background, necrotic/non-enhancing core, edema, enhancing tumour) are
 * mapped to consecutive class ids {0, 1, 2, 3} because the one-hot condition needs dense ids.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadNifti, type NiftiVolume } from './nifti.js';
import { axialSlice, normalizeIntensity, squareAndResize } from './slices.js';
import type { Dataset, Slice } from './sample.js';

export type BratsModality = 't1' | 't1ce' | 't2' | 'flair';
export const BRATS_MODALITIES: readonly BratsModality[] = ['t1', 't1ce', 't2', 'flair'];

/** BraTS label value -> class id (default). */
export const BRATS_LABEL_MAP: Readonly<Record<number, number>> = { 0: 0, 1: 1, 2: 2, 4: 3 };
export const BRATS_CLASS_NAMES: readonly string[] = ['background', 'necrotic_core', 'edema', 'enhancing_tumour'];

export interface BratsOptions {
  /** Modalities in channel order (default t1, t1ce, t2, flair). */
  modalities?: BratsModality[];
  /** Training size (square, default 64). */
  size?: number;
  /** Keep axial slices with at least this many tumour (non-zero label) voxels at native resolution (default 100). */
  minTumourPixels?: number;
  /** Case folder names to load (default: every sub-folder of the root, sorted). */
  cases?: string[];
  /** Label value -> class id (default BRATS_LABEL_MAP); values not listed are an error. */
  labelMap?: Record<number, number>;
  /** Class names (default BRATS_CLASS_NAMES); length = number of classes. */
  classNames?: string[];
  /** Side of the centred square (native voxels) cropped before resizing (default max(X, Y)). */
  crop?: number;
  /** Normalization percentiles (default 0.5 / 99.5). */
  lowPct?: number;
  highPct?: number;
}

/** Path of one case file: `<root>/<case>/<case>_<suffix>.nii.gz`, or `.nii` if only that exists. */
export function bratsFile(root: string, caseId: string, suffix: string): string {
  const gz = join(root, caseId, `${caseId}_${suffix}.nii.gz`);
  if (existsSync(gz)) return gz;
  const nii = join(root, caseId, `${caseId}_${suffix}.nii`);
  if (existsSync(nii)) return nii;
  throw new Error(`BraTS case '${caseId}': missing ${gz} (or .nii)`);
}

/** Case folders under `root` (sorted). */
export async function listBratsCases(root: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw new Error(`BraTS root ${root}: ${(e as Error).message}`);
  }
  return entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
}

/** Loads one case and returns its selected, normalized, resized slices. */
export async function loadBratsCase(root: string, caseId: string, opts: BratsOptions = {}): Promise<Slice[]> {
  const modalities = opts.modalities ?? [...BRATS_MODALITIES];
  const size = opts.size ?? 64;
  const minTumour = opts.minTumourPixels ?? 100;
  const labelMap = opts.labelMap ?? BRATS_LABEL_MAP;

  const segPath = bratsFile(root, caseId, 'seg');
  const modPaths = modalities.map((m) => bratsFile(root, caseId, m));
  const [seg, ...vols] = await Promise.all([segPath, ...modPaths].map((p) => loadNifti(p)));
  const sameDims = (a: NiftiVolume, b: NiftiVolume): boolean => a.dims.every((v, i) => v === b.dims[i]);
  vols.forEach((v, i) => {
    if (!sameDims(v, seg!))
      throw new Error(
        `BraTS case '${caseId}': shape mismatch: ${modPaths[i]} has dims [${v.dims.join(', ')}] but ${segPath} has [${seg!.dims.join(', ')}]`,
      );
  });
  const [X, Y, Z] = seg!.dims;

  // Map labels once for the whole volume, so an unknown value is reported with its file.
  const lut = new Int16Array(256).fill(-1);
  for (const [k, v] of Object.entries(labelMap)) lut[Number(k)] = v;
  const labels = new Uint8Array(seg!.data.length);
  for (let i = 0; i < labels.length; i++) {
    const raw = seg!.data[i]!;
    const c = Number.isInteger(raw) && raw >= 0 && raw < 256 ? lut[raw]! : -1;
    if (c < 0)
      throw new Error(
        `${segPath}: label value ${raw} at voxel ${i} is not in the label map {${Object.keys(labelMap).join(', ')}}`,
      );
    labels[i] = c;
  }
  const norm = vols.map((v) => normalizeIntensity(v.data, null, { lowPct: opts.lowPct ?? 0.5, highPct: opts.highPct ?? 99.5 }));

  const side = opts.crop ?? Math.max(X, Y);
  const box = { side, top: Math.trunc((Y - side) / 2), left: Math.trunc((X - side) / 2) };
  const out: Slice[] = [];
  const HW = X * Y;
  for (let z = 0; z < Z; z++) {
    const m = axialSlice({ dims: [X, Y, Z], data: labels }, z);
    let tumour = 0;
    for (let i = 0; i < HW; i++) if (m[i]! > 0) tumour++;
    if (tumour < minTumour) continue;
    const img = new Float32Array(modalities.length * HW);
    norm.forEach((n, c) => img.set(axialSlice({ dims: [X, Y, Z], data: n }, z), c * HW));
    const r = squareAndResize(Uint8Array.from(m), img, modalities.length, Y, X, size, box);
    out.push({ key: `${caseId}-z${z}`, mask: r.mask, image: r.image, modalities: [...modalities], meta: { case: caseId, z, tumourPixels: tumour } });
  }
  return out;
}

/** Loads a BraTS-layout folder into one Dataset (cases in sorted order, slices by z). */
export async function loadBrats(root: string, opts: BratsOptions = {}): Promise<Dataset> {
  const cases = opts.cases ?? (await listBratsCases(root));
  if (cases.length === 0) throw new Error(`BraTS root ${root}: no case folders`);
  const classNames = opts.classNames ?? [...BRATS_CLASS_NAMES];
  const numClasses = classNames.length;
  const maxId = Math.max(...Object.values(opts.labelMap ?? BRATS_LABEL_MAP));
  if (maxId >= numClasses) throw new Error(`loadBrats: label map uses class ${maxId} but only ${numClasses} class names are given`);
  const slices: Slice[] = [];
  // Sequential: a case is ~150 MB of float32 once loaded; loading all at once could exhaust memory.
  for (const c of cases) slices.push(...(await loadBratsCase(root, c, opts)));
  const size = opts.size ?? 64;
  return { height: size, width: size, numClasses, classNames: [...classNames], modalities: [...(opts.modalities ?? BRATS_MODALITIES)], slices };
}
