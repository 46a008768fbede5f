/**
 * Convolution geometry: the options, the shape of a convolution, PyTorch's output size, and its
 * FLOP count; shared by both kernel families (conv.ts, conv-tiled.ts).
 */
import { ShapeError } from '../errors.js';
import { fmtShape } from './launch.js';

export type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  /**
   * How `padding` fills (conv2d only): 'zero' (default, nn.Conv2d) or 'reflect' (the same as
   * nn.ReflectionPad2d(padding) then an unpadded convolution; each pad smaller than its dimension).
   */
  padMode?: 'zero' | 'reflect';
  /**
   * conv2d only: act(conv + bias) in the convolution's own kernel (an epilogue, no separate
   * launch on CPU adapters): 'tanh' (pix2pix's output layer) or 'leakyRelu' with `negativeSlope`
   * >= 0 (default 0.01). Same values as conv2d then tanh / leakyRelu.
   */
  activation?: 'tanh' | 'leakyRelu';
  negativeSlope?: number;
}

export interface ConvTranspose2dOptions extends Omit<Conv2dOptions, 'padMode' | 'activation' | 'negativeSlope'> {
  outputPadding?: Pair;
}

/**
 * @internal Geometry of a convolution X [nb, ci, h, w] -> Y [nb, co, oh, ow] with weights
 * [co, ci, kh, kw]. (Transposed convolutions use the geometry of the convolution they invert.)
 */
export interface ConvGeometry {
  nb: number;
  ci: number;
  h: number;
  w: number;
  co: number;
  oh: number;
  ow: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  dh: number;
  dw: number;
  /** Reflection instead of zero padding (forward and weight-gradient kernels read mirrored pixels). */
  reflect?: boolean;
}

/** A stride, padding or dilation option as [height, width], validated. */
export function pair(op: string, name: string, v: Pair | undefined, dflt: number, min: number): [number, number] {
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new ShapeError(`${op}: ${name} must be integers >= ${min}, got ${JSON.stringify(v)}`);
  }
  return p;
}

/** Multiply-adds of the convolution, counted as 2 FLOPs each. */
export function convFlops(g: ConvGeometry): number {
  return 2 * g.nb * g.co * g.oh * g.ow * g.ci * g.kh * g.kw;
}

/** @internal Geometry of conv2d(x, w) with PyTorch output size. */
export function conv2dGeometry(op: string, xs: readonly number[], ws: readonly number[], opts: Conv2dOptions): ConvGeometry {
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const [nb, ci, h, w] = xs as [number, number, number, number];
  const [co, wci, kh, kw] = ws as [number, number, number, number];
  if (wci !== ci) {
    throw new ShapeError(`${op}: input ${fmtShape(xs)} has ${ci} channels but weight ${fmtShape(ws)} expects ${wci}`);
  }
  const oh = Math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
  if (oh < 1 || ow < 1 || kh < 1 || kw < 1) {
    throw new ShapeError(
      `${op}: input ${fmtShape(xs)} with weight ${fmtShape(ws)}, stride ${sh}x${sw}, padding ${ph}x${pw}, ` +
        `dilation ${dh}x${dw} gives an empty output (${oh}x${ow})`,
    );
  }
  const mode = opts.padMode ?? 'zero';
  if (mode !== 'zero' && mode !== 'reflect') throw new ShapeError(`${op}: unknown padMode '${String(mode)}'`);
  const reflect = mode === 'reflect' && (ph > 0 || pw > 0);
  if (reflect && (ph >= h || pw >= w)) {
    throw new ShapeError(`${op}: reflect padding ${ph}x${pw} must be smaller than the padded dimensions of input ${fmtShape(xs)}`);
  }
  return { nb, ci, h, w, co, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, ...(reflect ? { reflect } : {}) };
}
