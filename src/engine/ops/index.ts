/** Public ops (functional, pure: they return new tensors and record the autograd graph). */
export { tensor, zeros, ones, full, randn, rand, parameter } from './create.js';
export {
  relu, leakyRelu, tanh, sigmoid, exp, log, abs, sqrt, square, affine, scale, addScalar, neg,
  add, sub, mul, div, expand, broadcastShape,
} from './elementwise.js';
export { sum, mean, sumTo } from './reduce.js';
export { axpby, fillInPlace } from './elementwise.js';
export { reshape, flatten, detach } from './shape.js';
export {
  bceWithLogits, l1Loss, mseLoss, softmaxCrossEntropy, softDice,
  type ChannelOptions, type CrossEntropyOptions, type DiceOptions,
} from './loss.js';
