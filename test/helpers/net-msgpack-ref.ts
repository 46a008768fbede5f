/**
 * A minimal, independent msgpack decoder for tests: standard types only, no extensions.
 * If our frames decode here, a plain msgpack library in another language can read them.
 */
export function refDecode(buf: Uint8Array): unknown {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = 0;
  const need = (n: number): void => {
    if (p + n > buf.length) throw new Error('truncated');
  };
  const str = (n: number): string => {
    need(n);
    const s = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(p, p + n));
    p += n;
    return s;
  };
  const bin = (n: number): Uint8Array => {
    need(n);
    const b = buf.slice(p, p + n);
    p += n;
    return b;
  };
  const arr = (n: number): unknown[] => Array.from({ length: n }, () => read());
  const map = (n: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const k = read();
      if (typeof k !== 'string') throw new Error('non-string map key');
      o[k] = read();
    }
    return o;
  };
  const read = (): unknown => {
    need(1);
    const b = buf[p++]!;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 256;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    const u8 = (): number => (need(1), dv.getUint8(p++));
    const u16 = (): number => { need(2); const v = dv.getUint16(p); p += 2; return v; };
    const u32 = (): number => { need(4); const v = dv.getUint32(p); p += 4; return v; };
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return bin(u8());
      case 0xc5: return bin(u16());
      case 0xc6: return bin(u32());
      case 0xca: { need(4); const v = dv.getFloat32(p); p += 4; return v; }
      case 0xcb: { need(8); const v = dv.getFloat64(p); p += 8; return v; }
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: { need(8); const v = Number(dv.getBigUint64(p)); p += 8; return v; }
      case 0xd0: { need(1); return dv.getInt8(p++); }
      case 0xd1: { need(2); const v = dv.getInt16(p); p += 2; return v; }
      case 0xd2: { need(4); const v = dv.getInt32(p); p += 4; return v; }
      case 0xd3: { need(8); const v = Number(dv.getBigInt64(p)); p += 8; return v; }
      case 0xd9: return str(u8());
      case 0xda: return str(u16());
      case 0xdb: return str(u32());
      case 0xdc: return arr(u16());
      case 0xdd: return arr(u32());
      case 0xde: return map(u16());
      case 0xdf: return map(u32());
      default: throw new Error(`type byte 0x${b.toString(16)} is not plain msgpack (extension or reserved)`);
    }
  };
  const v = read();
  if (p !== buf.length) throw new Error('trailing bytes');
  return v;
}

/**
 * A minimal msgpack encoder mimicking what Python's msgpack.packb(use_bin_type=True) emits:
 * smallest int encodings, float64 for non-integers, str8/16/32, bin8/16/32, arrays, maps.
 */
export function refEncode(v: unknown): Uint8Array {
  const out: number[] = [];
  const be = (n: number, bytes: number): void => {
    for (let i = bytes - 1; i >= 0; i--) out.push(Math.floor(n / 2 ** (8 * i)) & 0xff);
  };
  const write = (x: unknown): void => {
    if (x === null || x === undefined) out.push(0xc0);
    else if (x === false) out.push(0xc2);
    else if (x === true) out.push(0xc3);
    else if (typeof x === 'number') {
      if (Number.isInteger(x) && x >= 0 && x < 2 ** 32) {
        if (x < 128) out.push(x);
        else if (x < 256) out.push(0xcc, x);
        else if (x < 65536) { out.push(0xcd); be(x, 2); }
        else { out.push(0xce); be(x, 4); }
      } else if (Number.isInteger(x) && x < 0 && x >= -32) out.push(x + 256);
      else {
        const b = new Uint8Array(8);
        new DataView(b.buffer).setFloat64(0, x);
        out.push(0xcb, ...b);
      }
    } else if (typeof x === 'string') {
      const b = new TextEncoder().encode(x);
      if (b.length < 32) out.push(0xa0 | b.length);
      else if (b.length < 256) out.push(0xd9, b.length);
      else if (b.length < 65536) { out.push(0xda); be(b.length, 2); }
      else { out.push(0xdb); be(b.length, 4); }
      for (const c of b) out.push(c);
    } else if (x instanceof Uint8Array) {
      if (x.length < 256) out.push(0xc4, x.length);
      else if (x.length < 65536) { out.push(0xc5); be(x.length, 2); }
      else { out.push(0xc6); be(x.length, 4); }
      for (const c of x) out.push(c);
    } else if (Array.isArray(x)) {
      if (x.length < 16) out.push(0x90 | x.length);
      else { out.push(0xdc); be(x.length, 2); }
      x.forEach(write);
    } else if (typeof x === 'object') {
      const e = Object.entries(x as Record<string, unknown>).filter(([, val]) => val !== undefined);
      if (e.length < 16) out.push(0x80 | e.length);
      else { out.push(0xde); be(e.length, 2); }
      for (const [k, val] of e) { write(k); write(val); }
    } else throw new Error(`cannot encode ${typeof x}`);
  };
  write(v);
  return new Uint8Array(out);
}
