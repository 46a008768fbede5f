/**
 * How well an attack recovered a node's images, scored against the real images. Pure functions.
 *
 * Images are Float32 in [-1, 1] (the data sets' and the generator's range), so the data range
 * used by PSNR and SSIM is 2 (PSNR = 10 log10(2^2 / MSE)). The real images are used here and only
 * here: attack code never receives them.
 *
 * The *gain* is the attack's PSNR minus the PSNR of the best thing the attacker legitimately has
 * without attacking (the generator's output for the mask, the fakes it holds, the population mean
 * image). A gain near 0 dB means the replies taught the attacker nothing about the images beyond
 * what the federation is meant to give it.
 */

/** The value range of images in this project ([-1, 1]). */
export const DATA_RANGE = 2;

/** Mean squared error of two equally long arrays. */
export function mse(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`mse: ${a.length} vs ${b.length} values`);
  if (a.length === 0) throw new RangeError('mse: empty arrays');
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s / a.length;
}

/** Mean absolute error. */
export function mae(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`mae: ${a.length} vs ${b.length} values`);
  if (a.length === 0) throw new RangeError('mae: empty arrays');
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/**
 * Peak signal-to-noise ratio in dB for data of the given range (default 2, for [-1, 1]).
 * An exact match would be +Infinity; it is capped at 200 dB so JSON reports stay finite.
 */
export function psnr(estimate: ArrayLike<number>, real: ArrayLike<number>, range = DATA_RANGE): number {
  const e = mse(estimate, real);
  return e === 0 ? 200 : Math.min(200, 10 * Math.log10((range * range) / e));
}

/**
 * SSIM (Wang et al. 2004) of one [H, W] plane: Gaussian window sigma 1.5 (11 taps), K1 0.01,
 * K2 0.03, constants from `range`; mean over the positions where the window fits ("valid"), or
 * over all positions with a truncated window when the plane is smaller than the window.
 */
export function ssimPlane(x: ArrayLike<number>, y: ArrayLike<number>, height: number, width: number, range = DATA_RANGE): number {
  const n = height * width;
  if (x.length !== n || y.length !== n) throw new RangeError(`ssim: need ${height}x${width} = ${n} values, got ${x.length} and ${y.length}`);
  const radius = Math.min(5, Math.floor((Math.min(height, width) - 1) / 2));
  const taps: number[] = [];
  for (let k = -radius; k <= radius; k++) taps.push(Math.exp(-(k * k) / (2 * 1.5 * 1.5)));
  const c1 = (0.01 * range) ** 2;
  const c2 = (0.03 * range) ** 2;
  let total = 0;
  let count = 0;
  for (let i = radius; i < height - radius; i++) {
    for (let j = radius; j < width - radius; j++) {
      let wsum = 0, mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
      for (let di = -radius; di <= radius; di++) {
        for (let dj = -radius; dj <= radius; dj++) {
          const w = taps[di + radius]! * taps[dj + radius]!;
          const p = (i + di) * width + (j + dj);
          const a = x[p]!;
          const b = y[p]!;
          wsum += w; mx += w * a; my += w * b; xx += w * a * a; yy += w * b * b; xy += w * a * b;
        }
      }
      mx /= wsum; my /= wsum;
      const vx = xx / wsum - mx * mx;
      const vy = yy / wsum - my * my;
      const cov = xy / wsum - mx * my;
      total += ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      count++;
    }
  }
  return total / count;
}

/** Mean SSIM over the channels of a [C, H, W] image. */
export function ssim(estimate: ArrayLike<number>, real: ArrayLike<number>, channels: number, height: number, width: number, range = DATA_RANGE): number {
  const plane = height * width;
  if (estimate.length !== channels * plane || real.length !== channels * plane) {
    throw new RangeError(`ssim: need ${channels}x${height}x${width} values, got ${estimate.length} and ${real.length}`);
  }
  const e = Float32Array.from(estimate);
  const r = Float32Array.from(real);
  let s = 0;
  for (let c = 0; c < channels; c++) s += ssimPlane(e.subarray(c * plane, (c + 1) * plane), r.subarray(c * plane, (c + 1) * plane), height, width, range);
  return s / channels;
}

/** Pixel-wise mean of equally long images (e.g. the population mean image). */
export function meanImage(images: readonly ArrayLike<number>[]): Float32Array {
  if (images.length === 0) throw new RangeError('meanImage: no images');
  const out = new Float64Array(images[0]!.length);
  for (const im of images) {
    if (im.length !== out.length) throw new RangeError(`meanImage: ${im.length} vs ${out.length} values`);
    for (let i = 0; i < out.length; i++) out[i]! += im[i]!;
  }
  return Float32Array.from(out, (v) => v / images.length);
}

/**
 * Area under the ROC curve that `positives` score above `negatives` (Mann-Whitney U / (m n),
 * ties count one half). 0.5 is chance; 1 means every positive outscores every negative.
 */
export function rocAuc(positives: readonly number[], negatives: readonly number[]): number {
  if (positives.length === 0 || negatives.length === 0) throw new RangeError('rocAuc: need at least one positive and one negative');
  const all = [...positives.map((s) => ({ s, pos: true })), ...negatives.map((s) => ({ s, pos: false }))].sort((a, b) => a.s - b.s);
  // Mid-ranks (1-based), averaged over ties.
  let rankSumPos = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.s === all[i]!.s) j++;
    const mid = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k]!.pos) rankSumPos += mid;
    i = j;
  }
  const m = positives.length;
  const n = negatives.length;
  return (rankSumPos - (m * (m + 1)) / 2) / (m * n);
}

/** Scores of one attack over a set of images. */
export interface ReconstructionScores {
  /** Mean PSNR (dB, data range 2) of the attack's estimates. */
  psnr: number;
  /** Mean SSIM of the attack's estimates. */
  ssim: number;
  /** Per baseline name: mean PSNR of what the attacker legitimately has. */
  baselines: Record<string, number>;
  /** The best baseline (by mean PSNR): its name and PSNR. */
  bestBaseline: { name: string; psnr: number };
  /** psnr - bestBaseline.psnr. */
  gain: number;
  /** Per image: PSNR of the estimate, and of the best baseline for that image. */
  perImage: { psnr: number; ssim: number; baseline: number }[];
}

/**
 * Score estimates against the real images. `baselines` maps a name to one image per real image
 * (e.g. the generator's output for each mask) or to one image for all (e.g. the population mean).
 * The best baseline is picked by mean PSNR over the images (the attacker does not know which
 * baseline is better for which image, so a per-image maximum would overstate it).
 */
export function scoreReconstruction(
  estimates: readonly ArrayLike<number>[],
  real: readonly ArrayLike<number>[],
  baselines: Record<string, ArrayLike<number> | readonly ArrayLike<number>[]>,
  geometry: { channels: number; height: number; width: number },
): ReconstructionScores {
  if (estimates.length !== real.length || real.length === 0) throw new RangeError(`scoreReconstruction: ${estimates.length} estimates for ${real.length} real images`);
  const names = Object.keys(baselines);
  if (names.length === 0) throw new RangeError('scoreReconstruction: no baseline');
  const pick = (b: ArrayLike<number> | readonly ArrayLike<number>[], i: number): ArrayLike<number> => (Array.isArray(b) ? (b as readonly ArrayLike<number>[])[i]! : (b as ArrayLike<number>));
  const base: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, real.map((r, i) => psnr(pick(baselines[n]!, i), r))]));
  const meanOf = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const baseMeans = Object.fromEntries(names.map((n) => [n, meanOf(base[n]!)]));
  const best = names.reduce((a, b) => (baseMeans[b]! > baseMeans[a]! ? b : a));
  const perImage = real.map((r, i) => ({
    psnr: psnr(estimates[i]!, r),
    ssim: ssim(estimates[i]!, r, geometry.channels, geometry.height, geometry.width),
    baseline: base[best]![i]!,
  }));
  const p = meanOf(perImage.map((x) => x.psnr));
  return {
    psnr: p,
    ssim: meanOf(perImage.map((x) => x.ssim)),
    baselines: baseMeans,
    bestBaseline: { name: best, psnr: baseMeans[best]! },
    gain: p - baseMeans[best]!,
    perImage,
  };
}
