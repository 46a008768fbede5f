/** Spatial padding of NCHW tensors: zeros or reflection. */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { engine } from '../engine.js';
import { fmtShape, rank } from './launch.js';
import { rowGrid } from './rowgrid.js';

const FILE = 'pad.wgsl';

export type PadMode = 'zero' | 'reflect';

/**
 * Pads the last two dimensions: `pad` is one size for all sides or [left, right, top, bottom]
 * (torch F.pad order). 'zero' fills with 0 (nn.ZeroPad2d); 'reflect' mirrors without repeating the
 * edge (nn.ReflectionPad2d) and needs each pad smaller than the padded dimension. The backward of
 * reflection adds the mirrored positions' gradients back onto their sources.
 */
export function pad2d(x: Tensor, pad: number | [left: number, right: number, top: number, bottom: number], mode: PadMode = 'zero'): Tensor {
  const op = 'pad2d';
  rank(op, x, 4);
  const [left, right, top, bottom] = typeof pad === 'number' ? [pad, pad, pad, pad] : pad;
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const sides = [left, right, top, bottom];
  if (sides.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new ShapeError(`${op}: pads must be non-negative integers, got [${sides.join(', ')}] for input ${fmtShape(x.shape)}`);
  }
  if (mode !== 'zero' && mode !== 'reflect') throw new ShapeError(`${op}: unknown mode '${String(mode)}'`);
  if (mode === 'reflect' && (left >= w || right >= w || top >= h || bottom >= h)) {
    throw new ShapeError(
      `${op}: reflect padding [${sides.join(', ')}] must be smaller than the padded dimensions of input ${fmtShape(x.shape)}`,
    );
  }
  const oh = h + top + bottom;
  const ow = w + left + right;
  const reflect = mode === 'reflect' ? 1 : 0;
  const params = (rows: number) => new Params().u32(rows, h, w, oh, ow, left, right, top, bottom, reflect).data();
  const y = Tensor.empty([n, c, oh, ow]);
  engine().launch({
    file: FILE,
    entry: 'forward',
    ...rowGrid(ow, n * c * oh),
    params: params(n * c * oh),
    buffers: [x.binding(), y.binding()],
    cost: { flops: 0, bytes: 4 * (x.size + y.size) },
  });
  return record(op, y, [x], [], (gy, _, pending) => [pad2dBackwardRaw(gy, x.shape, [left, right, top, bottom], mode, pending[0])], [0]);
}

/**
 * @internal The backward of pad2d: the gradient of the unpadded input `shape` from the gradient
 * `gy` of the padded output (reflection adds each mirrored position back onto its source).
 * Also used by conv2d with padMode 'reflect', whose data gradient is this applied to the
 * gradient of the padded input. With `addend` (of `shape`), returns that plus the gradient.
 */
export function pad2dBackwardRaw(gy: Tensor, shape: readonly number[], sides: readonly number[], mode: PadMode, addend?: Tensor): Tensor {
  const [n, c, h, w] = shape as [number, number, number, number];
  const [left, right, top, bottom] = sides as [number, number, number, number];
  const reflect = mode === 'reflect' ? 1 : 0;
  const gx = Tensor.empty([...shape]);
  engine().launch({
    file: FILE,
    entry: 'backward',
    ...rowGrid(w, n * c * h),
    params: new Params().u32(n * c * h, h, w, h + top + bottom, w + left + right, left, right, top, bottom, reflect, addend ? 1 : 0).data(),
    buffers: [gy.binding(), gx.binding(), (addend ?? gy).binding()],
    cost: { flops: reflect ? 3 * gx.size : 0, bytes: 4 * (gy.size + gx.size) },
  });
  return gx;
}
