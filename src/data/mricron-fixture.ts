/**
 * Builds the small test fixture test/fixtures/mricron-small/ from the real MRIcron templates, so the
 * MRIcron loader is tested end to end (NIfTI decoding included) on machines without mricron-data.
 *
 * Volumes are block-downsampled by an integer factor (default 4: 181x217x181 at 1 mm -> 45x54x45 at
 * 4 mm): the T1 by block mean, the brain mask and the atlas by block majority (labels must not be
 * averaged). The affine keeps world coordinates: new voxel i is the centre of old voxels
 * factor*i .. factor*i + factor-1.
 *
 * Regenerate with:
 *   node --import tsx -e "import('./src/data/mricron-fixture.ts').then(m => m.writeMricronFixture())"
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNifti, type NiftiVolume } from './nifti.js';
import { loadMricronVolumes, MRICRON_FILES, MRICRON_TEMPLATES_DIR } from './mricron.js';

export const MRICRON_FIXTURE_DIR = 'test/fixtures/mricron-small';

/** Block-downsamples a volume by `factor` ('mean' for intensities, 'majority' for labels; ties -> smallest value). */
export function downsampleVolume(vol: NiftiVolume, factor: number, mode: 'mean' | 'majority'): NiftiVolume {
  if (!(Number.isInteger(factor) && factor >= 1)) throw new Error(`downsampleVolume: factor must be a positive integer, got ${factor}`);
  const [X, Y, Z] = vol.dims;
  const [nx, ny, nz] = [Math.floor(X / factor), Math.floor(Y / factor), Math.floor(Z / factor)];
  if (nx < 1 || ny < 1 || nz < 1) throw new Error(`downsampleVolume: factor ${factor} too large for dims [${vol.dims}]`);
  const out = new Float32Array(nx * ny * nz);
  const counts = new Map<number, number>();
  for (let k = 0; k < nz; k++)
    for (let j = 0; j < ny; j++)
      for (let i = 0; i < nx; i++) {
        let sum = 0;
        counts.clear();
        for (let c = 0; c < factor; c++)
          for (let b = 0; b < factor; b++)
            for (let a = 0; a < factor; a++) {
              const v = vol.data[i * factor + a + X * (j * factor + b + Y * (k * factor + c))]!;
              sum += v;
              if (mode === 'majority') counts.set(v, (counts.get(v) ?? 0) + 1);
            }
        let val = sum / factor ** 3;
        if (mode === 'majority') {
          let best = -1;
          for (const [v, n] of counts) if (n > best || (n === best && v < val)) [best, val] = [n, v];
        }
        out[i + nx * (j + ny * k)] = val;
      }
  const A = vol.affine;
  const shift = (factor - 1) / 2; // old-voxel offset of the new voxel centre
  const affine = A.map((row, r) =>
    r === 3 ? [...row] : [row[0]! * factor, row[1]! * factor, row[2]! * factor, row[3]! + shift * (row[0]! + row[1]! + row[2]!)],
  );
  const pixdim: [number, number, number] = [vol.pixdim[0] * factor, vol.pixdim[1] * factor, vol.pixdim[2] * factor];
  return { dims: [nx, ny, nz], pixdim, datatype: vol.datatype, data: out, affine };
}

/** The three fixture volumes, derived in memory (what writeMricronFixture writes, before uint8 rounding). */
export async function deriveMricronFixture(srcDir = MRICRON_TEMPLATES_DIR, factor = 4): Promise<{ t1: NiftiVolume; brain: NiftiVolume; aal: NiftiVolume }> {
  const v = await loadMricronVolumes(srcDir);
  const brainMask = { ...v.brain, data: v.brain.data.map((x) => (x > 0 ? 1 : 0)) };
  return {
    t1: downsampleVolume(v.t1, factor, 'mean'),
    brain: downsampleVolume(brainMask, factor, 'majority'),
    aal: downsampleVolume(v.aal, factor, 'majority'),
  };
}

/** Writes the fixture (uint8 .nii.gz volumes with the package's file names, plus aal.nii.txt). */
export async function writeMricronFixture(srcDir = MRICRON_TEMPLATES_DIR, outDir = MRICRON_FIXTURE_DIR, factor = 4): Promise<void> {
  const f = await deriveMricronFixture(srcDir, factor);
  await mkdir(outDir, { recursive: true });
  const desc = `Colin27/AAL (mricron-data) downsampled x${factor}`;
  await writeNifti(join(outDir, MRICRON_FILES.t1), f.t1, { datatype: 'uint8', description: desc });
  await writeNifti(join(outDir, MRICRON_FILES.brain), f.brain, { datatype: 'uint8', description: `${desc}, brain mask` });
  await writeNifti(join(outDir, MRICRON_FILES.aal), f.aal, { datatype: 'uint8', description: desc });
  await copyFile(join(srcDir, MRICRON_FILES.aalLabels), join(outDir, MRICRON_FILES.aalLabels));
}
