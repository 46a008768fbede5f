/** Concatenation and slicing along any axis of tensors of rank <= 4. */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { fmtShape, launch1d } from './launch.js';

const FILE = 'copy.wgsl';

function normalizeAxis(op: string, axis: number, r: number, shape: readonly number[]): number {
  const a = axis < 0 ? axis + r : axis;
  if (!Number.isInteger(a) || a < 0 || a >= r) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for shape ${fmtShape(shape)}`);
  }
  return a;
}

const prod = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Rows before `axis` and elements per unit of the axis after it. */
function layout(shape: readonly number[], axis: number): { rows: number; inner: number } {
  return { rows: prod(shape.slice(0, axis)), inner: prod(shape.slice(axis + 1)) };
}

/** dst[r, dstOffset + j] = src[r, srcOffset + j] for j < len, r < rows. */
function copyRows(
  src: Tensor,
  dst: Tensor,
  rows: number,
  len: number,
  srcStride: number,
  srcOffset: number,
  dstStride: number,
  dstOffset: number,
): void {
  const total = rows * len;
  if (total === 0) return;
  launch1d(total, {
    file: FILE,
    entry: 'copy_rows',
    params: new Params().u32(total, len, srcStride, srcOffset, dstStride, dstOffset).data(),
    buffers: [src.binding(), dst.binding()],
    cost: { flops: 0, bytes: 8 * total },
  });
}

/** Sources per concat_rows launch (its bindings). */
const CONCAT_SOURCES = 4;

/**
 * out[r, off * inner ...] = the parts' rows side by side, up to CONCAT_SOURCES parts per launch
 * (one launch for the usual mask + image pair instead of one per part: 2 fewer per GAN step).
 */
function concatRows(parts: readonly Tensor[], sizes: readonly number[], out: Tensor, rows: number, inner: number, total: number): void {
  let off = 0;
  for (let k0 = 0; k0 < parts.length; k0 += CONCAT_SOURCES) {
    const group = parts.slice(k0, k0 + CONCAT_SOURCES);
    const lens = [0, 0, 0, 0];
    group.forEach((_, k) => (lens[k] = sizes[k0 + k]! * inner));
    const row = lens.reduce((a, b) => a + b, 0);
    if (rows * row > 0) {
      launch1d(rows * row, {
        file: FILE,
        entry: 'concat_rows',
        params: new Params().u32(rows * row, row, off * inner, total * inner, ...lens).data(),
        buffers: [0, 1, 2, 3].map((k) => (group[k] ?? group[0]!).binding()).concat(out.binding()),
        cost: { flops: 0, bytes: 8 * rows * row },
      });
    }
    off += sizes.slice(k0, k0 + CONCAT_SOURCES).reduce((a, b) => a + b, 0);
  }
}

/**
 * Concatenates tensors along `axis` (default 1, the channel axis of NCHW). All tensors must have
 * the same rank (<= 4) and equal sizes on every other axis. The gradient is sliced back.
 */
export function concat(tensors: Tensor[], axis = 1): Tensor {
  const op = 'concat';
  if (tensors.length === 0) throw new ShapeError(`${op}: needs at least one tensor`);
  const first = tensors[0]!.shape;
  const r = first.length;
  if (r > 4) throw new ShapeError(`${op}: at most 4 dimensions are supported, got ${fmtShape(first)}`);
  const a = normalizeAxis(op, axis, r, first);
  for (const t of tensors) {
    if (t.shape.length !== r || t.shape.some((d, i) => i !== a && d !== first[i])) {
      throw new ShapeError(
        `${op}: shapes ${tensors.map((x) => fmtShape(x.shape)).join(', ')} differ outside axis ${a}`,
      );
    }
  }
  const sizes = tensors.map((t) => t.shape[a]!);
  const total = sizes.reduce((x, y) => x + y, 0);
  const outShape = first.map((d, i) => (i === a ? total : d));
  const out = Tensor.empty(outShape);
  const { rows, inner } = layout(outShape, a);
  const offsets: number[] = [];
  let off = 0;
  for (const size of sizes) {
    offsets.push(off);
    off += size;
  }
  concatRows(tensors, sizes, out, rows, inner, total);
  return record(op, out, tensors, [], (g) =>
    tensors.map((t, k) => {
      if (!t.requiresGrad) return null;
      const gt = Tensor.empty(t.shape);
      copyRows(g, gt, rows, sizes[k]! * inner, total * inner, offsets[k]! * inner, sizes[k]! * inner, 0);
      return gt;
    }),
  );
}

/**
 * x[start:end] along `axis` (any axis of a tensor of rank <= 4). Negative start/end count from the
 * end as in Python; the range must satisfy 0 <= start <= end <= size after that.
 * The gradient is embedded into zeros of x's shape.
 */
export function slice(x: Tensor, axis: number, start: number, end: number): Tensor {
  const op = 'slice';
  const r = x.shape.length;
  if (r > 4) throw new ShapeError(`${op}: at most 4 dimensions are supported, got ${fmtShape(x.shape)}`);
  const a = normalizeAxis(op, axis, r, x.shape);
  const size = x.shape[a]!;
  const s = start < 0 ? start + size : start;
  const e = end < 0 ? end + size : end;
  if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > size || s > e) {
    throw new ShapeError(`${op}: range [${start}, ${end}) is invalid for axis ${a} of shape ${fmtShape(x.shape)}`);
  }
  const outShape = x.shape.map((d, i) => (i === a ? e - s : d));
  const out = Tensor.empty(outShape);
  const { rows, inner } = layout(x.shape, a);
  const len = (e - s) * inner;
  copyRows(x, out, rows, len, size * inner, s * inner, len, 0);
  return record(op, out, [x], [], (g) => {
    const gx = Tensor.empty(x.shape);
    const totalOut = gx.size;
    if (totalOut > 0) {
      launch1d(totalOut, {
        file: FILE,
        entry: 'embed_rows',
        params: new Params().u32(totalOut, len, len, 0, size * inner, s * inner).data(),
        buffers: [g.binding(), gx.binding()],
        cost: { flops: 0, bytes: 4 * (g.size + totalOut) },
      });
    }
    return [gx];
  });
}
