/**
 * Paired augmentation of (label map, image): random crop, flips and a small affine (rotation, scale,
 * translation), applied with the *same* geometric transform to the mask (nearest neighbour) and the
 * image (bilinear), so they stay aligned.
 *
 * Parameters are a plain JSON-serializable object drawn from a seeded Rng: in AsynDGAN the server
 * draws them, sends them with its fake images, and each node applies them to its real image and
 * mask; applying the same parameters always gives the same bytes (pure functions, no hidden state).
 *
 * Geometry: pixel i covers [i, i+1) (centre i + 0.5, as in slices.ts). The transform acts about the
 * image centre (W/2, H/2): canvas = C + t + R(rotation) * S(scale) * Flip * (input - C); the output
 * is the window [cropLeft, cropLeft + outWidth) x [cropTop, cropTop + outHeight) of that canvas.
 * Flips and integer crops are therefore exact index permutations. Pixels that map outside the input
 * get the fill value (label 0 / intensity -1, i.e. background).
 */
import { mat3 } from 'gl-matrix';
import type { Rng } from '../engine/index.js';
import type { Slice } from './sample.js';

/** Ranges from which `sampleAugmentParams` draws. All fields optional; see defaults. */
export interface AugmentConfig {
  /** Probability of a left-right flip (default 0.5). */
  flipH?: number;
  /** Probability of an up-down flip (default 0: axial brain slices are not symmetric top-bottom). */
  flipV?: number;
  /** Rotation drawn uniformly in [-max, max] degrees (default 10). */
  maxRotationDeg?: number;
  /** Isotropic scale drawn uniformly in [lo, hi] (default [0.9, 1.1]). */
  scale?: [number, number];
  /** Translation drawn uniformly in [-max, max] times the image size, per axis (default 0.05). */
  maxTranslate?: number;
  /** Random crop window; null/absent = output has the input's size (default). */
  crop?: { height: number; width: number } | null;
}

/** One concrete augmentation. Plain data (numbers and booleans) so it can travel in a message. */
export interface AugmentParams {
  /** Input size these parameters are for. */
  height: number;
  width: number;
  /** Output size (the crop window; equal to the input size when not cropping). */
  outHeight: number;
  outWidth: number;
  /** Top-left corner of the output window on the transformed canvas (integers). */
  cropTop: number;
  cropLeft: number;
  flipH: boolean;
  flipV: boolean;
  /** Radians; positive turns the picture clockwise on screen (the y axis points down). */
  rotation: number;
  scale: number;
  /** Pixels. */
  translateX: number;
  translateY: number;
}

/** The no-op augmentation for an h x w image. */
export function identityAugment(height: number, width: number): AugmentParams {
  return { height, width, outHeight: height, outWidth: width, cropTop: 0, cropLeft: 0, flipH: false, flipV: false, rotation: 0, scale: 1, translateX: 0, translateY: 0 };
}

/**
 * Draws augmentation parameters. Always consumes the same number of random values, whatever the
 * config, so changing one range does not shift the other draws of a seeded stream.
 */
export function sampleAugmentParams(rng: Rng, height: number, width: number, config: AugmentConfig = {}): AugmentParams {
  const pH = config.flipH ?? 0.5;
  const pV = config.flipV ?? 0;
  const maxRot = ((config.maxRotationDeg ?? 10) * Math.PI) / 180;
  const [s0, s1] = config.scale ?? [0.9, 1.1];
  const maxT = config.maxTranslate ?? 0.05;
  const crop = config.crop ?? null;
  const outHeight = crop ? crop.height : height;
  const outWidth = crop ? crop.width : width;
  if (!(outHeight >= 1 && outHeight <= height && outWidth >= 1 && outWidth <= width))
    throw new Error(`sampleAugmentParams: crop ${outHeight}x${outWidth} does not fit in ${height}x${width}`);
  if (!(s0 > 0 && s1 >= s0)) throw new Error(`sampleAugmentParams: bad scale range [${s0}, ${s1}]`);
  const flipH = rng.next() < pH;
  const flipV = rng.next() < pV;
  const rotation = rng.uniform(-maxRot, maxRot);
  const scale = rng.uniform(s0, s1);
  const translateX = rng.uniform(-maxT, maxT) * width;
  const translateY = rng.uniform(-maxT, maxT) * height;
  const cropTop = Math.floor(rng.next() * (height - outHeight + 1));
  const cropLeft = Math.floor(rng.next() * (width - outWidth + 1));
  return { height, width, outHeight, outWidth, cropTop, cropLeft, flipH, flipV, rotation, scale, translateX, translateY };
}

/** Throws if `p` is not a well-formed AugmentParams (it may come from the network). */
export function validateAugmentParams(p: AugmentParams): void {
  const ints = ['height', 'width', 'outHeight', 'outWidth', 'cropTop', 'cropLeft'] as const;
  for (const k of ints) if (!Number.isInteger(p[k])) throw new Error(`augment params: ${k} must be an integer, got ${String(p[k])}`);
  for (const k of ['rotation', 'scale', 'translateX', 'translateY'] as const)
    if (typeof p[k] !== 'number' || !Number.isFinite(p[k])) throw new Error(`augment params: ${k} must be a finite number, got ${String(p[k])}`);
  if (typeof p.flipH !== 'boolean' || typeof p.flipV !== 'boolean') throw new Error('augment params: flipH/flipV must be booleans');
  if (p.height < 1 || p.width < 1 || p.outHeight < 1 || p.outWidth < 1) throw new Error('augment params: sizes must be >= 1');
  if (!(p.scale > 0)) throw new Error(`augment params: scale must be > 0, got ${p.scale}`);
}

/**
 * The 3x3 (column-major, gl-matrix layout) matrix mapping output pixel coordinates to input
 * coordinates (continuous, pixel i = [i, i+1)). Float64 so flips stay exact.
 */
export function augmentMatrix(p: AugmentParams): Float64Array {
  validateAugmentParams(p);
  const cx = p.width / 2;
  const cy = p.height / 2;
  // Forward (input -> canvas): T(c + t) * R * S * Flip * T(-c), composed right to left.
  const fwd = new Float64Array(9);
  mat3.fromTranslation(fwd, [cx + p.translateX, cy + p.translateY]);
  if (p.rotation !== 0) mat3.rotate(fwd, fwd, p.rotation);
  mat3.scale(fwd, fwd, [p.scale * (p.flipH ? -1 : 1), p.scale * (p.flipV ? -1 : 1)]);
  mat3.translate(fwd, fwd, [-cx, -cy]);
  // Output window offset, then invert to get output -> input.
  const win = new Float64Array(9);
  mat3.fromTranslation(win, [-p.cropLeft, -p.cropTop]);
  mat3.multiply(fwd, win, fwd);
  const inv = new Float64Array(9);
  if (!mat3.invert(inv, fwd)) throw new Error('augmentMatrix: singular transform');
  return inv;
}

function checkLen(what: string, len: number, channels: number, p: AugmentParams): void {
  if (len !== channels * p.height * p.width)
    throw new Error(`${what}: data has ${len} values, params expect ${channels}x${p.height}x${p.width}`);
}

/** Warps a label map [H*W] with nearest-neighbour sampling; outside -> `fill` (default 0). */
export function warpLabels(mask: Uint8Array, p: AugmentParams, fill = 0): Uint8Array {
  checkLen('warpLabels', mask.length, 1, p);
  const A = augmentMatrix(p);
  const { width: W, height: H, outWidth: OW, outHeight: OH } = p;
  const out = new Uint8Array(OW * OH);
  for (let oy = 0; oy < OH; oy++)
    for (let ox = 0; ox < OW; ox++) {
      const px = ox + 0.5;
      const py = oy + 0.5;
      const ix = Math.floor(A[0]! * px + A[3]! * py + A[6]!);
      const iy = Math.floor(A[1]! * px + A[4]! * py + A[7]!);
      out[oy * OW + ox] = ix >= 0 && ix < W && iy >= 0 && iy < H ? mask[iy * W + ix]! : fill;
    }
  return out;
}

/** Visits the bilinear taps of every output pixel: (outIndex, inIndex or -1 for outside, weight). */
function forEachTap(p: AugmentParams, visit: (o: number, i: number, w: number) => void): void {
  const A = augmentMatrix(p);
  const { width: W, height: H, outWidth: OW, outHeight: OH } = p;
  for (let oy = 0; oy < OH; oy++)
    for (let ox = 0; ox < OW; ox++) {
      const px = ox + 0.5;
      const py = oy + 0.5;
      // Input position in "pixel-centre" units (centre of pixel i at i).
      const sx = A[0]! * px + A[3]! * py + A[6]! - 0.5;
      const sy = A[1]! * px + A[4]! * py + A[7]! - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = oy * OW + ox;
      for (let dy = 0; dy < 2; dy++) {
        const wy = dy ? fy : 1 - fy;
        if (wy === 0) continue;
        const y = y0 + dy;
        for (let dx = 0; dx < 2; dx++) {
          const wx = dx ? fx : 1 - fx;
          if (wx === 0) continue;
          const x = x0 + dx;
          visit(o, x >= 0 && x < W && y >= 0 && y < H ? y * W + x : -1, wx * wy);
        }
      }
    }
}

/**
 * Warps a channel-major image [C*H*W] -> [C*outH*outW] with bilinear sampling; samples outside the
 * input read `fill` (default -1, the "no signal" value), so the edge of the field of view fades to
 * background instead of smearing the border pixels.
 */
export function warpImage(image: Float32Array, channels: number, p: AugmentParams, fill = -1): Float32Array {
  checkLen('warpImage', image.length, channels, p);
  const HW = p.height * p.width;
  const OHW = p.outHeight * p.outWidth;
  const out = new Float32Array(channels * OHW);
  const acc = new Float64Array(channels * OHW);
  forEachTap(p, (o, i, w) => {
    for (let c = 0; c < channels; c++) acc[c * OHW + o] += w * (i >= 0 ? image[c * HW + i]! : fill);
  });
  out.set(acc);
  return out;
}

/**
 * Adjoint of `warpImage` with respect to its input (the fill is a constant and gets no gradient):
 * turns d(loss)/d(warped) [C*outH*outW] into d(loss)/d(image) [C*H*W]. Needed when a discriminator
 * sees augmented fakes and the gradient must flow back to the unaugmented generator output.
 */
export function warpImageBackward(gradOut: Float32Array, channels: number, p: AugmentParams): Float32Array {
  const HW = p.height * p.width;
  const OHW = p.outHeight * p.outWidth;
  if (gradOut.length !== channels * OHW)
    throw new Error(`warpImageBackward: gradient has ${gradOut.length} values, params expect ${channels}x${p.outHeight}x${p.outWidth}`);
  const acc = new Float64Array(channels * HW);
  forEachTap(p, (o, i, w) => {
    if (i < 0) return;
    for (let c = 0; c < channels; c++) acc[c * HW + i] += w * gradOut[c * OHW + o]!;
  });
  return Float32Array.from(acc);
}

/** Augments one slice (mask nearest, image bilinear) with the same parameters. */
export function augmentSlice(slice: Slice, p: AugmentParams): Slice {
  const M = slice.modalities.length;
  return {
    ...slice,
    mask: warpLabels(slice.mask, p),
    image: warpImage(slice.image, M, p),
    modalities: [...slice.modalities],
    meta: { ...slice.meta },
  };
}
