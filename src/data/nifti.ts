/**
 * NIfTI-1 volumes: loading (.nii / .nii.gz) and writing (for synthesized output).
 *
 * The header is parsed by nifti-reader-js; we do the rest ourselves because its helpers fail
 * silently on the cases we care about: `readImage` returns a short buffer for a truncated file, and
 * its bundled inflater reports a truncated gzip stream as a generic error without the file name.
 * So we gunzip with node:zlib, check every size against the header, decode the voxels with the
 * header's endianness, apply scl_slope/scl_inter, and name the file in every error.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gunzip, gunzipSync, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import * as niftiReader from 'nifti-reader-js';
import { writeFileAtomic } from '../io/atomic.js';

const gunzipAsync = promisify(gunzip);

/** Voxel types we can read (all NIfTI-1 scalar types up to 32 bits, plus float64). */
export type NiftiDatatype = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

/** NIfTI-1 datatype codes (nifti1.h) and bytes per voxel. */
const DATATYPES: Record<NiftiDatatype, { code: number; bytes: number; min: number; max: number; int: boolean }> = {
  uint8: { code: 2, bytes: 1, min: 0, max: 255, int: true },
  int16: { code: 4, bytes: 2, min: -32768, max: 32767, int: true },
  int32: { code: 8, bytes: 4, min: -2147483648, max: 2147483647, int: true },
  float32: { code: 16, bytes: 4, min: -3.4028234663852886e38, max: 3.4028234663852886e38, int: false },
  float64: { code: 64, bytes: 8, min: -Number.MAX_VALUE, max: Number.MAX_VALUE, int: false },
  int8: { code: 256, bytes: 1, min: -128, max: 127, int: true },
  uint16: { code: 512, bytes: 2, min: 0, max: 65535, int: true },
  uint32: { code: 768, bytes: 4, min: 0, max: 4294967295, int: true },
};

const HEADER_SIZE = 348;
const SINGLE_FILE_OFFSET = 352; // header + 4-byte extension flag

/** A 3-D scalar volume. Voxel (i, j, k) is data[i + X*(j + Y*k)] (x fastest, as stored in NIfTI). */
export interface NiftiVolume {
  /** [X, Y, Z] voxel counts (a 2-D file has Z = 1). */
  dims: [number, number, number];
  /** Voxel size [dx, dy, dz] (usually mm). */
  pixdim: [number, number, number];
  /** The on-disk voxel type (the data below is always converted to float32). */
  datatype: NiftiDatatype;
  /** Voxel values after scl_slope / scl_inter scaling. */
  data: Float32Array;
  /** 4x4 row-major voxel-index -> world (mm) matrix, as chosen by nifti-reader-js (qform or sform). */
  affine: number[][];
}

/** What `writeNifti` needs; pixdim defaults to 1 mm and the affine to diag(pixdim). */
export interface NiftiVolumeInput {
  dims: readonly [number, number, number];
  data: ArrayLike<number>;
  pixdim?: readonly [number, number, number];
  affine?: readonly (readonly number[])[];
  datatype?: NiftiDatatype;
}

/** Options for `encodeNifti` / `writeNifti`. */
export interface NiftiWriteOptions {
  /** Voxel type on disk; default: the input's `datatype`, else float32. */
  datatype?: NiftiDatatype;
  /** gzip the file; `writeNifti` defaults to true iff the path ends in .gz. */
  gzip?: boolean;
  /** Byte order (default little-endian; big-endian exists only so tests can cover the reader). */
  littleEndian?: boolean;
  /** Up to 79 ASCII characters stored in the header's descrip field. */
  description?: string;
}

/** Reads a .nii or .nii.gz file (gzip detected from the content, not the name). */
export async function loadNifti(path: string): Promise<NiftiVolume> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`${path}: cannot read NIfTI file: ${(e as Error).message}`);
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (e) {
      throw gzipError(path, e);
    }
  }
  return parseRawNifti(bytes, path);
}

/** Synchronous variant of `loadNifti` (for scripts and tests). */
export function loadNiftiSync(path: string): NiftiVolume {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read NIfTI file: ${(e as Error).message}`);
  }
  return decodeNifti(bytes, path);
}

/** Decodes the bytes of a .nii or .nii.gz file held in memory; `name` is used in error messages. */
export function decodeNifti(bytes: Uint8Array, name: string): NiftiVolume {
  let raw = bytes;
  if (isGzip(raw)) {
    try {
      raw = gunzipSync(raw);
    } catch (e) {
      throw gzipError(name, e);
    }
  }
  return parseRawNifti(raw, name);
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function gzipError(name: string, e: unknown): Error {
  const msg = (e as Error).message;
  const what = /unexpected end/i.test(msg) ? 'truncated gzip stream' : 'corrupt gzip stream';
  return new Error(`${name}: ${what} (${msg}); the file is incomplete or damaged, re-download or re-create it`);
}

/**
 * Parses an uncompressed NIfTI-1 single file (.nii) held in memory.
 * Supports 1-, 2- and 3-D volumes (higher dims only when they are all 1).
 */
function parseRawNifti(bytes: Uint8Array, name: string): NiftiVolume {
  if (bytes.length < HEADER_SIZE)
    throw new Error(`${name}: not a NIfTI file: ${bytes.length} bytes, shorter than the ${HEADER_SIZE}-byte NIfTI-1 header`);
  // Copy only the header: nifti-reader-js wants an ArrayBuffer of its own, and giving it just 348
  // bytes keeps it from parsing extensions we do not use (and copying a 30 MB volume).
  const head = bytes.slice(0, HEADER_SIZE).buffer;
  if (!niftiReader.isNIFTI1(head, false)) {
    if (niftiReader.isNIFTI1(head, true))
      throw new Error(`${name}: this is the header of a .hdr/.img pair; only single-file .nii/.nii.gz is supported`);
    if (bytes.length >= 540 && niftiReader.isNIFTI2(bytes.slice(0, 540).buffer, true))
      throw new Error(`${name}: NIfTI-2 files are not supported, only NIfTI-1`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const magic = Array.from(bytes.subarray(344, 348), (c) => (c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
    throw new Error(
      `${name}: bad NIfTI-1 header: magic is '${magic}' (expected 'n+1'), sizeof_hdr=${dv.getInt32(0, true)} (expected 348)`,
    );
  }
  let hdr: niftiReader.NIFTI1;
  try {
    const h = niftiReader.readHeader(head);
    if (!(h instanceof niftiReader.NIFTI1)) throw new Error('not a NIfTI-1 header');
    hdr = h;
  } catch (e) {
    throw new Error(`${name}: bad NIfTI-1 header: ${(e as Error).message}`);
  }

  const nd = hdr.dims[0]!;
  if (!(nd >= 1 && nd <= 7))
    throw new Error(`${name}: bad NIfTI-1 header: dim[0] = ${nd}, must be 1..7 (maybe a byte-order problem)`);
  const d = hdr.dims.slice(1, nd + 1);
  if (d.some((v) => !(v >= 1)))
    throw new Error(`${name}: bad dimensions [${d.join(', ')}]: every dim must be >= 1`);
  const extra = d.slice(3).reduce((a, b) => a * b, 1);
  if (extra !== 1)
    throw new Error(`${name}: wrong dimensions [${d.join(', ')}]: only 3-D volumes are supported (got ${extra} volumes)`);
  const dims: [number, number, number] = [d[0] ?? 1, d[1] ?? 1, d[2] ?? 1];

  const entry = (Object.entries(DATATYPES) as Array<[NiftiDatatype, (typeof DATATYPES)[NiftiDatatype]]>).find(
    ([, v]) => v.code === hdr.datatypeCode,
  );
  if (!entry)
    throw new Error(
      `${name}: unsupported datatype code ${hdr.datatypeCode} (${hdr.getDatatypeCodeString(hdr.datatypeCode)}); ` +
        `supported: ${Object.keys(DATATYPES).join(', ')}`,
    );
  const [datatype, info] = entry;
  if (hdr.numBitsPerVoxel !== info.bytes * 8)
    throw new Error(`${name}: bad NIfTI-1 header: bitpix ${hdr.numBitsPerVoxel} does not match datatype ${datatype}`);

  const offset = Math.round(hdr.vox_offset);
  if (!(offset >= HEADER_SIZE)) throw new Error(`${name}: bad NIfTI-1 header: vox_offset ${hdr.vox_offset} < ${HEADER_SIZE}`);
  const nvox = dims[0] * dims[1] * dims[2];
  const need = nvox * info.bytes;
  if (bytes.length < offset + need)
    throw new Error(
      `${name}: truncated: dims [${dims.join(', ')}] x ${info.bytes} bytes need ${need} bytes of voxel data ` +
        `after offset ${offset}, but the file has only ${Math.max(0, bytes.length - offset)}`,
    );

  const data = decodeVoxels(bytes, offset, nvox, datatype, hdr.littleEndian);
  const slope = hdr.scl_slope;
  const inter = hdr.scl_inter;
  // nifti1.h: slope 0 (or not finite) means "no scaling".
  if (Number.isFinite(slope) && slope !== 0 && (slope !== 1 || (Number.isFinite(inter) && inter !== 0))) {
    const b = Number.isFinite(inter) ? inter : 0;
    for (let i = 0; i < nvox; i++) data[i] = data[i]! * slope + b;
  }
  const pd = hdr.pixDims;
  const pixdim: [number, number, number] = [Math.abs(pd[1] ?? 1) || 1, Math.abs(pd[2] ?? 1) || 1, Math.abs(pd[3] ?? 1) || 1];
  // nifti-reader-js picks qform vs sform as nifti1.h says, but derives the quaternion's a from
  // float32 b, c, d without nifti1_io's clamp, which costs ~1e-4 relative error when a ~ 0
  // (180-degree rotations, common for LPS data). Recompute that case the nifti1_io way.
  const useQform = hdr.qform_code > 0 && hdr.sform_code < hdr.qform_code;
  const affine = useQform ? qformAffine(hdr) : hdr.affine.map((row) => [...row]);
  return { dims, pixdim, datatype, data, affine };
}

/** nifti1_io's nifti_quatern_to_mat44. */
function qformAffine(h: niftiReader.NIFTI1): number[][] {
  let b = h.quatern_b, c = h.quatern_c, d = h.quatern_d;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    // a is 0 up to float32 rounding: renormalize (b, c, d) to a unit vector.
    const s = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= s;
    c *= s;
    d *= s;
    a = 0;
  } else a = Math.sqrt(a);
  const dx = h.pixDims[1]! > 0 ? h.pixDims[1]! : 1;
  const dy = h.pixDims[2]! > 0 ? h.pixDims[2]! : 1;
  const qfac = h.pixDims[0]! < 0 ? -1 : 1;
  const dz = (h.pixDims[3]! > 0 ? h.pixDims[3]! : 1) * qfac;
  return [
    [(a * a + b * b - c * c - d * d) * dx, 2 * (b * c - a * d) * dy, 2 * (b * d + a * c) * dz, h.qoffset_x],
    [2 * (b * c + a * d) * dx, (a * a + c * c - b * b - d * d) * dy, 2 * (c * d - a * b) * dz, h.qoffset_y],
    [2 * (b * d - a * c) * dx, 2 * (c * d + a * b) * dy, (a * a + d * d - c * c - b * b) * dz, h.qoffset_z],
    [0, 0, 0, 1],
  ];
}

function decodeVoxels(bytes: Uint8Array, offset: number, n: number, type: NiftiDatatype, le: boolean): Float32Array {
  const out = new Float32Array(n);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, n * DATATYPES[type].bytes);
  switch (type) {
    case 'uint8':
      out.set(bytes.subarray(offset, offset + n));
      break;
    case 'int8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case 'int16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, le);
      break;
    case 'uint16':
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, le);
      break;
    case 'int32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, le);
      break;
    case 'uint32':
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, le);
      break;
    case 'float32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, le);
      break;
    case 'float64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, le);
      break;
  }
  return out;
}

/**
 * Encodes a volume as a NIfTI-1 single file (.nii bytes, gzipped if `opts.gzip`).
 * The affine goes into the sform (code 2, "aligned anat"); when its 3x3 part is a rotation times
 * diag(pixdim) (possibly with a flip), it is also stored as qform so tools that prefer qform agree.
 * Integer datatypes round to nearest and throw on values they cannot represent (no silent clipping).
 */
export function encodeNifti(vol: NiftiVolumeInput, opts: NiftiWriteOptions = {}): Uint8Array {
  const type = opts.datatype ?? vol.datatype ?? 'float32';
  const info = DATATYPES[type];
  if (!info) throw new Error(`encodeNifti: unsupported datatype '${type}'`);
  const le = opts.littleEndian ?? true;
  const [X, Y, Z] = vol.dims;
  for (const v of vol.dims)
    if (!(Number.isInteger(v) && v >= 1 && v <= 32767)) throw new Error(`encodeNifti: bad dims [${vol.dims.join(', ')}]`);
  const nvox = X * Y * Z;
  if (vol.data.length !== nvox)
    throw new Error(`encodeNifti: data has ${vol.data.length} values but dims [${vol.dims.join(', ')}] need ${nvox}`);
  const pixdim = vol.pixdim ?? [1, 1, 1];
  const affine = vol.affine ?? [
    [pixdim[0], 0, 0, 0],
    [0, pixdim[1], 0, 0],
    [0, 0, pixdim[2], 0],
    [0, 0, 0, 1],
  ];

  const buf = new Uint8Array(SINGLE_FILE_OFFSET + nvox * info.bytes);
  const dv = new DataView(buf.buffer);
  dv.setInt32(0, HEADER_SIZE, le);
  buf[38] = 'r'.charCodeAt(0);
  dv.setInt16(40, Z > 1 ? 3 : Y > 1 ? 2 : 1, le);
  dv.setInt16(42, X, le);
  dv.setInt16(44, Y, le);
  dv.setInt16(46, Z, le);
  for (let i = 4; i < 8; i++) dv.setInt16(40 + 2 * i, 1, le);
  dv.setInt16(70, info.code, le);
  dv.setInt16(72, info.bytes * 8, le);

  const q = quaternFromAffine(affine, pixdim);
  dv.setFloat32(76, q ? q.qfac : 1, le);
  for (let i = 0; i < 3; i++) dv.setFloat32(80 + 4 * i, pixdim[i]!, le);
  for (let i = 3; i < 7; i++) dv.setFloat32(80 + 4 * i, 1, le);
  dv.setFloat32(108, SINGLE_FILE_OFFSET, le);
  dv.setFloat32(112, 1, le); // scl_slope
  dv.setFloat32(116, 0, le); // scl_inter
  buf[123] = 2; // xyzt_units: mm
  const desc = (opts.description ?? 'asyndgan').slice(0, 79);
  for (let i = 0; i < desc.length; i++) buf[148 + i] = desc.charCodeAt(i) & 0x7f;
  if (q) {
    dv.setInt16(252, 2, le); // qform_code: aligned anat
    dv.setFloat32(256, q.b, le);
    dv.setFloat32(260, q.c, le);
    dv.setFloat32(264, q.d, le);
  }
  dv.setFloat32(268, affine[0]![3]!, le);
  dv.setFloat32(272, affine[1]![3]!, le);
  dv.setFloat32(276, affine[2]![3]!, le);
  dv.setInt16(254, 2, le); // sform_code: aligned anat
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) dv.setFloat32(280 + 16 * r + 4 * c, affine[r]![c]!, le);
  buf.set([0x6e, 0x2b, 0x31, 0x00], 344); // "n+1\0"

  const out = new DataView(buf.buffer, SINGLE_FILE_OFFSET);
  for (let i = 0; i < nvox; i++) {
    let v = vol.data[i]!;
    if (info.int) {
      v = Math.round(v);
      if (!(v >= info.min && v <= info.max))
        throw new Error(`encodeNifti: value ${vol.data[i]} at voxel ${i} does not fit ${type} [${info.min}, ${info.max}]`);
    } else if (type === 'float32' && Number.isFinite(v) && Math.abs(v) > info.max) {
      throw new Error(`encodeNifti: value ${v} at voxel ${i} overflows float32`);
    }
    switch (type) {
      case 'uint8':
        out.setUint8(i, v);
        break;
      case 'int8':
        out.setInt8(i, v);
        break;
      case 'int16':
        out.setInt16(2 * i, v, le);
        break;
      case 'uint16':
        out.setUint16(2 * i, v, le);
        break;
      case 'int32':
        out.setInt32(4 * i, v, le);
        break;
      case 'uint32':
        out.setUint32(4 * i, v, le);
        break;
      case 'float32':
        out.setFloat32(4 * i, v, le);
        break;
      case 'float64':
        out.setFloat64(8 * i, v, le);
        break;
    }
  }
  return opts.gzip ? gzipSync(buf) : buf;
}

/**
 * Writes a NIfTI-1 single file (gzipped when the path ends in .gz unless `opts.gzip` says otherwise).
 * The write is atomic (temporary file + rename), so a crash never leaves a half-written volume.
 */
export async function writeNifti(path: string, vol: NiftiVolumeInput, opts: NiftiWriteOptions = {}): Promise<void> {
  const bytes = encodeNifti(vol, { ...opts, gzip: opts.gzip ?? path.endsWith('.gz') });
  await writeFileAtomic(path, bytes);
}

/**
 * nifti1_io's nifti_mat44_to_quatern for the well-behaved case: returns null (no qform) unless the
 * affine's columns are orthogonal with lengths equal to pixdim.
 */
function quaternFromAffine(
  A: readonly (readonly number[])[],
  pixdim: readonly number[],
): { b: number; c: number; d: number; qfac: number } | null {
  const col = (j: number): number[] => [A[0]![j]!, A[1]![j]!, A[2]![j]!];
  const cols = [col(0), col(1), col(2)];
  const norms = cols.map((v) => Math.hypot(v[0]!, v[1]!, v[2]!));
  for (let j = 0; j < 3; j++) if (!(norms[j]! > 0) || Math.abs(norms[j]! - pixdim[j]!) > 1e-4 * Math.max(1, pixdim[j]!)) return null;
  const u = cols.map((v, j) => v.map((x) => x / norms[j]!));
  const dot = (a: number[], b: number[]): number => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;
  if (Math.abs(dot(u[0]!, u[1]!)) > 1e-4 || Math.abs(dot(u[0]!, u[2]!)) > 1e-4 || Math.abs(dot(u[1]!, u[2]!)) > 1e-4) return null;
  // R[r][c] = u[c][r]
  const R = (r: number, c: number): number => u[c]![r]!;
  const r11 = R(0, 0), r12 = R(0, 1), r21 = R(1, 0), r22 = R(1, 1), r31 = R(2, 0), r32 = R(2, 1);
  let r13 = R(0, 2), r23 = R(1, 2), r33 = R(2, 2);
  const det = r11 * (r22 * r33 - r32 * r23) - r12 * (r21 * r33 - r31 * r23) + r13 * (r21 * r32 - r31 * r22);
  let qfac = 1;
  if (det < 0) {
    qfac = -1;
    r13 = -r13;
    r23 = -r23;
    r33 = -r33;
  }
  let a = r11 + r22 + r33 + 1;
  let b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return { b, c, d, qfac };
}
