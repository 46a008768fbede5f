import t, { type Test } from 'tap';
import { readFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AAL_GROUPS,
  MRICRON_CLASSES,
  MRICRON_FILES,
  MRICRON_TEMPLATES_DIR,
  builtinAalDigits,
  loadMricron,
  loadMricronVolumes,
  mricronAvailable,
  parseAalLabels,
  type MricronData,
} from '../src/data/mricron.js';
import { deriveMricronFixture } from '../src/data/mricron-fixture.js';
import { loadNifti } from '../src/data/nifti.js';
import { classHistogram, validateDataset } from '../src/data/sample.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/mricron-small', import.meta.url));
const REAL = mricronAvailable();
const CEREBELLUM = 2 + AAL_GROUPS.findIndex((g) => g.name === 'cerebellum');
const FRONTAL = 2 + AAL_GROUPS.findIndex((g) => g.name === 'frontal');

/** Checks the dataset-level properties of a node/test split. */
function checkSplit(t: Test, d: MricronData, size: number, numNodes: number, every: number): void {
  t.equal(d.nodes.length, numNodes);
  for (const ds of [...d.nodes, d.test]) {
    validateDataset(ds);
    t.equal(ds.height, size);
    t.same(ds.classNames, MRICRON_CLASSES);
    t.same(ds.modalities, ['t1']);
  }
  const zOf = (ds: { slices: Array<{ meta: Record<string, unknown> }> }) => ds.slices.map((s) => s.meta.z as number);
  // Slabs: contiguous, ordered, non-overlapping; zRanges describe them.
  let prevLast = -1;
  d.nodes.forEach((n, k) => {
    const z = zOf(n);
    t.ok(z.length > 0, `node ${k} has slices`);
    t.same(d.zRanges[k], [z[0], z[z.length - 1]], `node ${k} zRange`);
    t.ok(z[0]! > prevLast, `node ${k} starts above node ${k - 1}`);
    prevLast = z[z.length - 1]!;
  });
  // Held-out = every `every`-th of the selected slices (positions every-1, 2*every-1, ...).
  const all = [...d.nodes.flatMap(zOf), ...zOf(d.test)].sort((a, b) => a - b);
  t.equal(new Set(all).size, all.length, 'no slice in two sets');
  t.same(zOf(d.test), all.filter((_, i) => i % every === every - 1), 'test = every n-th selected slice');
  // Anatomical heterogeneity, measured: cerebellum only at the bottom, frontal cortex dominant at the top.
  const h = d.nodes.map(classHistogram);
  t.ok(h[0]![CEREBELLUM]! > 0, 'bottom slab contains cerebellum');
  t.equal(h[numNodes - 1]![CEREBELLUM], 0, 'top slab has no cerebellum');
  t.ok(h[numNodes - 1]![FRONTAL]! > h[0]![FRONTAL]!, 'more frontal lobe at the top than at the bottom');
  // Every class occurs somewhere.
  const total = classHistogram({ ...d.test, slices: [...d.nodes.flatMap((n) => n.slices), ...d.test.slices] });
  total.forEach((n, c) => t.ok(n > 0, `class ${MRICRON_CLASSES[c]} present`));
  // Skull-stripped image: background is -1 away from the brain, brain has signal.
  let bg = 0, nbg = 0, br = 0, nbr = 0;
  for (const s of d.test.slices)
    for (let i = 0; i < s.mask.length; i++)
      if (s.mask[i] === 0) {
        bg += s.image[i]!;
        nbg++;
      } else {
        br += s.image[i]!;
        nbr++;
      }
  t.ok(bg / nbg < -0.9, `background mean ${(bg / nbg).toFixed(3)} ~ -1`);
  t.ok(br / nbr > -0.5, `brain mean ${(br / nbr).toFixed(3)} has signal`);
}

t.test('built-in AAL code table matches aal.nii.txt (fixture copy)', async (t) => {
  const parsed = parseAalLabels(readFileSync(join(FIXTURE, MRICRON_FILES.aalLabels), 'utf8'));
  t.same(Array.from(parsed), Array.from(builtinAalDigits()));
  t.same([...new Set(Array.from(parsed).filter((d) => d > 0))].sort(), AAL_GROUPS.map((g) => g.digit), '8 lobe digits 2..9');
  t.throws(() => parseAalLabels('1 Precentral_L notacode\n', 'x.txt'), /x\.txt: cannot parse line/);
});

t.test('fixture (always): loader end to end', async (t) => {
  const d = await loadMricron({ dir: FIXTURE, size: 32 });
  checkSplit(t, d, 32, 4, 5);
  const d3 = await loadMricron({ dir: FIXTURE, size: 24, numNodes: 3, holdoutEvery: 4 });
  checkSplit(t, d3, 24, 3, 4);
  const head = await loadMricron({ dir: FIXTURE, size: 32, skullStrip: false });
  let outside = 0;
  for (const s of head.test.slices) for (let i = 0; i < s.mask.length; i++) if (s.mask[i] === 0 && s.image[i]! > -0.5) outside++;
  t.ok(outside > 50, `without skull stripping the scalp shows outside the brain (${outside} px)`);
});

t.test('missing templates: clear error with the install hint', async (t) => {
  const dir = t.testdir({});
  copyFileSync(join(FIXTURE, MRICRON_FILES.t1), join(dir, MRICRON_FILES.t1));
  t.notOk(mricronAvailable(dir));
  await t.rejects(loadMricron({ dir }), {
    message: /MRIcron templates not found: missing .*ch2bet\.nii\.gz, .*aal\.nii\.gz; install mricron-data: sudo apt-get install mricron-data/,
  });
});

t.test('real mricron-data package', { skip: REAL ? false : `mricron-data not installed (${MRICRON_TEMPLATES_DIR}); run scripts/setup-system.sh` }, async (t) => {
  const v = await loadMricronVolumes();
  for (const vol of [v.t1, v.brain, v.aal]) {
    t.same(vol.dims, [181, 217, 181]);
    t.same(vol.pixdim, [1, 1, 1]);
    t.equal(vol.datatype, 'uint8');
  }
  let maxAal = 0;
  let zMin = Infinity;
  let zMax = -1;
  const plane = 181 * 217;
  for (let i = 0; i < v.aal.data.length; i++)
    if (v.aal.data[i]! > 0) {
      maxAal = Math.max(maxAal, v.aal.data[i]!);
      const z = Math.floor(i / plane);
      zMin = Math.min(zMin, z);
      zMax = Math.max(zMax, z);
    }
  t.equal(maxAal, 116, 'AAL values 1..116');
  t.ok(zMin >= 8 && zMin <= 14 && zMax === 155, `AAL axial extent z ${zMin}..${zMax}`);
  t.same(Array.from(v.aalDigits), Array.from(builtinAalDigits()), 'package aal.nii.txt agrees with the built-in table');

  const d = await loadMricron();
  checkSplit(t, d, 64, 4, 5);
  t.ok(d.zRanges[0]![0] >= zMin && d.zRanges[3]![1] <= zMax, `slabs ${JSON.stringify(d.zRanges)} inside the AAL extent`);

  // The committed fixture is what the generator derives from this package.
  const f = await deriveMricronFixture();
  for (const name of ['t1', 'brain', 'aal'] as const) {
    const file = { t1: MRICRON_FILES.t1, brain: MRICRON_FILES.brain, aal: MRICRON_FILES.aal }[name];
    const fx = await loadNifti(join(FIXTURE, file));
    t.same(fx.dims, f[name].dims, `${file} dims`);
    t.same(fx.affine, f[name].affine, `${file} affine`);
    let diff = 0;
    for (let i = 0; i < fx.data.length; i++) diff = Math.max(diff, Math.abs(fx.data[i]! - Math.round(f[name].data[i]!)));
    t.equal(diff, 0, `${file} voxels match the derivation`);
  }
});
