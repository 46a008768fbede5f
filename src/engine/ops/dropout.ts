/** Dropout with a stateless, seeded GPU mask (no mask tensor is stored). */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { launch1d } from './launch.js';

const FILE = 'dropout.wgsl';
const DRAW_RANGE = 2 ** 24;

function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The hash keys (k1, k2) of a seed: both 32-bit halves of it pass through the permutation. */
function seedKeys(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new ShapeError(`dropout: seed must be a non-negative safe integer, got ${seed}`);
  }
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  const k1 = pcg((lo ^ pcg(hi)) >>> 0);
  return [k1, pcg((k1 ^ 0x9e3779b9) >>> 0)];
}

function threshold(p: number): number {
  return Math.round(p * DRAW_RANGE);
}

/**
 * The keep mask dropout(x, p, seed) uses, computed on the CPU (1 = kept): the same hash as
 * shaders/dropout.wgsl. For tests and for reproducing a GPU mask elsewhere.
 */
export function dropoutMask(n: number, p: number, seed: number): Uint8Array {
  const [k1, k2] = seedKeys(seed);
  const t = threshold(p);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = pcg((pcg((i ^ k1) >>> 0) + k2) >>> 0) >>> 8 >= t ? 1 : 0;
  return mask;
}

/**
 * Inverted dropout: zeroes each element with probability p and scales the kept ones by
 * 1 / (1 - p). The mask is a pure function of (seed, element index): the same seed gives the same
 * mask, and the backward applies that same mask to the gradient. Identity (a view of x) when
 * `training` is false or p == 0; all zeros when p == 1. p is quantized to a multiple of 2^-24.
 */
export function dropout(x: Tensor, p: number, seed: number, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new ShapeError(`dropout: p must be in [0, 1], got ${p}`);
  const [k1, k2] = seedKeys(seed);
  if (!training || p === 0) return record('dropout', x.share(), [x], [], (g) => [g.share()]);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const params = new Params().u32(x.size, threshold(p), k1, k2).f32(scale).data();
  const apply = (src: Tensor): Tensor => {
    const out = Tensor.empty(src.shape);
    launch1d(src.size, {
      file: FILE,
      entry: 'apply',
      params,
      buffers: [src.binding(), out.binding()],
      cost: { flops: 20 * src.size, bytes: 8 * src.size },
    });
    return out;
  };
  return record('dropout', apply(x), [x], [], (g) => [apply(g)]);
}
