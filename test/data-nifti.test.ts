import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { decodeNifti, encodeNifti, loadNifti, loadNiftiSync, writeNifti, type NiftiDatatype } from '../src/data/nifti.js';
import { Rng } from '../src/engine/index.js';

const dims: [number, number, number] = [5, 4, 3];
const N = 5 * 4 * 3;
const affine = [
  [1.5, 0, 0, -10],
  [0, 2, 0, 20.5],
  [0, 0, 3, -30],
  [0, 0, 0, 1],
];
const RANGES: Record<NiftiDatatype, [number, number, boolean]> = {
  uint8: [0, 255, true],
  int8: [-128, 127, true],
  int16: [-32768, 32767, true],
  uint16: [0, 65535, true],
  int32: [-2147483648, 2147483647, true],
  uint32: [0, 4294967295, true],
  float32: [-1e6, 1e6, false],
  float64: [-1e6, 1e6, false],
};

function sample(type: NiftiDatatype, seed: number): Float64Array {
  const [lo, hi, int] = RANGES[type];
  const r = new Rng(seed);
  const d = new Float64Array(N);
  for (let i = 0; i < N; i++) d[i] = int ? Math.round(r.uniform(lo, hi)) : r.uniform(lo, hi);
  d[0] = lo; // extremes survive
  d[1] = hi;
  return d;
}

t.test('writeNifti -> loadNifti round trip for every datatype, plain and gzipped', async (t) => {
  const dir = t.testdir({});
  let seed = 1;
  for (const type of Object.keys(RANGES) as NiftiDatatype[])
    for (const gz of [false, true]) {
      const path = join(dir, `v_${type}.nii${gz ? '.gz' : ''}`);
      const data = sample(type, seed++);
      await writeNifti(path, { dims, data, pixdim: [1.5, 2, 3], affine }, { datatype: type });
      const raw = readFileSync(path);
      t.equal(raw[0] === 0x1f && raw[1] === 0x8b, gz, `${type} gz=${gz}: compressed iff .gz`);
      const v = await loadNifti(path);
      t.same(v.dims, dims);
      t.same(v.pixdim, [1.5, 2, 3]);
      t.equal(v.datatype, type);
      t.same(v.affine, affine, `${type}: affine`);
      t.same(Array.from(v.data), Array.from(Float32Array.from(data)), `${type} gz=${gz}: voxels`);
    }
});

t.test('big-endian files decode the same', async (t) => {
  for (const type of ['int16', 'float64', 'uint32'] as NiftiDatatype[]) {
    const data = sample(type, 99);
    const le = decodeNifti(encodeNifti({ dims, data }, { datatype: type }), 'le.nii');
    const be = decodeNifti(encodeNifti({ dims, data }, { datatype: type, littleEndian: false }), 'be.nii');
    t.same(Array.from(be.data), Array.from(le.data), type);
    t.same(Array.from(be.data), Array.from(Float32Array.from(data)));
  }
});

t.test('qform written from rotated/flipped affines reproduces them', async (t) => {
  const affines = [
    // x flipped, y and z swapped: a proper rotation (qfac +1) whose quaternion has a = 0.
    [
      [-2, 0, 0, 90],
      [0, 0, 1.25, -126],
      [0, 3, 0, -72],
      [0, 0, 0, 1],
    ],
    // LPS-style diagonal: determinant < 0, so qfac = -1.
    [
      [-2, 0, 0, 90],
      [0, -3, 0, 126],
      [0, 0, 1.25, -72],
      [0, 0, 0, 1],
    ],
    // 30 degrees about z.
    [
      [2 * Math.cos(0.5236), -3 * Math.sin(0.5236), 0, 1],
      [2 * Math.sin(0.5236), 3 * Math.cos(0.5236), 0, 2],
      [0, 0, 1.25, 3],
      [0, 0, 0, 1],
    ],
  ];
  for (const [k, A] of affines.entries()) {
    const bytes = encodeNifti({ dims, data: new Float32Array(N), pixdim: [2, 3, 1.25], affine: A });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    t.equal(dv.getInt16(252, true), 2, `affine ${k}: qform_code set`);
    dv.setInt16(254, 0, true); // drop the sform: the reader must now use the qform
    const v = decodeNifti(bytes, 'q.nii');
    let err = 0;
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) err = Math.max(err, Math.abs(v.affine[r]![c]! - A[r]![c]!));
    t.ok(err < 1e-5, `affine ${k}: max error ${err}`);
  }
  // A shear has no qform: only the sform is written.
  const shear = encodeNifti({ dims, data: new Float32Array(N), affine: [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]] });
  t.equal(new DataView(shear.buffer).getInt16(252, true), 0, 'no qform for a shear');
  t.same(decodeNifti(shear, 'shear.nii').affine[0], [1, 0.5, 0, 0]);
});

t.test('scl_slope / scl_inter are applied', async (t) => {
  const bytes = encodeNifti({ dims, data: Float32Array.from({ length: N }, (_, i) => i) }, { datatype: 'int16' });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  dv.setFloat32(112, 0.5, true);
  dv.setFloat32(116, -3, true);
  const v = decodeNifti(bytes, 's.nii');
  t.equal(v.data[10], 10 * 0.5 - 3);
  dv.setFloat32(112, 0, true); // slope 0 = no scaling (nifti1.h)
  t.equal(decodeNifti(bytes, 's.nii').data[10], 10);
});

t.test('errors name the file and say what is wrong', async (t) => {
  const dir = t.testdir({});
  const good = encodeNifti({ dims, data: new Float32Array(N) }, { datatype: 'uint8' });

  const badMagic = good.slice();
  badMagic.set([0x78, 0x79, 0x7a, 0], 344);
  const p1 = join(dir, 'badmagic.nii');
  writeFileSync(p1, badMagic);
  await t.rejects(loadNifti(p1), { message: /badmagic\.nii: bad NIfTI-1 header: magic is 'xyz/ });

  const badSize = good.slice();
  new DataView(badSize.buffer).setInt32(0, 540, true);
  t.throws(() => decodeNifti(badSize, 'size.nii'), /size\.nii: bad NIfTI-1 header/);

  const p2 = join(dir, 'short.nii');
  writeFileSync(p2, good.subarray(0, 200));
  await t.rejects(loadNifti(p2), { message: /short\.nii: not a NIfTI file: 200 bytes/ });

  const p3 = join(dir, 'trunc.nii.gz');
  const gz = gzipSync(encodeNifti({ dims: [40, 40, 40], data: new Float32Array(64000).map((_, i) => i % 251) }, { datatype: 'uint8' }));
  writeFileSync(p3, gz.subarray(0, Math.floor(gz.length / 2)));
  await t.rejects(loadNifti(p3), { message: /trunc\.nii\.gz: truncated gzip stream/ });
  t.throws(() => loadNiftiSync(p3), /trunc\.nii\.gz: truncated gzip stream/);

  const p4 = join(dir, 'cut.nii');
  writeFileSync(p4, good.subarray(0, good.length - 7));
  await t.rejects(loadNifti(p4), { message: /cut\.nii: truncated: .* need 60 bytes of voxel data after offset 352, but the file has only 53/ });

  const fourD = good.slice();
  const dv = new DataView(fourD.buffer);
  dv.setInt16(40, 4, true);
  dv.setInt16(48, 2, true);
  t.throws(() => decodeNifti(fourD, 'fmri.nii'), /fmri\.nii: wrong dimensions \[5, 4, 3, 2\]: only 3-D/);

  const zeroDim = good.slice();
  new DataView(zeroDim.buffer).setInt16(44, 0, true);
  t.throws(() => decodeNifti(zeroDim, 'zero.nii'), /zero\.nii: bad dimensions \[5, 0, 3\]/);

  const rgb = good.slice();
  new DataView(rgb.buffer).setInt16(70, 128, true);
  t.throws(() => decodeNifti(rgb, 'rgb.nii'), /rgb\.nii: unsupported datatype code 128/);

  await t.rejects(loadNifti(join(dir, 'missing.nii.gz')), { message: /missing\.nii\.gz: cannot read NIfTI file/ });
});

t.test('encoder refuses values the datatype cannot hold, and bad dims', async (t) => {
  t.throws(() => encodeNifti({ dims, data: new Float32Array(N).fill(256) }, { datatype: 'uint8' }), /256 at voxel 0 does not fit uint8/);
  t.throws(() => encodeNifti({ dims, data: new Float32Array(N).fill(NaN) }, { datatype: 'int16' }), /does not fit int16/);
  t.throws(() => encodeNifti({ dims, data: new Float32Array(N - 1) }), /data has 59 values/);
  t.throws(() => encodeNifti({ dims: [0, 4, 3], data: [] }), /bad dims/);
});

t.test('2-D files load as Z = 1', async (t) => {
  const v = decodeNifti(encodeNifti({ dims: [3, 2, 1], data: [1, 2, 3, 4, 5, 6] }, { datatype: 'int16' }), 'flat.nii');
  t.same(v.dims, [3, 2, 1]);
  t.same(Array.from(v.data), [1, 2, 3, 4, 5, 6]);
});
