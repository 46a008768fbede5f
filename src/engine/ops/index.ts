/** Public ops (functional, pure: they return new tensors and record the autograd graph). */
export { tensor, zeros, ones, full, randn, rand, parameter } from './create.js';
export {
  relu, leakyRelu, tanh, sigmoid, exp, log, abs, sqrt, square, affine, scale, addScalar, neg,
  add, sub, mul, div, expand,
} from './elementwise.js';
export { sum, mean } from './reduce.js';
export { reshape, flatten, detach } from './shape.js';
export {
  bceWithLogits, l1Loss, mseLoss, softmaxCrossEntropy, softDice,
  type ChannelOptions, type WeightOptions, type PointLossOptions, type CrossEntropyOptions, type DiceOptions,
} from './loss.js';
export { batchNorm2d, instanceNorm2d, type BatchNormOptions, type InstanceNormOptions, type NormEpilogue } from './norm.js';
export { maxPool2d } from './pool.js';
export { upsampleNearest2x, upsampleBilinear2x } from './resample.js';
export { pad2d } from './pad.js';
export { concat, slice } from './concat.js';
export { dropout } from './dropout.js';
export { conv2d, convTranspose2d, type Conv2dOptions, type ConvTranspose2dOptions } from './conv.js';
export { matmul, type MatmulOptions } from './matmul.js';
export { coordinateTrimmedMean, coordinateMedian } from './robust.js';
