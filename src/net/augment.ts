/**
 * Shape-preserving augmentations shared by server (applied to masks before the generator)
 * and node (applied to the matching real images), so both sides transform identically.
 */
import type { Shape4 } from './backend.js';
import type { AugParams } from './protocol.js';

/** Draws augmentation parameters for one sample; `rng` returns uniform [0, 1). */
export type AugmentationPolicy = (rng: () => number) => AugParams;

/** Policy flipping horizontally and/or vertically, each with probability `p`. */
export function randomFlips(opts: { horizontal?: boolean; vertical?: boolean; p?: number } = {}): AugmentationPolicy {
  const p = opts.p ?? 0.5;
  return (rng) => {
    const a: AugParams = {};
    if (opts.horizontal ?? true) a.flipH = rng() < p;
    if (opts.vertical ?? false) a.flipV = rng() < p;
    return a;
  };
}

/** Return a copy of `data` ([n, C, H, W]) with `aug[i]` applied to sample i. */
export function applyAugmentation(data: Float32Array, shape: Shape4, aug: readonly AugParams[] | undefined): Float32Array {
  const out = new Float32Array(data);
  if (!aug) return out;
  const [n, c, h, w] = shape;
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const a = aug[i];
    if (!a || (!a.flipH && !a.flipV)) continue;
    for (let ch = 0; ch < c; ch++) {
      const base = (i * c + ch) * plane;
      for (let y = 0; y < h; y++) {
        const sy = a.flipV ? h - 1 - y : y;
        for (let x = 0; x < w; x++) {
          const sx = a.flipH ? w - 1 - x : x;
          out[base + y * w + x] = data[base + sy * w + sx]!;
        }
      }
    }
  }
  return out;
}
