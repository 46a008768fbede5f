/** Max pooling (2x2 window, stride 2) over NCHW tensors. */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { engine } from '../engine.js';
import { fmtShape, rank } from './launch.js';
import { rowGrid } from './rowgrid.js';

const FILE = 'pool.wgsl';

/**
 * 2x2 max pooling with stride 2 (torch.nn.functional.max_pool2d(x, 2)): [N, C, H, W] ->
 * [N, C, floor(H / 2), floor(W / 2)]. The gradient goes to each window's first maximum (row-major),
 * like PyTorch. NaN inputs are not treated specially.
 */
export function maxPool2d(x: Tensor): Tensor {
  rank('maxPool2d', x, 4);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const oh = Math.floor(h / 2);
  const ow = Math.floor(w / 2);
  if (oh < 1 || ow < 1) throw new ShapeError(`maxPool2d: input ${fmtShape(x.shape)} is smaller than the 2x2 window`);
  const y = Tensor.empty([n, c, oh, ow]);
  engine().launch({
    file: FILE,
    entry: 'forward',
    ...rowGrid(ow, n * c * oh),
    params: new Params().u32(n * c * oh, h, w, oh, ow).data(),
    buffers: [x.binding(), y.binding()],
    cost: { flops: 3 * y.size, bytes: 4 * (4 * y.size + y.size) },
  });
  return record('maxPool2d', y, [x], [x], (gy, [sx]) => {
    const gx = Tensor.empty(x.shape);
    engine().launch({
      file: FILE,
      entry: 'backward',
      ...rowGrid(w, n * c * h),
      params: new Params().u32(n * c * h, h, w, oh, ow).data(),
      buffers: [sx!.binding(), gy.binding(), gx.binding()],
      cost: { flops: 3 * x.size, bytes: 4 * (4 * x.size + gy.size + x.size) },
    });
    return [gx];
  });
}
