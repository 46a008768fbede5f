import t from 'tap';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeNifti, type NiftiDatatype } from '../src/data/nifti.js';
import { listBratsCases, loadBrats } from '../src/data/brats.js';
import { validateDataset } from '../src/data/sample.js';

const [X, Y, Z] = [20, 26, 8];

/** Synthetic case: ellipsoid brain, a tumour (labels 1 core, 2 edema, 4 enhancing) in slices 2..5. */
function synthCase() {
  const n = X * Y * Z;
  const seg = new Uint8Array(n);
  const t1 = new Float32Array(n);
  const flair = new Float32Array(n);
  const t2 = new Float32Array(n);
  const perSlice = new Array<number>(Z).fill(0);
  for (let z = 0; z < Z; z++)
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++) {
        const i = x + X * (y + Y * z);
        const brain = ((x - 9.5) / 9) ** 2 + ((y - 12.5) / 11) ** 2 < 1;
        if (!brain) continue;
        const r = Math.hypot(x - 8, y - 14);
        let lab = 0;
        if (z >= 2 && z <= 5) lab = r < 1.5 ? 1 : r < 3 ? 4 : r < 4.5 ? 2 : 0;
        if (z === 5 && r >= 1.5) lab = 0; // slice 5: only a tiny core (below the threshold)
        seg[i] = lab;
        if (lab) perSlice[z]!++;
        t1[i] = lab ? 400 : 50 + x; // tumour bright on "t1"
        flair[i] = lab ? 20 : 300 + y; // tumour dark on "flair"
        t2[i] = 100 + z;
      }
  return { seg, t1, flair, t2, perSlice };
}

async function writeCase(root: string, id: string, opts: { gz?: boolean; t2Dims?: [number, number, number]; badLabel?: boolean; skip?: string } = {}) {
  mkdirSync(join(root, id), { recursive: true });
  const c = synthCase();
  if (opts.badLabel) c.seg[X * Y * 3 + X * 14 + 8] = 3;
  const ext = opts.gz === false ? '.nii' : '.nii.gz';
  const files: Array<[string, Float32Array | Uint8Array, NiftiDatatype, [number, number, number]]> = [
    ['seg', c.seg, 'uint8', [X, Y, Z]],
    ['t1', c.t1, 'int16', [X, Y, Z]],
    ['t1ce', c.t1, 'float32', [X, Y, Z]],
    ['t2', opts.t2Dims ? new Float32Array(opts.t2Dims[0] * opts.t2Dims[1] * opts.t2Dims[2]) : c.t2, 'float32', opts.t2Dims ?? [X, Y, Z]],
    ['flair', c.flair, 'int16', [X, Y, Z]],
  ];
  for (const [suffix, data, datatype, dims] of files)
    if (suffix !== opts.skip) await writeNifti(join(root, id, `${id}_${suffix}${ext}`), { dims, data }, { datatype });
  return c;
}

t.test('BraTS layout -> Dataset: slice selection, label mapping, modality order', async (t) => {
  const root = t.testdir({});
  const c = await writeCase(root, 'BraTS_001');
  await writeCase(root, 'BraTS_002', { gz: false });
  t.same(await listBratsCases(root), ['BraTS_001', 'BraTS_002']);
  const minTumourPixels = 10;
  const ds = await loadBrats(root, { modalities: ['t1', 'flair'], size: 32, minTumourPixels });
  validateDataset(ds);
  const keptZ = c.perSlice.flatMap((n, z) => (n >= minTumourPixels ? [z] : []));
  t.same(keptZ, [2, 3, 4], 'the synthetic tumour spans z 2..4 above the threshold');
  t.same(
    ds.slices.map((s) => s.key),
    [...keptZ.map((z) => `BraTS_001-z${z}`), ...keptZ.map((z) => `BraTS_002-z${z}`)],
  );
  t.equal(ds.numClasses, 4);
  t.same(ds.modalities, ['t1', 'flair']);
  const HW = 32 * 32;
  for (const s of ds.slices) {
    t.same([...new Set(s.mask)].sort(), [0, 1, 2, 3], `${s.key}: labels {0,1,2,4} -> {0,1,2,3}`);
    // Channel 0 is t1 (tumour bright), channel 1 flair (tumour dark).
    let tum0 = 0, tum1 = 0, bra0 = 0, bra1 = 0, nt = 0, nb = 0;
    for (let i = 0; i < HW; i++) {
      if (s.mask[i]! > 0) {
        tum0 += s.image[i]!;
        tum1 += s.image[HW + i]!;
        nt++;
      } else if (s.image[HW + i]! > -1) {
        bra0 += s.image[i]!;
        bra1 += s.image[HW + i]!;
        nb++;
      }
    }
    t.ok(tum0 / nt > bra0 / nb && tum1 / nt < bra1 / nb, `${s.key}: channel order follows the requested modalities`);
  }
  // 4 -> 3 mapping of the enhancing ring: label 3 pixels lie between core (1) and edema (2).
  t.ok(ds.slices[0]!.mask.includes(3));
});

t.test('errors name the files involved', async (t) => {
  const root = t.testdir({});
  await writeCase(root, 'A', { t2Dims: [X, Y, Z + 1] });
  await t.rejects(loadBrats(root), {
    message: /BraTS case 'A': shape mismatch: .*A_t2\.nii\.gz has dims \[20, 26, 9\] but .*A_seg\.nii\.gz has \[20, 26, 8\]/,
  });
  const without = await loadBrats(root, { modalities: ['t1', 'flair'], minTumourPixels: 10 });
  t.equal(without.slices.length, 3, 'fine without the bad modality');

  const root2 = t.testdir({});
  await writeCase(root2, 'B', { badLabel: true });
  await t.rejects(loadBrats(root2), { message: /B_seg\.nii\.gz: label value 3 at voxel \d+ is not in the label map \{0, 1, 2, 4\}/ });
  const ok = await loadBrats(root2, { labelMap: { 0: 0, 1: 1, 2: 2, 3: 3, 4: 3 }, minTumourPixels: 10 });
  t.equal(ok.slices.length, 3, 'a custom label map accepts it');

  const root3 = t.testdir({});
  await writeCase(root3, 'C', { skip: 'flair' });
  await t.rejects(loadBrats(root3), { message: /BraTS case 'C': missing .*C_flair\.nii\.gz \(or \.nii\)/ });
  await t.rejects(loadBrats(join(root3, 'nope')), { message: /BraTS root .*nope/ });
  await t.rejects(loadBrats(root, { classNames: ['a', 'b'] }), { message: /label map uses class 3 but only 2 class names/ });
});
