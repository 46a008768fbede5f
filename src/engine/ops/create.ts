/** Creating tensors from CPU data, constants and seeded random values. */
import { ShapeError } from '../errors.js';
import { Rng } from '../random.js';
import { numel, Tensor } from '../tensor.js';
import { fill } from '../primitives.js';
import { fmtShape } from './launch.js';

/** A tensor holding `data` (copied) with `shape`. */
export function tensor(data: ArrayLike<number>, shape: readonly number[] = [data.length]): Tensor {
  if (numel(shape) !== data.length) {
    throw new ShapeError(`tensor: ${data.length} values do not fill shape ${fmtShape(shape)}`);
  }
  const t = Tensor.empty(shape);
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  if (values.length > 0) t.engine.recorder.write(t.buffer, values, t.byteOffset);
  return t;
}

export const zeros = (shape: readonly number[]): Tensor => fill(shape, 0);
export const ones = (shape: readonly number[]): Tensor => fill(shape, 1);
export const full = (shape: readonly number[], value: number): Tensor => fill(shape, value);

/** normal(mean, std) values from a seeded CPU generator (deterministic across machines). */
export function randn(shape: readonly number[], seed: number, std = 1, mean = 0): Tensor {
  return tensor(new Rng(seed).normalArray(numel(shape), mean, std), shape);
}

/** uniform[low, high) values from a seeded CPU generator. */
export function rand(shape: readonly number[], seed: number, low = 0, high = 1): Tensor {
  return tensor(new Rng(seed).uniformArray(numel(shape), low, high), shape);
}

/** A parameter: a tensor that requires grad. */
export function parameter(data: Tensor): Tensor {
  data.requiresGrad = true;
  return data;
}
