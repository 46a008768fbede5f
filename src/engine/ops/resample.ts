/** 2x upsampling of NCHW tensors: nearest and bilinear, with PyTorch semantics. */
import { record } from '../autograd.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { engine } from '../engine.js';
import { rank } from './launch.js';
import { rowGrid } from './rowgrid.js';

const FILE = 'resample.wgsl';

export interface BilinearOptions {
  /** torch's align_corners (default false). */
  alignCorners?: boolean;
}

function resampleParams(rows: number, h: number, w: number, align: boolean): Uint8Array {
  // Source-coordinate scales as PyTorch computes them (in float): with align_corners
  // (in - 1) / (out - 1) (0 when out == 1), otherwise 1 / scale_factor = 1/2.
  const scale = (n: number) => (align ? (2 * n > 1 ? (n - 1) / (2 * n - 1) : 0) : 0.5);
  return new Params()
    .u32(rows, h, w, 2 * h, 2 * w, align ? 1 : 0)
    .f32(scale(h), scale(w))
    .data();
}

function upsample(op: string, kind: 'nearest' | 'bilinear', x: Tensor, align: boolean): Tensor {
  rank(op, x, 4);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const y = Tensor.empty([n, c, 2 * h, 2 * w]);
  const taps = kind === 'nearest' ? 1 : 4;
  engine().launch({
    file: FILE,
    entry: `${kind}_forward`,
    ...rowGrid(2 * w, n * c * 2 * h),
    params: resampleParams(n * c * 2 * h, h, w, align),
    buffers: [x.binding(), y.binding()],
    cost: { flops: (2 * taps - 1) * y.size, bytes: 4 * (x.size + y.size) },
  });
  return record(op, y, [x], [], (gy) => {
    const gx = Tensor.empty(x.shape);
    engine().launch({
      file: FILE,
      entry: `${kind}_backward`,
      ...rowGrid(w, n * c * h),
      params: resampleParams(n * c * h, h, w, align),
      buffers: [gy.binding(), gx.binding()],
      cost: { flops: (kind === 'nearest' ? 3 : 40) * x.size, bytes: 4 * (gy.size + x.size) },
    });
    return [gx];
  });
}

/** Nearest-neighbour 2x upsampling (torch interpolate(scale_factor=2, mode='nearest')). */
export function upsampleNearest2x(x: Tensor): Tensor {
  return upsample('upsampleNearest2x', 'nearest', x, false);
}

/**
 * Bilinear 2x upsampling (torch interpolate(scale_factor=2, mode='bilinear', align_corners)).
 * alignCorners false (default): half-pixel centres, edge taps clamped; true: corners aligned.
 */
export function upsampleBilinear2x(x: Tensor, opts: BilinearOptions = {}): Tensor {
  const align = opts.alignCorners ?? false;
  return upsample('upsampleBilinear2x', 'bilinear', x, align);
}
