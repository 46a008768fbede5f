/**
 * 2-D slice preparation for volume loaders: axial slicing, intensity normalization, foreground
 * filtering, resizing (nearest for labels, bilinear for images) and crop/pad.
 *
 * Pixel-grid convention used by every resampler here (and by augment.ts): pixel i covers the
 * continuous interval [i, i+1) and its centre is i + 0.5 ("half-pixel centres", align_corners=false).
 * With that convention resizing a W-wide image to 2W and back lands on the same centres, and flips /
 * crops are exact index permutations.
 */

/** The part of a NIfTI volume the slicer needs: dims [x, y, z] and x-fastest voxel data. */
export interface VolumeLike {
  dims: readonly [number, number, number];
  data: ArrayLike<number>;
}

/**
 * Axial slice `z` of a volume as a [Y*X] row-major image (height = dims[1], width = dims[0]).
 * With `flipY` (default) row 0 is the largest y: for RAS-oriented data (MNI/Colin27, and our phantom)
 * anterior is then at the top, the usual radiological display, which keeps slices from different
 * sources visually comparable. Left-right is not flipped (x increases to the right of the picture).
 */
export function axialSlice(vol: VolumeLike, z: number, flipY = true): Float32Array {
  const [X, Y, Z] = vol.dims;
  if (!(Number.isInteger(z) && z >= 0 && z < Z)) throw new Error(`axialSlice: z=${z} outside 0..${Z - 1}`);
  const out = new Float32Array(X * Y);
  const base = z * X * Y;
  for (let y = 0; y < Y; y++) {
    const row = flipY ? Y - 1 - y : y;
    for (let x = 0; x < X; x++) out[row * X + x] = vol.data[base + y * X + x]!;
  }
  return out;
}

/**
 * The `lowPct` and `highPct` percentiles (0..100, linear interpolation) of `values` where `mask` is
 * non-zero (all values when no mask). Throws when the mask selects nothing.
 */
export function percentileRange(
  values: ArrayLike<number>,
  mask: ArrayLike<number> | null,
  lowPct = 0.5,
  highPct = 99.5,
): [number, number] {
  if (!(lowPct >= 0 && lowPct <= highPct && highPct <= 100))
    throw new Error(`percentileRange: need 0 <= low <= high <= 100, got ${lowPct}, ${highPct}`);
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!mask || mask[i]) n++;
  if (n === 0) throw new Error('percentileRange: the mask selects no values');
  const sel = new Float32Array(n);
  n = 0;
  for (let i = 0; i < values.length; i++) if (!mask || mask[i]) sel[n++] = values[i]!;
  sel.sort();
  const at = (p: number): number => {
    const f = (p / 100) * (n - 1);
    const i0 = Math.floor(f);
    const i1 = Math.min(n - 1, i0 + 1);
    return sel[i0]! + (sel[i1]! - sel[i0]!) * (f - i0);
  };
  return [at(lowPct), at(highPct)];
}

/**
 * Percentile-clip normalization to [-1, 1] within a region: values are clipped to the
 * [lowPct, highPct] percentiles computed inside `mask` and mapped linearly to [-1, 1]; outside the
 * mask the result is -1 (the "no signal" value the generator learns for background).
 * Why percentiles rather than min/max: MR intensities have no absolute scale and a few hot voxels
 * (vessels, artefacts) would otherwise squash the tissue contrast.
 * Without a mask the region is `values > 0` (the body in skull-stripped / background-zeroed scans).
 */
export function normalizeIntensity(
  values: ArrayLike<number>,
  mask?: ArrayLike<number> | null,
  opts: { lowPct?: number; highPct?: number } = {},
): Float32Array {
  const region = mask ?? Uint8Array.from({ length: values.length }, (_, i) => (values[i]! > 0 ? 1 : 0));
  if (region.length !== values.length)
    throw new Error(`normalizeIntensity: mask has ${region.length} values, data ${values.length}`);
  const [lo, hi] = percentileRange(values, region, opts.lowPct ?? 0.5, opts.highPct ?? 99.5);
  const out = new Float32Array(values.length).fill(-1);
  const scale = hi > lo ? 2 / (hi - lo) : 0; // a constant region maps to -1 rather than NaN
  for (let i = 0; i < values.length; i++) {
    if (!region[i]) continue;
    const v = Math.min(hi, Math.max(lo, values[i]!));
    out[i] = Math.min(1, Math.max(-1, (v - lo) * scale - 1));
  }
  return out;
}

/** Number of pixels whose label satisfies `isForeground` (default: any non-zero label). */
export function countForeground(mask: ArrayLike<number>, isForeground: (label: number) => boolean = (l) => l > 0): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (isForeground(mask[i]!)) n++;
  return n;
}

/** Slice filter: true when at least `minPixels` pixels are foreground (e.g. tumour). */
export function hasEnoughForeground(
  mask: ArrayLike<number>,
  minPixels: number,
  isForeground: (label: number) => boolean = (l) => l > 0,
): boolean {
  return countForeground(mask, isForeground) >= minPixels;
}

/**
 * Nearest-neighbour resize of a label map (labels are categorical: never interpolate them).
 * Output pixel centre (i + 0.5) * in/out maps to the input pixel containing it.
 * Upsampling keeps every label; downsampling can drop regions thinner than the scale factor.
 */
export function resizeNearest<T extends Uint8Array | Float32Array>(src: T, h: number, w: number, outH: number, outW: number, channels = 1): T {
  checkSize('resizeNearest', src.length, channels, h, w);
  const out = new (src.constructor as new (n: number) => T)(channels * outH * outW);
  const xs = new Int32Array(outW);
  for (let x = 0; x < outW; x++) xs[x] = Math.min(w - 1, Math.floor(((x + 0.5) * w) / outW));
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < outH; y++) {
      const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / outH));
      const srow = c * h * w + sy * w;
      const orow = c * outH * outW + y * outW;
      for (let x = 0; x < outW; x++) out[orow + x] = src[srow + xs[x]!]!;
    }
  return out;
}

/**
 * Separable triangle-filter weights for resampling `inN` samples to `outN` (PIL-style "bilinear"):
 * exactly bilinear interpolation when upsampling; when downsampling the triangle is widened by the
 * scale factor so the result is an area-weighted average instead of an aliased point sample
 * (217 -> 64 px would otherwise skip two rows out of three).
 */
function triangleWeights(inN: number, outN: number, antialias: boolean): { idx: Int32Array[]; wts: Float64Array[] } {
  const scale = inN / outN;
  const support = antialias && scale > 1 ? scale : 1;
  const idx: Int32Array[] = [];
  const wts: Float64Array[] = [];
  for (let o = 0; o < outN; o++) {
    const centre = (o + 0.5) * scale; // continuous input coordinate
    const lo = Math.max(0, Math.floor(centre - support - 0.5));
    const hi = Math.min(inN - 1, Math.ceil(centre + support - 0.5));
    const ii: number[] = [];
    const ww: number[] = [];
    let sum = 0;
    for (let i = lo; i <= hi; i++) {
      const wgt = Math.max(0, 1 - Math.abs(i + 0.5 - centre) / support);
      if (wgt > 0) {
        ii.push(i);
        ww.push(wgt);
        sum += wgt;
      }
    }
    if (sum === 0) {
      // Only happens at the very border when upsampling: clamp to the nearest edge sample.
      ii.push(Math.min(inN - 1, Math.max(0, Math.floor(centre))));
      ww.push(1);
      sum = 1;
    }
    idx.push(Int32Array.from(ii));
    wts.push(Float64Array.from(ww, (v) => v / sum));
  }
  return { idx, wts };
}

/**
 * Bilinear resize of a channel-major image [C*h*w] -> [C*outH*outW] with half-pixel centres and edge
 * clamping. `antialias` (default true) widens the filter when downsampling (see triangleWeights).
 */
export function resizeBilinear(
  src: Float32Array,
  h: number,
  w: number,
  outH: number,
  outW: number,
  channels = 1,
  antialias = true,
): Float32Array {
  checkSize('resizeBilinear', src.length, channels, h, w);
  if (outH === h && outW === w) return src.slice();
  const fx = triangleWeights(w, outW, antialias);
  const fy = triangleWeights(h, outH, antialias);
  const tmp = new Float64Array(h * outW);
  const out = new Float32Array(channels * outH * outW);
  for (let c = 0; c < channels; c++) {
    const cs = c * h * w;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < outW; x++) {
        const ii = fx.idx[x]!;
        const ww = fx.wts[x]!;
        let acc = 0;
        for (let k = 0; k < ii.length; k++) acc += ww[k]! * src[cs + y * w + ii[k]!]!;
        tmp[y * outW + x] = acc;
      }
    const co = c * outH * outW;
    for (let y = 0; y < outH; y++) {
      const ii = fy.idx[y]!;
      const ww = fy.wts[y]!;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let k = 0; k < ii.length; k++) acc += ww[k]! * tmp[ii[k]! * outW + x]!;
        out[co + y * outW + x] = acc;
      }
    }
  }
  return out;
}

/**
 * Crops and/or pads a channel-major image to outH x outW. The output's top-left corner sits at input
 * position (top, left), which may be negative (padding) or beyond (cropping); by default the content
 * is centred. Pixels outside the input get `fill` (e.g. 0 = background label, -1 = no signal).
 */
export function cropOrPad<T extends Uint8Array | Float32Array>(
  src: T,
  h: number,
  w: number,
  outH: number,
  outW: number,
  opts: { channels?: number; fill?: number; top?: number; left?: number } = {},
): T {
  const channels = opts.channels ?? 1;
  checkSize('cropOrPad', src.length, channels, h, w);
  // trunc, not floor: the odd pixel goes to the bottom/right both when padding and when cropping,
  // so a centred pad followed by a centred crop back is the identity.
  const top = opts.top ?? Math.trunc((h - outH) / 2);
  const left = opts.left ?? Math.trunc((w - outW) / 2);
  const out = new (src.constructor as new (n: number) => T)(channels * outH * outW);
  out.fill(opts.fill ?? 0);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < outH; y++) {
      const sy = y + top;
      if (sy < 0 || sy >= h) continue;
      const x0 = Math.max(0, -left);
      const x1 = Math.min(outW, w - left);
      if (x1 <= x0) continue;
      const s = c * h * w + sy * w + left;
      out.set(src.subarray(s + x0, s + x1), c * outH * outW + y * outW + x0);
    }
  return out;
}

/** Smallest box [top, left, bottom, right) containing every pixel where `mask` is non-zero, or null. */
export function boundingBox(mask: ArrayLike<number>, h: number, w: number): [number, number, number, number] | null {
  let t = h;
  let l = w;
  let b = -1;
  let r = -1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      if (mask[y * w + x]) {
        if (y < t) t = y;
        if (y > b) b = y;
        if (x < l) l = x;
        if (x > r) r = x;
      }
  return b < 0 ? null : [t, l, b + 1, r + 1];
}

/**
 * The usual preparation of one slice for training: crop/pad to a square of side `square` placed at
 * (top, left) (default: centred, side = max(h, w)), then resize to size x size - nearest for the
 * label map, bilinear for the image.
 */
export function squareAndResize(
  mask: Uint8Array,
  image: Float32Array,
  channels: number,
  h: number,
  w: number,
  size: number,
  box?: { top: number; left: number; side: number },
): { mask: Uint8Array; image: Float32Array } {
  const side = box?.side ?? Math.max(h, w);
  const top = box?.top ?? Math.trunc((h - side) / 2);
  const left = box?.left ?? Math.trunc((w - side) / 2);
  const m = cropOrPad(mask, h, w, side, side, { fill: 0, top, left });
  const im = cropOrPad(image, h, w, side, side, { channels, fill: -1, top, left });
  return {
    mask: resizeNearest(m, side, side, size, size),
    image: clampUnit(resizeBilinear(im, side, side, size, size, channels)),
  };
}

/** Clamps in place to [-1, 1] (bilinear weights sum to 1, but float rounding can overshoot by an ulp). */
export function clampUnit(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = Math.min(1, Math.max(-1, a[i]!));
  return a;
}

function checkSize(fn: string, len: number, channels: number, h: number, w: number): void {
  if (!(h > 0 && w > 0 && channels > 0) || len !== channels * h * w)
    throw new Error(`${fn}: data has ${len} values, expected ${channels}x${h}x${w}`);
}
