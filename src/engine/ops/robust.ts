/**
 * Robust combination of several gradient vectors ("votes", one per federated node), and the
 * buffer-copy helpers that lay a list of tensors out as one flat vector and back. No autograd:
 * these act on gradients, under `noGrad` or outside any graph.
 */
import { engine } from '../engine.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { numel, Tensor } from '../tensor.js';
import { fmtShape, launch1d } from './launch.js';

/** Largest vote count the kernel sorts in registers (shaders/robust.wgsl MAX_ROWS). */
const MAX_VOTES = 64;

/**
 * Coordinate-wise trimmed mean of the rows of `x` [m, n]: out[j] = mean of column j after its
 * `trim` smallest and `trim` largest values are dropped (Yin et al. 2018). `trim` =
 * floor((m - 1) / 2) gives the coordinate-wise median (the mean of the middle two for even m).
 * If fewer than half of the rows are arbitrary, every out[j] lies between the smallest and the
 * largest honest value of column j, whatever the others send.
 */
export function coordinateTrimmedMean(x: Tensor, trim: number): Tensor {
  const op = 'coordinateTrimmedMean';
  if (x.shape.length !== 2) throw new ShapeError(`${op}: input must be [votes, n], got ${fmtShape(x.shape)}`);
  const [m, n] = x.shape as [number, number];
  if (m < 1 || m > MAX_VOTES) throw new ShapeError(`${op}: needs 1..${MAX_VOTES} votes (rows), got ${m}`);
  if (!Number.isInteger(trim) || trim < 0 || 2 * trim >= m) throw new RangeError(`${op}: trim must be an integer in [0, ${Math.floor((m - 1) / 2)}] for ${m} votes, got ${trim}`);
  const out = Tensor.empty([n]);
  launch1d(n, {
    file: 'robust.wgsl',
    entry: 'trimmed_mean',
    params: new Params().u32(m, n, trim).data(),
    buffers: [x.binding(), out.binding()],
    cost: { flops: m * m * n, bytes: 4 * (m + 1) * n },
  });
  return out;
}

/** The coordinate-wise median of the rows of `x` [m, n] (`coordinateTrimmedMean` with the largest trim). */
export function coordinateMedian(x: Tensor): Tensor {
  return coordinateTrimmedMean(x, Math.floor((x.shape[0]! - 1) / 2));
}

/**
 * For trust scores: with votes `x` [m, n] and a reference `r` [n], returns [2m + 1] holding
 * x_i . r and x_i . x_i for every vote i, then r . r (one workgroup per row; the caller reads
 * these 2m + 1 numbers back to weigh the votes).
 */
export function voteAlignment(x: Tensor, r: Tensor): Tensor {
  const op = 'voteAlignment';
  if (x.shape.length !== 2) throw new ShapeError(`${op}: votes must be [votes, n], got ${fmtShape(x.shape)}`);
  const [m, n] = x.shape as [number, number];
  if (r.size !== n) throw new ShapeError(`${op}: reference has ${r.size} elements, votes have ${n}`);
  const out = Tensor.empty([2 * m + 1]);
  engine().launch({
    file: 'robust.wgsl',
    entry: 'row_dots',
    params: new Params().u32(m, n, 0).data(),
    buffers: [x.binding(), out.binding(), r.binding()],
    workgroups: [m + 1, 1],
    cost: { flops: 4 * (m + 1) * n, bytes: 4 * (m + 1) * n },
  });
  return out;
}

/** sum_i w[i] x[i, :] for votes `x` [m, n] and weights `w` [m]. */
export function weightedVotes(x: Tensor, w: Tensor): Tensor {
  const op = 'weightedVotes';
  if (x.shape.length !== 2) throw new ShapeError(`${op}: votes must be [votes, n], got ${fmtShape(x.shape)}`);
  const [m, n] = x.shape as [number, number];
  if (w.size !== m) throw new ShapeError(`${op}: ${w.size} weights for ${m} votes`);
  const out = Tensor.empty([n]);
  launch1d(n, {
    file: 'robust.wgsl',
    entry: 'weighted_rows',
    params: new Params().u32(m, n, 0).data(),
    buffers: [x.binding(), out.binding(), w.binding()],
    cost: { flops: 2 * m * n, bytes: 4 * (m + 1) * n },
  });
  return out;
}

/**
 * Copies `tensors`, flattened and back to back, into `dst` from element `offset` on, with buffer
 * copies (no kernel launches). Returns the element after the last one written.
 */
export function copyFlatInto(tensors: readonly Tensor[], dst: Tensor, offset = 0): number {
  const total = tensors.reduce((s, t) => s + t.size, 0);
  if (offset < 0 || offset + total > dst.size) throw new ShapeError(`copyFlatInto: ${total} elements from ${offset} do not fit in ${fmtShape(dst.shape)}`);
  const rec = engine().recorder;
  let at = offset;
  for (const t of tensors) {
    if (t.size > 0) rec.copy(t.buffer, t.byteOffset, dst.buffer, dst.byteOffset + 4 * at, 4 * t.size);
    at += t.size;
  }
  return at;
}

/** New tensors of `shapes` holding consecutive elements of `src` from element `offset` on (buffer copies). */
export function splitFlat(src: Tensor, shapes: readonly (readonly number[])[], offset = 0): Tensor[] {
  const total = shapes.reduce((s, sh) => s + numel(sh), 0);
  if (offset < 0 || offset + total > src.size) throw new ShapeError(`splitFlat: ${total} elements from ${offset} do not fit in ${fmtShape(src.shape)}`);
  const rec = engine().recorder;
  let at = offset;
  return shapes.map((shape) => {
    const t = Tensor.empty(shape);
    if (t.size > 0) rec.copy(src.buffer, src.byteOffset + 4 * at, t.buffer, t.byteOffset, 4 * t.size);
    at += t.size;
    return t;
  });
}
