/**
 * The safetensors file format (https://github.com/huggingface/safetensors), so that weights saved
 * here load in Python (`safetensors.torch.load_file`, `safetensors.numpy.load_file`) and back.
 *
 * Byte layout:
 *   [0, 8)        N: u64 little-endian, length of the header
 *   [8, 8+N)      UTF-8 JSON object, starting with '{', right-padded with spaces (0x20):
 *                   { "<name>": {"dtype": "F32", "shape": [2, 2], "data_offsets": [begin, end]}, ...,
 *                     "__metadata__": {"<key>": "<string value>"} }   (metadata optional)
 *   [8+N, EOF)    the data section: each tensor's raw little-endian, row-major bytes at
 *                 [begin, end) relative to the start of the data section. Tensors are contiguous:
 *                 sorted by offset they start at 0, each begins where the previous ends, and the
 *                 last one ends at the end of the file.
 * The reference writer pads the header so that 8 + N is a multiple of 8 (so every tensor of an
 * 8-byte-aligned file can be viewed in place); we do the same.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { writeFileAtomic } from './atomic.js';

/** Element types we read and write. F16/BF16 are carried as raw bits in a Uint16Array. */
export type SafetensorsDtype =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8'
  | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

/** Typed array that holds the elements of each dtype. */
export interface SafetensorsArrayOf {
  F64: Float64Array; F32: Float32Array; F16: Uint16Array; BF16: Uint16Array;
  I64: BigInt64Array; I32: Int32Array; I16: Int16Array; I8: Int8Array;
  U64: BigUint64Array; U32: Uint32Array; U16: Uint16Array; U8: Uint8Array; BOOL: Uint8Array;
}

/** Any typed array a tensor may carry. */
export type SafetensorsArray = SafetensorsArrayOf[SafetensorsDtype];

/** A tensor to write: `data` is either the dtype's typed array or its raw little-endian bytes. */
export interface SafetensorsTensorInput {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  data: SafetensorsArray | Uint8Array;
}

/** A tensor read from a file; `data` is the dtype's typed array, always correctly aligned. */
export type SafetensorsTensor = {
  [D in SafetensorsDtype]: { dtype: D; shape: number[]; data: SafetensorsArrayOf[D] };
}[SafetensorsDtype];

/** Result of decoding: tensors in header order, plus the string-to-string `__metadata__`. */
export interface SafetensorsFile {
  tensors: Record<string, SafetensorsTensor>;
  metadata: Record<string, string>;
}

type AnyArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsArray;
  new (length: number): SafetensorsArray;
  readonly BYTES_PER_ELEMENT: number;
};

const DTYPES: Record<SafetensorsDtype, AnyArrayCtor> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array,
  I64: BigInt64Array, I32: Int32Array, I16: Int16Array, I8: Int8Array,
  U64: BigUint64Array, U32: Uint32Array, U16: Uint16Array, U8: Uint8Array, BOOL: Uint8Array,
} as unknown as Record<SafetensorsDtype, AnyArrayCtor>;

/** dtypes of the format we know of but do not carry (so the error can say "unsupported", not "unknown"). */
const KNOWN_UNSUPPORTED = new Set(['F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4', 'C64']);

/** Name the reference implementation reserves for the metadata map. */
const METADATA_KEY = '__metadata__';
/** Largest header the reference reader accepts (100 MB); guards against absurd lengths. */
const MAX_HEADER_SIZE = 100_000_000;

/** Bytes per element of a dtype. */
export function dtypeSize(dtype: SafetensorsDtype): number {
  return DTYPES[dtype].BYTES_PER_ELEMENT;
}

function assertLittleEndianHost(): void {
  // We copy tensor bytes verbatim; on a big-endian host they would need swapping.
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

function numElements(shape: readonly number[], where: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new Error(`${where}: shape ${JSON.stringify(shape)} is too large`);
  return n;
}

function expectedArrayCtor(dtype: SafetensorsDtype): AnyArrayCtor {
  return DTYPES[dtype];
}

/**
 * Serialise tensors (in the object's key order) and optional string metadata to safetensors bytes.
 * Throws if a tensor's data length disagrees with its shape, or its array type with its dtype.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  assertLittleEndianHost();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`encodeSafetensors: metadata value for '${k}' must be a string, got ${typeof v}`);
    }
    // The reference writer emits __metadata__ first; readers do not care, but it keeps diffs tidy.
    header[METADATA_KEY] = { ...metadata };
  }
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const where = `encodeSafetensors: tensor '${name}'`;
    if (name === METADATA_KEY) throw new Error(`${where}: the name is reserved for metadata`);
    if (!isDtype(t.dtype)) throw new Error(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
    const n = numElements(t.shape, where);
    const size = dtypeSize(t.dtype);
    const ctor = expectedArrayCtor(t.dtype);
    const isRawBytes = t.data instanceof Uint8Array;
    if (!isRawBytes && !(t.data instanceof ctor)) {
      throw new TypeError(`${where}: dtype ${t.dtype} needs a ${ctor.name} or raw Uint8Array bytes, got ${t.data.constructor.name}`);
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    if (bytes.byteLength !== n * size) {
      throw new Error(`${where}: shape ${JSON.stringify(t.shape)} x ${t.dtype} needs ${n * size} bytes, data has ${bytes.byteLength}`);
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.byteLength % 8)) % 8;
  const headerLen = json.byteLength + pad;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.byteLength;
  }
  return out;
}

/**
 * Parse safetensors bytes. `source` (usually the file path) is named in every error message.
 * Tensor arrays are views on `bytes` where the data is aligned for the element type, and copies
 * where it is not; mutate them only if you own `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array, source = '<bytes>'): SafetensorsFile {
  assertLittleEndianHost();
  const fail = (msg: string): never => {
    throw new Error(`safetensors ${source}: ${msg}`);
  };
  if (bytes.byteLength < 8) fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLenBig = dv.getBigUint64(0, true);
  if (headerLenBig > BigInt(bytes.byteLength - 8)) {
    fail(`header length ${headerLenBig} goes beyond the end of the file (${bytes.byteLength - 8} bytes after the length)`);
  }
  const headerLen = Number(headerLenBig);
  if (headerLen > MAX_HEADER_SIZE) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_SIZE}-byte limit`);
  if (headerLen === 0 || bytes[8] !== 0x7b /* '{' */) fail('header does not start with "{" (not a safetensors file?)');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header JSON is not an object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (raw === null) continue; // the reference writer may emit null for "no metadata"
      if (typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ value for '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const where = `tensor '${name}'`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`${where}: entry is not an object`);
    const info = raw as Record<string, unknown>;
    for (const k of Object.keys(info)) {
      if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') fail(`${where}: unexpected field '${k}'`);
    }
    const { dtype, shape, data_offsets: offs } = info;
    if (typeof dtype !== 'string') fail(`${where}: missing or non-string dtype`);
    if (!isDtype(dtype)) {
      fail(KNOWN_UNSUPPORTED.has(dtype as string)
        ? `${where}: dtype ${dtype} is not supported by this reader`
        : `${where}: unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape)) fail(`${where}: missing or non-array shape`);
    const shp = shape as unknown[];
    if (!shp.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
      fail(`${where}: shape ${JSON.stringify(shape)} must be non-negative integers`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)) {
      fail(`${where}: data_offsets ${JSON.stringify(offs)} must be two non-negative integers [begin, end]`);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
    const dt = dtype as SafetensorsDtype;
    let n: number;
    try {
      n = numElements(shp as number[], where);
    } catch (e) {
      return fail((e as Error).message);
    }
    const want = n * dtypeSize(dt);
    if (end - begin !== want) {
      fail(`${where}: shape ${JSON.stringify(shape)} x ${dt} needs ${want} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.push({ name, dtype: dt, shape: shp as number[], begin, end });
  }

  // Contiguity: sorted by begin, tensors must tile [0, dataLen) exactly, as the reference requires.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (which ends at ${cursor})`);
    if (e.begin > cursor) fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] leave a gap after byte ${cursor}`);
    if (e.end > dataLen) {
      fail(`tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] go past the end of the data section (${dataLen} bytes): file truncated or offsets out of range`);
    }
    cursor = e.end;
  }
  if (cursor !== dataLen) fail(`${dataLen - cursor} trailing bytes after the last tensor (data section is ${dataLen} bytes, tensors cover ${cursor})`);

  const tensors: Record<string, SafetensorsTensor> = {};
  for (const e of entries) {
    const ctor = DTYPES[e.dtype];
    const abs = bytes.byteOffset + dataStart + e.begin;
    const count = (e.end - e.begin) / ctor.BYTES_PER_ELEMENT;
    let data: SafetensorsArray;
    if (abs % ctor.BYTES_PER_ELEMENT === 0) {
      data = new ctor(bytes.buffer, abs, count);
    } else {
      // Typed arrays need aligned offsets: copy the bytes into a fresh buffer.
      data = new ctor(count);
      new Uint8Array(data.buffer).set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    }
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data } as SafetensorsTensor;
  }
  return { tensors, metadata };
}

/** Encode and write atomically (see writeFileAtomic): a crash never leaves a half-written file. */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Read and decode a safetensors file; errors name `path`. */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  const bytes = await readFile(path);
  return decodeSafetensors(bytes, path);
}
