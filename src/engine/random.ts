/**
 * The project's one seeded pseudo-random number generator: weight initialization, data sets,
 * augmentation parameters, batch sampling and tests all draw from it.
 *
 * Why our own: everything must be bit-reproducible from a seed (the server and the nodes must agree
 * on augmentation parameters, checkpoints resume the exact stream, tests compare bytes), and
 * `Math.random` cannot be seeded. The core is mulberry32: one 32-bit word of state, so a stream is
 * saved as a single number (`state` / `fromState`, used by the coordinator's checkpoints), and it
 * passes the usual statistical batteries well enough for image synthesis and initialization. Its
 * period is 2^32: the reference generator's 11.4 M weights draw about 23 M values, far below it.
 * It is *not* cryptographic: privacy noise comes from node:crypto (src/privacy/noise.ts).
 */

/** Mixes any number of integers / strings into one 32-bit seed (FNV-1a then a murmur3 finalizer). */
export function hashSeed(...parts: Array<number | string>): number {
  let h = 0x811c9dc5;
  const mixByte = (b: number): void => {
    h ^= b & 0xff;
    h = Math.imul(h, 0x01000193);
  };
  for (const p of parts) {
    if (typeof p === 'string') {
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        mixByte(c);
        mixByte(c >>> 8);
      }
      mixByte(0xff); // separator so ("ab","c") != ("a","bc")
    } else {
      // Integers only: fractional seeds would silently collide after truncation.
      if (!Number.isFinite(p)) throw new Error(`hashSeed: non-finite seed part ${p}`);
      const v = Math.trunc(p);
      const lo = v >>> 0;
      const hi = Math.floor(v / 4294967296) >>> 0;
      for (let s = 0; s < 32; s += 8) mixByte(lo >>> s);
      for (let s = 0; s < 32; s += 8) mixByte(hi >>> s);
    }
  }
  // murmur3 fmix32: spreads the last bytes' influence across all bits.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A seeded generator (mulberry32). All methods advance the same 32-bit state. */
export class Rng {
  private s: number;

  /** A generator for `seed` (any integer; it is hashed, so nearby seeds give unrelated streams). */
  constructor(seed: number) {
    this.s = hashSeed(seed);
  }

  /** Current internal state; `Rng.fromState(rng.state)` continues the identical sequence. */
  get state(): number {
    return this.s;
  }

  /** Re-creates a generator from a saved `state` (not a seed). */
  static fromState(state: number): Rng {
    const r = new Rng(0);
    r.s = state >>> 0;
    return r;
  }

  /** Uniform 32-bit unsigned integer (e.g. a sub-seed). */
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi) (default [0, 1)). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new Error(`Rng.int: n must be >= 1, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  /** Standard normal sample (Box-Muller; one value per call, keeps the stream simple to reason about). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]: log(0) never happens
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** `n` samples of normal(mean, std). */
  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = mean + std * this.normal();
    return a;
  }

  /** `n` samples of uniform[low, high). */
  uniformArray(n: number, low = 0, high = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(low, high);
    return a;
  }

  /** A child generator whose stream depends on this one's seed state and `label`, without advancing this one. */
  fork(label: number | string): Rng {
    return Rng.fromState(hashSeed(this.s, label));
  }

  /** In-place Fisher-Yates shuffle; returns `arr`. */
  shuffle<T>(arr: T[]): T[] {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = tmp;
    }
    return arr;
  }
}
