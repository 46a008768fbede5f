/**
 * Seeded generators of bad frames for fuzzing. Every generator here produces frames that
 * are invalid BY CONSTRUCTION for the receiver (each mutation applied is one that breaks the
 * message on its own), so "every frame gets an error or a close, and the state never
 * changes" is a correct expectation, not a probabilistic one.
 */
import { encodeFrame } from '../../src/net/codec.js';
import { Rng } from '../../src/net/sampling.js';

type Obj = Record<string, unknown>;
/** Mutates a message so that it is invalid. */
export type Breaker = (m: Obj, f: Fuzzer) => void;

export class Fuzzer {
  readonly rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  int(n: number): number {
    return n >= 1 ? this.rng.int(n) : 0; // empty ranges draw 0 (fuzzed lengths can be 0)
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.rng.int(xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.rng.int(256);
    return b;
  }
  /** A random string that is not a message type. */
  junkString(max = 12): string {
    const n = this.int(max + 1);
    let s = 'x';
    for (let i = 0; i < n; i++) s += String.fromCharCode(32 + this.int(95));
    return s;
  }
  /** Any msgpack-encodable value, nested up to `depth`. */
  value(depth = 2): unknown {
    switch (this.int(depth > 0 ? 11 : 8)) {
      case 0: return null;
      case 1: return this.rng.next() < 0.5;
      case 2: return this.int(1000) - 500;
      case 3: return (this.rng.next() - 0.5) * 1e6;
      case 4: return this.pick([NaN, Infinity, -Infinity, -0, 2 ** 60, -(2 ** 60), 1e308]);
      case 5: return this.junkString(20);
      case 6: return this.bytes(this.int(40));
      case 7: return '';
      case 8: return Array.from({ length: this.int(5) }, () => this.value(depth - 1));
      case 9: {
        const o: Obj = {};
        for (let i = this.int(5); i > 0; i--) o[this.junkString(6)] = this.value(depth - 1);
        return o;
      }
      default: return { dtype: this.pick(['f32', 'f16', 'f64']), shape: [this.int(4), this.int(4)], data: this.bytes(this.int(64)) };
    }
  }

  /** A value that is not of the JS type of `v` (so replacing a field with it breaks the field). */
  wrongTypeFor(v: unknown): unknown {
    for (let i = 0; i < 20; i++) {
      const w = this.value(1);
      const sameKind = typeof w === typeof v && Array.isArray(w) === Array.isArray(v) && (w instanceof Uint8Array) === (v instanceof Uint8Array) && (w === null) === (v === null);
      if (!sameKind) return w;
    }
    return v === null ? 1 : null;
  }

  // ---- frame-level generators ------------------------------------------------------------

  /** Random bytes (almost never msgpack; never a valid message). */
  randomBytes(): Uint8Array {
    return this.bytes(1 + this.int(300));
  }

  /** Valid msgpack, but no recognizable message: random maps, arrays, scalars. */
  randomMsgpack(): Uint8Array {
    const r = this.int(4);
    if (r === 0) return encodeFrame(this.value(3) as Obj); // may be a scalar/array: not a map
    const o: Obj = {};
    for (let i = this.int(6); i > 0; i--) o[this.junkString(8)] = this.value(2);
    if (r === 1) o.type = this.junkString(10);
    if (r === 2) o.type = this.wrongTypeFor('s');
    return encodeFrame(o);
  }

  /** A prefix of `frame` (never the whole of it). */
  truncate(frame: Uint8Array): Uint8Array {
    return frame.slice(0, this.int(frame.length));
  }

  /** `frame` followed by 1..16 extra bytes. */
  trailing(frame: Uint8Array): Uint8Array {
    const extra = this.bytes(1 + this.int(16));
    const out = new Uint8Array(frame.length + extra.length);
    out.set(frame);
    out.set(extra, frame.length);
    return out;
  }

  /** Flip 1..4 random bytes of a frame whose base is already doubly invalid. */
  flip(frame: Uint8Array): Uint8Array {
    const out = new Uint8Array(frame);
    for (let i = 1 + this.int(4); i > 0; i--) out[this.int(out.length)] ^= 1 + this.int(255);
    return out;
  }

  /** Deep copy then apply 1..3 breakers. */
  mutate(base: Obj, breakers: readonly Breaker[]): Obj {
    const m = structuredClone(base);
    for (let i = 1 + this.int(3); i > 0; i--) this.pick(breakers)(m, this);
    return m;
  }
}

// ---- breakers -----------------------------------------------------------------------------

const NAN_PATTERNS = [0x7fc00000, 0x7f800000, 0xff800000, 0x7f800001, 0xffffffff];

/** Breakers for a tensor field whose correct shape is `shape` (f32). */
export function tensorBreakers(field: string, shape: readonly number[]): Breaker[] {
  const t = (m: Obj): Obj => {
    const v = m[field];
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) return v as Obj;
    const fresh: Obj = { dtype: 'f32', shape: [...shape], data: new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)) };
    m[field] = fresh;
    return fresh;
  };
  return [
    (m, f) => { t(m).dtype = f.pick(['f64', 'int8', 'bf16', '', 'F32', 'float32', 3, null, true]); },
    (m, f) => {
      const s = [...shape];
      const i = f.int(s.length);
      const delta = f.pick([1, 2, 7, -1]);
      s[i] = shape[i]! + delta < 0 ? shape[i]! + 1 : shape[i]! + delta; // never the right value
      t(m).shape = s;
    },
    (m, f) => { t(m).shape = f.pick([[...shape, 1], shape.slice(1), [], [-1, ...shape.slice(1)], [1.5, ...shape.slice(1)], ['2', ...shape.slice(1)], [2 ** 53, 2 ** 53], 'shape', null]); },
    (m, f) => {
      // Cut or pad to a length that is not a multiple of 4: no f32 shape can match it, whatever
      // other breakers did to the shape.
      const d = t(m).data;
      const len = d instanceof Uint8Array ? d.length : 0;
      const r = 1 + f.int(3);
      t(m).data = f.rng.next() < 0.5 && len >= 4 ? (d as Uint8Array).slice(0, 4 * f.int(len >> 2) + r) : new Uint8Array(4 * (len >> 2) + 4 * f.int(3) + r);
    },
    (m, f) => { t(m).data = f.wrongTypeFor(new Uint8Array(0)); },
    (m, f) => { m[field] = f.wrongTypeFor({}); },
    (m) => { delete m[field]; },
    (m, f) => {
      // NaN/Inf in an otherwise well-shaped f32 tensor (rebuilds shape and dtype so only this breaks it).
      const n = shape.reduce((a, b) => a * b, 1);
      if (n === 0) { delete m[field]; return; }
      const data = new Uint8Array(4 * n);
      const dv = new DataView(data.buffer);
      for (let i = 0; i < n; i++) dv.setFloat32(4 * i, f.rng.next() - 0.5, true);
      dv.setUint32(4 * f.int(n), f.pick(NAN_PATTERNS), true);
      m[field] = { dtype: 'f32', shape: [...shape], data };
    },
  ];
}

/**
 * Breakers for a keys list. `exact`: must equal `keys` in order (gradientReply); `known`: must
 * be known keys matching the tensor's first dimension (roundRequest); `any`: any unique strings
 * (maskUpload).
 */
export function keyBreakers(keys: readonly string[], mode: 'exact' | 'known' | 'any'): Breaker[] {
  const list: Breaker[] = [
    (m) => { m.keys = keys.length > 0 ? [...keys, keys[0]!] : 5; }, // duplicate (or not an array)
    (m, f) => { m.keys = f.wrongTypeFor([]); },
    (m, f) => { const k = [...keys]; k[f.int(Math.max(1, k.length))] = f.pick([1, null, '', 'x'.repeat(300), {}]) as string; m.keys = k; },
    (m) => { delete m.keys; },
  ];
  if (mode !== 'any') {
    list.push((m) => { m.keys = keys.slice(1); });
    list.push((m, f) => { const k = [...keys]; k[f.int(Math.max(1, k.length))] = `unknown-${f.int(1e6)}`; m.keys = k; });
  }
  if (mode === 'exact') list.push((m) => { m.keys = [...keys].reverse().concat(keys.length === 1 ? ['extra'] : []); });
  return list;
}

/** Breakers setting `field` to values that are never acceptable for it. */
export function fieldBreakers(field: string, bad: readonly unknown[]): Breaker[] {
  return [
    (m, f) => { m[field] = f.pick(bad); },
    (m) => { delete m[field]; },
  ];
}

/** Breakers for the type field: unknown names, or types of the other direction. */
export function typeBreakers(otherDirection: readonly string[]): Breaker[] {
  return [
    (m, f) => { m.type = f.pick([...otherDirection, 'Hello', 'realImages', '', 'gradient_reply']); },
    (m, f) => { m.type = f.wrongTypeFor('s'); },
    (m) => { delete m.type; },
  ];
}
