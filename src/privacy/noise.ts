/**
 * Gaussian noise for a node's replies. The noise must be unpredictable to the server, so the
 * default source draws its uniforms from node:crypto; a seeded source exists for tests only.
 * Sampling is Box-Muller in float64 (53-bit uniforms), one pair of normals per two uniforms.
 */
import { randomBytes } from 'node:crypto';

/** A source of independent standard normal draws. */
export interface NormalSource {
  /** One N(0, 1) draw. */
  next(): number;
}

/** Uniforms in (0, 1) with 53 random bits each. */
type UniformSource = () => number;

/** Box-Muller on any uniform source; caches the second normal of each pair. */
class BoxMuller implements NormalSource {
  private spare: number | undefined;
  constructor(private readonly uniform: UniformSource) {}
  next(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u1 = this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  }
}

/** Normals from the operating system's CSPRNG (node:crypto), read in 8 KiB blocks. */
export function cryptoNormalSource(): NormalSource {
  let block = randomBytes(8192);
  let at = 0;
  return new BoxMuller(() => {
    if (at + 8 > block.length) {
      block = randomBytes(8192);
      at = 0;
    }
    // 53 bits: 21 from the high word, 32 from the low word; +0.5 keeps the value in (0, 1).
    const hi = block.readUInt32LE(at) >>> 11;
    const lo = block.readUInt32LE(at + 4);
    at += 8;
    return (hi * 4294967296 + lo + 0.5) / 9007199254740992;
  });
}

/**
 * A reproducible source for TESTS ONLY (xorshift128+ on a 32-bit seed): the server could
 * predict and subtract its noise, so the node never uses it.
 */
export function seededNormalSource(seed: number): NormalSource {
  let s0 = BigInt.asUintN(64, BigInt(seed >>> 0) * 0x9e3779b97f4a7c15n + 1n);
  let s1 = BigInt.asUintN(64, s0 * 0xbf58476d1ce4e5b9n + 7n);
  const next64 = (): bigint => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = BigInt.asUintN(64, x ^ (x << 23n));
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return BigInt.asUintN(64, s1 + y);
  };
  return new BoxMuller(() => (Number(next64() >> 11n) + 0.5) / 9007199254740992);
}

/** Add N(0, std^2) to every element of `x`, in place. */
export function addGaussianNoise(x: Float32Array, std: number, source: NormalSource): void {
  if (!(std >= 0) || !Number.isFinite(std)) throw new RangeError(`noise standard deviation must be finite and >= 0, got ${std}`);
  if (std === 0) return;
  for (let i = 0; i < x.length; i++) x[i] = x[i]! + std * source.next();
}
