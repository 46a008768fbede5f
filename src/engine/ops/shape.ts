/** Reshape (a view: no copy). */
import { record } from '../autograd.js';
import { ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { fmtShape } from './launch.js';

/** A view of `x` with another shape of the same size; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const inferred = shape.map((d) => (d === -1 ? x.size / known : d));
  if (shape.filter((d) => d === -1).length > 1 || inferred.some((d) => !Number.isInteger(d))) {
    throw new ShapeError(`reshape: cannot view ${fmtShape(x.shape)} as ${fmtShape(shape)}`);
  }
  return record('reshape', x.share(inferred), [x], [], (g) => [g.share(x.shape)]);
}

/** Flattens all dims after the first: [N, ...] -> [N, prod(...)]. */
export function flatten(x: Tensor): Tensor {
  return reshape(x, [x.shape[0] ?? 1, -1]);
}

/** The same values cut off from the graph: no gradient flows back through the result. */
export function detach(x: Tensor): Tensor {
  return x.share();
}
