/**
 * Per-sample clipping of a reply: each sample's [C, H, W] block of d(loss)/d(fake) is scaled
 * down to L2 norm at most `clip` (blocks already inside are left exactly as they are). This
 * bounds how much any one block, hence any one patient's image, can move the reply.
 */

/** What clipping did to one reply. */
export interface ClipReport {
  /** Blocks that were scaled down. */
  clipped: number;
  /** Largest block norm before clipping. */
  maxNorm: number;
}

/** Clip each of the `grad.length / perSample` blocks of `grad` to L2 norm `clip`, in place. */
export function clipPerSample(grad: Float32Array, perSample: number, clip: number): ClipReport {
  if (!(clip > 0) || !Number.isFinite(clip)) throw new RangeError(`clip norm must be finite and > 0, got ${clip}`);
  if (!Number.isInteger(perSample) || perSample <= 0 || grad.length % perSample !== 0) {
    throw new RangeError(`${grad.length} values are not whole samples of ${perSample}`);
  }
  let clipped = 0;
  let maxNorm = 0;
  for (let start = 0; start < grad.length; start += perSample) {
    let sq = 0;
    for (let i = start; i < start + perSample; i++) sq += grad[i]! * grad[i]!;
    const norm = Math.sqrt(sq);
    if (norm > maxNorm) maxNorm = norm;
    if (norm <= clip) continue;
    // f32 rounding of the scaled values can land a hair above `clip`: aim just inside it.
    const scale = (clip / norm) * (1 - 1e-6);
    for (let i = start; i < start + perSample; i++) grad[i] = grad[i]! * scale;
    clipped++;
  }
  return { clipped, maxNorm };
}

/** L2 norm of each sample's block (for tests and diagnostics). */
export function sampleNorms(grad: Float32Array, perSample: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < grad.length; start += perSample) {
    let sq = 0;
    for (let i = start; i < start + perSample; i++) sq += grad[i]! * grad[i]!;
    out.push(Math.sqrt(sq));
  }
  return out;
}
