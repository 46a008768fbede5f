/**
 * In-place weight initialization, deterministic from a seed: the values come from the seeded CPU
 * generator in random.ts (xoshiro128**), so the same seed gives the same weights on every machine
 * and GPU, and are uploaded into the existing tensor (initialization is not a hot path).
 * Every function returns its tensor. Fans follow PyTorch's `_calculate_fan_in_and_fan_out`:
 * fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (for a transposed
 * convolution stored [in, out, k, k] that makes fan_in the output channels, as in PyTorch).
 */
import { ShapeError } from './errors.js';
import { fillInPlace } from './primitives.js';
import { fmtShape } from './ops/launch.js';
import { Rng } from './random.js';
import type { Tensor } from './tensor.js';

function upload(t: Tensor, values: Float32Array): Tensor {
  if (values.length > 0) t.engine.recorder.write(t.buffer, values, t.byteOffset);
  return t;
}

/** Fills `t` with normal(mean, std) samples. */
export function normal_(t: Tensor, mean: number, std: number, seed: number): Tensor {
  return upload(t, new Rng(seed).normalArray(t.size, mean, std));
}

/** Fills `t` with uniform[low, high) samples. */
export function uniform_(t: Tensor, low: number, high: number, seed: number): Tensor {
  return upload(t, new Rng(seed).uniformArray(t.size, low, high));
}

/** Sets every element of `t` to `value` (on the GPU). */
export function constant_(t: Tensor, value: number): Tensor {
  fillInPlace(t, value);
  return t;
}

export const zeros_ = (t: Tensor): Tensor => constant_(t, 0);
export const ones_ = (t: Tensor): Tensor => constant_(t, 1);

/** (fan_in, fan_out) of a weight of at least 2 dims, as PyTorch computes them. */
export function fans(op: string, shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new ShapeError(`${op}: fans need a weight with at least 2 dimensions, got ${fmtShape(shape)}`);
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

export type Nonlinearity = 'linear' | 'conv' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu';

/** PyTorch's `calculate_gain` (for leaky_relu, `a` is the negative slope; default 0.01). */
export function calculateGain(nonlinearity: Nonlinearity, a?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu': {
      const slope = a ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
  }
}

/** Glorot/Xavier uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, seed: number, gain = 1): Tensor {
  const { fanIn, fanOut } = fans('xavierUniform_', t.shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound, seed);
}

export interface KaimingOptions {
  /** Negative slope of leaky_relu (default 0, which makes leaky_relu's gain sqrt(2) like relu). */
  a?: number;
  /** 'fan_in' (default) preserves the forward variance, 'fan_out' the backward one. */
  mode?: 'fan_in' | 'fan_out';
  /** Default 'leaky_relu' (with a = 0), as PyTorch. */
  nonlinearity?: Nonlinearity;
}

/** He/Kaiming normal: N(0, std^2) with std = gain / sqrt(fan), gain from the nonlinearity. */
export function kaimingNormal_(t: Tensor, seed: number, opts: KaimingOptions = {}): Tensor {
  const { fanIn, fanOut } = fans('kaimingNormal_', t.shape);
  const fan = (opts.mode ?? 'fan_in') === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  return normal_(t, 0, gain / Math.sqrt(fan), seed);
}
