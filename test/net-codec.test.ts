import t from 'tap';
import {
  decodeFrame, decodeTensor, encodeFrame, encodeTensor, f16ArrayToFloat32, f16BitsToF32, f32ToF16Bits, firstNonFinite, float32ToF16Array,
} from '../src/net/codec.js';
import { PROTOCOL_VERSION, ProtocolError } from '../src/net/protocol.js';
import { refDecode, refEncode } from './helpers/net-msgpack-ref.js';

const f32 = (x: number): number => Math.fround(x);

t.test('f16: known values', async (t) => {
  const cases: [number, number][] = [
    [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [-65504, 0xfbff],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
    [Infinity, 0x7c00], [-Infinity, 0xfc00],
    [0.1, 0x2e66], [1 / 3, 0x3555], [Math.PI, 0x4248],
  ];
  for (const [x, h] of cases) t.equal(f32ToF16Bits(x), h, `f32ToF16Bits(${x})`);
  t.ok(Object.is(f16BitsToF32(0x8000), -0), 'negative zero decodes to -0');
  t.equal(f16BitsToF32(0x7c00), Infinity);
  t.equal(f16BitsToF32(0xfc00), -Infinity);
  t.ok(Number.isNaN(f16BitsToF32(0x7e00)));
  t.ok(Number.isNaN(f16BitsToF32(0x7c01)), 'signalling-NaN bit pattern is NaN');
});

t.test('f16: NaN stays NaN, sign kept', async (t) => {
  const h = f32ToF16Bits(NaN);
  t.equal(h & 0x7c00, 0x7c00, 'exponent all ones');
  t.not(h & 0x03ff, 0, 'mantissa non-zero');
  const neg = new Float32Array(1);
  new Uint32Array(neg.buffer)[0] = 0xffc00001; // negative NaN with payload
  const hn = float32ToF16Array(neg)[0]!;
  t.equal(hn & 0x8000, 0x8000, 'sign of NaN kept');
  t.ok(Number.isNaN(f16BitsToF32(hn)));
  // A NaN whose payload lives only in low bits must not become Inf.
  const low = new Float32Array(1);
  new Uint32Array(low.buffer)[0] = 0x7f800001;
  t.ok(Number.isNaN(f16BitsToF32(float32ToF16Array(low)[0]!)), 'low-payload NaN stays NaN');
});

t.test('f16: every finite f16 round-trips, every midpoint rounds to even, neighbours round to nearest', async (t) => {
  let bad = 0;
  for (let h = 0; h < 0x7c00; h++) {
    const v = f16BitsToF32(h);
    if (f32ToF16Bits(v) !== h) bad++;
    if (f32ToF16Bits(-v) !== (h | 0x8000)) bad++;
    if (h === 0x7bff) continue;
    const next = f16BitsToF32(h + 1);
    const mid = (v + next) / 2; // exact in f32: needs 12 significant bits
    if (f32(mid) !== mid) bad++;
    const even = h % 2 === 0 ? h : h + 1;
    if (f32ToF16Bits(mid) !== even) bad++;
    // One f32 ulp either side of the midpoint goes to the nearer neighbour.
    const below = new Float32Array([mid]);
    const bu = new Uint32Array(below.buffer);
    bu[0] = bu[0]! - 1;
    if (mid > 0 && f32ToF16Bits(below[0]!) !== h) bad++;
    const above = new Float32Array([mid]);
    const au = new Uint32Array(above.buffer);
    au[0] = au[0]! + 1;
    if (f32ToF16Bits(above[0]!) !== h + 1) bad++;
  }
  t.equal(bad, 0, 'no mismatches over all 31744 positive finite f16 values');
});

t.test('f16: overflow and underflow boundaries', async (t) => {
  t.equal(f32ToF16Bits(65519), 0x7bff, 'just below the rounding boundary stays finite');
  t.equal(f32ToF16Bits(65520), 0x7c00, 'midpoint to 2^16 rounds (to even) to Inf');
  t.equal(f32ToF16Bits(1e10), 0x7c00);
  t.equal(f32ToF16Bits(-1e10), 0xfc00);
  t.equal(f32ToF16Bits(3.4e38), 0x7c00, 'f32 max -> Inf');
  t.equal(f32ToF16Bits(2 ** -25), 0x0000, 'half the smallest subnormal ties to even (0)');
  t.equal(f32ToF16Bits(f32(2 ** -25 * 1.0000001)), 0x0001, 'just above half rounds up');
  t.equal(f32ToF16Bits(3 * 2 ** -26), 0x0001, '0.75 of the smallest subnormal rounds up');
  t.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002, '1.5 subnormal units ties to even (2)');
  t.equal(f32ToF16Bits(5 * 2 ** -25), 0x0002, '2.5 subnormal units ties to even (2)');
  t.equal(f32ToF16Bits(2 ** -26), 0x0000);
  t.equal(f32ToF16Bits(1e-30), 0x0000);
  t.equal(f32ToF16Bits(-1e-30), 0x8000, 'tiny negative -> -0');
  t.equal(f32ToF16Bits(1.401298464324817e-45), 0x0000, 'f32 subnormal -> 0');
  t.equal(f32ToF16Bits(2 ** -14 - 2 ** -25), 0x0400, 'largest-subnormal/smallest-normal midpoint ties to even (normal)');
});

t.test('f16 bulk conversion matches the scalar path', async (t) => {
  const src = new Float32Array(5000);
  for (let i = 0; i < src.length; i++) src[i] = (Math.sin(i * 12.9898) * 43758.5453) % 70000 * (i % 7 === 0 ? 1e-6 : 1);
  src[0] = NaN; src[1] = Infinity; src[2] = -Infinity; src[3] = -0;
  const half = float32ToF16Array(src);
  let bad = 0;
  for (let i = 0; i < src.length; i++) if (half[i] !== f32ToF16Bits(src[i]!)) bad++;
  t.equal(bad, 0);
  const back = f16ArrayToFloat32(half);
  for (let i = 4; i < src.length; i++) if (back[i] !== f16BitsToF32(half[i]!)) bad++;
  t.equal(bad, 0);
});

t.test('tensors: f32 and f16 round trips, little-endian bytes, alignment', async (t) => {
  const v = new Float32Array([1, -2.5, 3.25, 1e-3, -0, 65504, 1e-8, 123456.789]);
  const w = encodeTensor(v, [2, 4], 'f32');
  t.same(w.shape, [2, 4]);
  t.equal(w.data.byteLength, 32);
  t.same([...w.data.subarray(0, 4)], [0x00, 0x00, 0x80, 0x3f], '1.0f little-endian');
  t.same([...decodeTensor(w)], [...v]);
  const h = encodeTensor(v, [8], 'f16');
  t.equal(h.data.byteLength, 16);
  t.same([...h.data.subarray(0, 2)], [0x00, 0x3c], '1.0 as f16 little-endian');
  const back = decodeTensor(h);
  t.equal(back[2], 3.25);
  t.equal(back[5], 65504);
  t.equal(back[7], Infinity, '123456 overflows f16');
  // Data at an odd offset inside a larger buffer (as a decoder might hand it out).
  const big = new Uint8Array(w.data.byteLength + 3);
  big.set(w.data, 3);
  const odd = decodeTensor({ dtype: 'f32', shape: [8], data: big.subarray(3) });
  t.same([...odd], [...v], 'unaligned source decodes (copied)');
  t.equal(odd.byteOffset % 4, 0);
  t.throws(() => decodeTensor({ dtype: 'f32', shape: [3], data: new Uint8Array(8) }), RangeError);
  t.throws(() => encodeTensor(v, [3], 'f32'), RangeError);
  t.equal(firstNonFinite(new Float32Array([0, 1, NaN])), 2);
  t.equal(firstNonFinite(new Float32Array([0, -Infinity])), 1);
  t.equal(firstNonFinite(new Float32Array([0, 1e38, -1e-45])), -1);
});

t.test('frames: round trip, binary arrives as Uint8Array, plain msgpack only', async (t) => {
  const grad = encodeTensor(new Float32Array([0.5, -1, 2, 4]), [1, 1, 2, 2], 'f32');
  const msg = { type: 'gradientReply' as const, round: 3, keys: ['a'], grad, losses: { dReal: 0.1, dFake: 0.2, gGan: 0.3, gL1: 0.4 } };
  const bytes = encodeFrame(msg);
  const ref = refDecode(bytes) as Record<string, unknown>;
  t.equal(ref.type, 'gradientReply', 'an extension-free msgpack decoder reads our frame');
  t.ok((ref.grad as { data: unknown }).data instanceof Uint8Array, 'tensor data is msgpack bin');
  const back = decodeFrame(bytes, 1 << 20);
  const data = (back.grad as { data: Uint8Array }).data;
  t.ok(data instanceof Uint8Array);
  t.equal(data.byteOffset, 0, 'copied out of the frame');
  t.not(data.buffer, (bytes as Uint8Array).buffer, 'not a view on the frame');
  t.same([...decodeTensor(back.grad as typeof grad)], [0.5, -1, 2, 4]);
  // Undefined optional fields are omitted, never msgpackr's private undefined extension.
  const withUndef = encodeFrame({ type: 'error', code: 'internal', message: 'x', fatal: false, field: undefined });
  t.same(Object.keys(refDecode(withUndef) as object).sort(), ['code', 'fatal', 'message', 'type']);
});

t.test('frames: produced by a Python-style encoder decode and validate', async (t) => {
  const bytes = refEncode({ type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: 'py', token: 'secret', capabilities: { dtypes: ['f32'] } });
  const o = decodeFrame(bytes, 1 << 20);
  t.equal(o.nodeId, 'py');
  t.equal(o.protocolVersion, PROTOCOL_VERSION);
});

t.test('frames: malformed input is a ProtocolError with the right code', async (t) => {
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return e instanceof ProtocolError ? e.code : `not a ProtocolError: ${String(e)}`;
    }
  };
  const ok = encodeFrame({ type: 'status', round: 1, metrics: {} });
  t.equal(code(() => decodeFrame(ok, ok.length - 1)), 'frame_too_large');
  t.equal(code(() => decodeFrame(new Uint8Array(0), 100)), 'bad_frame');
  t.equal(code(() => decodeFrame(ok.subarray(0, ok.length - 2), 100)), 'bad_frame', 'truncated');
  const trailing = new Uint8Array(ok.length + 1);
  trailing.set(ok);
  t.equal(code(() => decodeFrame(trailing, 100)), 'bad_frame', 'trailing bytes');
  // Regression: msgpackr's own trailing-bytes error stringifies the whole value (31 s for 16 MiB).
  const big = encodeFrame({ type: 'status', round: 0, metrics: {}, pad: new Uint8Array(16 << 20) });
  const bigTrailing = new Uint8Array(big.length + 1);
  bigTrailing.set(big);
  const t0 = Date.now();
  t.equal(code(() => decodeFrame(bigTrailing, 32 << 20)), 'bad_frame', 'trailing byte after 16 MiB');
  t.ok(Date.now() - t0 < 1000, `refused quickly (${Date.now() - t0} ms)`);
  t.equal(code(() => decodeFrame(new Uint8Array([0x93, 1, 2, 3]), 100)), 'bad_frame', 'array, not a map');
  t.equal(code(() => decodeFrame(new Uint8Array([0x80, 0x80]), 100)), 'bad_frame', 'two maps');
  t.equal(code(() => decodeFrame(new Uint8Array([0xc1]), 100)), 'bad_frame', 'reserved byte');
  t.equal(code(() => decodeFrame(new Uint8Array([0xd4, 0x01, 0x00]), 100)), 'bad_frame', 'unknown extension');
  t.equal(code(() => decodeFrame(new Uint8Array(200_000).fill(0x91), 1 << 20)), 'bad_frame', 'deep nesting');
  t.equal(code(() => decodeFrame(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), 100)), 'bad_frame', 'huge declared array');
  const proto = decodeFrame(new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x81, 0xa1, 0x78, 0x01]), 100);
  t.equal(({} as Record<string, unknown>).x, undefined, 'no prototype pollution');
  t.equal(Object.getPrototypeOf(proto), Object.prototype);
});
