/**
 * Byte-level encoding: msgpack frames and tensors (f32 / f16 / scaled f16, little-endian).
 *
 * msgpackr options are pinned here, once, because the defaults are wrong for a
 * cross-language protocol:
 *  - useRecords: false      plain msgpack maps, no msgpackr "record" extension (Python's
 *                           msgpack could not read records).
 *  - variableMapSize: true  fixmap/map16/map32 chosen by size (smallest standard encoding).
 *  - skipValues: [undefined] optional fields that are undefined are omitted, not encoded as
 *                           msgpackr's private "undefined" extension.
 *  - moreTypes: false       typed arrays other than Uint8Array are never sent; tensors go as
 *                           explicit {dtype, shape, data: bin}.
 *  - decode mapsAsObjects   maps become plain objects (msgpackr renames a "__proto__" key,
 *                           so no prototype pollution).
 *  - decode copyBuffers     every `bin` is copied out of the frame: uWebSockets.js neuters
 *                           the frame's ArrayBuffer when the message callback returns, and a
 *                           copy starts at offset 0 of its own buffer.
 *  - decode int64AsType 'number'  64-bit ints (which Python emits for large values) become
 *                           numbers; validation then insists on safe integers.
 * Tensors are additionally copied into a fresh (hence 4-byte aligned) Float32Array before
 * use, so no Float32Array view is ever made on an unaligned or foreign buffer.
 */
import { Packr, Unpackr, clearSource } from 'msgpackr';
import { DTYPE_BYTES, ProtocolError, type Dtype, type Message, type WireTensor } from './protocol.js';

// skipValues is implemented by msgpackr 2.x but missing from its typings.
const packr = new Packr({ useRecords: false, variableMapSize: true, skipValues: [undefined], moreTypes: false } as ConstructorParameters<typeof Packr>[0]);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, int64AsType: 'number', moreTypes: false });

/** True on little-endian hosts, where tensor bytes can be copied verbatim. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---- frames ---------------------------------------------------------------------

/** Encode one message as a msgpack map. */
export function encodeFrame(msg: Message | Record<string, unknown>): Uint8Array {
  return packr.pack(msg);
}

/**
 * Decode one frame. Throws ProtocolError 'frame_too_large' before parsing anything when the
 * frame exceeds `maxFrameBytes`, and 'bad_frame' when it is not exactly one msgpack map.
 * The result is untrusted: pass it to validateMessage.
 */
export function decodeFrame(bytes: Uint8Array, maxFrameBytes: number): Record<string, unknown> {
  if (bytes.byteLength > maxFrameBytes) {
    throw new ProtocolError('frame_too_large', `frame of ${bytes.byteLength} bytes exceeds maxFrameBytes ${maxFrameBytes}`);
  }
  if (bytes.byteLength === 0) throw new ProtocolError('bad_frame', 'empty frame');
  let value: unknown;
  let end = -1;
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0; // decoder errors on hostile input are expected; their stacks are useless
  try {
    // Not unpack(): on trailing bytes msgpackr 2.1.4 JSON-stringifies the whole decoded value for its
    // error message (a 16 MiB bin took 31 s), a denial of service. Reading one value and checking where
    // it ended costs nothing extra.
    unpackr.unpackMultiple(bytes, (v: unknown, _start?: number, stop?: number) => {
      value = v;
      end = stop ?? -1;
      return false;
    });
  } catch (e) {
    // Includes truncation, unknown extensions and too-deep nesting (RangeError).
    throw new ProtocolError('bad_frame', `not a msgpack frame: ${e instanceof Error ? e.message.slice(0, 200) : String(e)}`);
  } finally {
    Error.stackTraceLimit = limit;
    clearSource(); // drop msgpackr's reference to this frame
  }
  if (end !== bytes.byteLength) throw new ProtocolError('bad_frame', `not a msgpack frame: ${bytes.byteLength - end} trailing bytes after the map`);
  // Plain objects only: msgpackr turns some bytes (0xc1, extensions) into class instances.
  const proto = value !== null && typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto !== Object.prototype && proto !== null) throw new ProtocolError('bad_frame', 'frame is not a msgpack map');
  return value as Record<string, unknown>;
}

// ---- float16 --------------------------------------------------------------------

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** IEEE binary16 bits of float32 value `x`, rounded to nearest, ties to even. */
export function f32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return f32BitsToF16Bits(scratchU32[0]!);
}

function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN stays a (quiet) NaN with the top payload bits kept.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00; // too large: overflow to Inf
  if (e <= 0) {
    // Result is subnormal (or zero). value = m * 2^(exp-150); half units are 2^-24.
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++; // may carry into the smallest normal: correct
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // carry may reach 0x7c00 = Inf: correct
  return sign | h;
}

/** float32 value of IEEE binary16 bits `h` (exact: every f16 is representable in f32). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let f16Table: Float32Array | undefined;
/** All 65536 f16 values as f32, built on first use (256 KiB) so bulk decode is a lookup. */
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** Convert a Float32Array to f16 bits (round-to-nearest-even). */
export function float32ToF16Array(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  // A Float32Array is always 4-byte aligned, so this view is legal.
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** Convert f16 bits to a Float32Array. */
export function f16ArrayToFloat32(src: Uint16Array): Float32Array {
  const table = f16ToF32Table();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return out;
}

// ---- tensors --------------------------------------------------------------------

/** Number of elements of `shape` (1 for a scalar shape []). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Largest f16 'f16s' scale a sender uses: 2^112, so that scale * 65504 stays finite in f32. */
export const F16S_MAX_SCALE = 2 ** 112;
const F32_MAX = 3.4028234663852886e38;

/**
 * The 'f16s' scale for `values`: 2^(ceil(log2(max |x|)) - 15), so the largest finite magnitude
 * maps into [2^14, 2^15] (well inside f16's 65504) and every element keeps f16's 11 significant
 * bits down to 2^-29 of the maximum. A power of two, so dividing by it is exact. 1 for an all-zero
 * (or all non-finite) tensor; capped at F16S_MAX_SCALE.
 */
export function f16sScale(values: Float32Array): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]!);
    if (a > max && a !== Infinity) max = a;
  }
  if (max === 0) return 1;
  return Math.min(2 ** (Math.ceil(Math.log2(max)) - 15), F16S_MAX_SCALE);
}

/** Why `scale` is not a usable 'f16s' scale, or null when it is. */
export function badF16sScale(scale: unknown): string | null {
  if (typeof scale !== 'number') return `expected a number, got ${scale === undefined ? 'nothing' : typeof scale}`;
  if (!Number.isFinite(scale) || scale <= 0) return `must be a finite number > 0, got ${scale}`;
  if (!(scale * 65504 <= F32_MAX)) return `${scale} would overflow f32 (scale * 65504 must stay below ${F32_MAX})`;
  return null;
}

/** f16 bits, little-endian, as bytes. */
function halfBytes(half: Uint16Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
  const data = new Uint8Array(half.length * 2);
  const dv = new DataView(data.buffer);
  for (let i = 0; i < half.length; i++) dv.setUint16(i * 2, half[i]!, true);
  return data;
}

/**
 * Encode `values` (length = product of shape) as a wire tensor of `dtype`. With 'f16s' the tensor
 * carries `scale` (see f16sScale): a decoded element differs from the original by at most
 * max(2^-11 |x|, 2^-25 scale) (round to nearest; values beyond f16 range become +-Inf, which the
 * receiver refuses as non-finite).
 */
export function encodeTensor(values: Float32Array, shape: readonly number[], dtype: Dtype = 'f32'): WireTensor {
  const n = shapeSize(shape);
  if (n !== values.length) throw new RangeError(`encodeTensor: shape [${shape.join(', ')}] has ${n} elements, values has ${values.length}`);
  if (dtype === 'f32') {
    let data: Uint8Array;
    if (LITTLE_ENDIAN) data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    else {
      data = new Uint8Array(n * 4);
      const dv = new DataView(data.buffer);
      for (let i = 0; i < n; i++) dv.setFloat32(i * 4, values[i]!, true);
    }
    return { dtype, shape: [...shape], data };
  }
  if (dtype === 'f16') return { dtype, shape: [...shape], data: halfBytes(float32ToF16Array(values)) };
  const scale = f16sScale(values);
  const inv = 1 / scale; // a power of two: x * inv is exact
  const scaled = new Float32Array(n);
  for (let i = 0; i < n; i++) scaled[i] = values[i]! * inv;
  return { dtype, shape: [...shape], data: halfBytes(float32ToF16Array(scaled)), scale };
}

/**
 * Decode a (structurally valid) wire tensor into a new, aligned Float32Array.
 * Throws RangeError when the byte length does not match the shape, or when an 'f16s' tensor's
 * scale is missing or unusable (or a scale comes with another dtype).
 */
export function decodeTensor(t: WireTensor): Float32Array {
  const n = shapeSize(t.shape);
  const bytesPer = DTYPE_BYTES[t.dtype];
  if (t.data.byteLength !== n * bytesPer) {
    throw new RangeError(`tensor data has ${t.data.byteLength} bytes, shape [${t.shape.join(', ')}] ${t.dtype} needs ${n * bytesPer}`);
  }
  if (t.dtype === 'f16s') {
    const why = badF16sScale(t.scale);
    if (why) throw new RangeError(`f16s tensor scale ${why}`);
  } else if (t.scale !== undefined) throw new RangeError(`an ${t.dtype} tensor carries no scale (only f16s does)`);
  if (t.dtype === 'f32') {
    const out = new Float32Array(n);
    if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(t.data); // copy: never view a foreign/unaligned buffer
    else {
      const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
    }
    return out;
  }
  const half = new Uint16Array(n);
  if (LITTLE_ENDIAN) new Uint8Array(half.buffer).set(t.data);
  else {
    const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (let i = 0; i < n; i++) half[i] = dv.getUint16(i * 2, true);
  }
  if (t.dtype === 'f16') return f16ArrayToFloat32(half);
  // One pass: table lookup times the scale (exact for a power-of-two scale).
  const table = f16ToF32Table();
  const s = t.scale!;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = table[half[i]!]! * s;
  return out;
}

/** Index of the first NaN or +-Inf in `values`, or -1 when all are finite. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // v - v is 0 for finite v and NaN for NaN/Inf: one compare per element.
    if (v - v !== 0) return i;
  }
  return -1;
}
