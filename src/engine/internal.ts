/**
 * The engine's internal entry: pieces that the layers above it inside this repository (models,
 * tests, tools) need but an embedder does not (raw kernel launches with no autograd record, the
 * uniform-buffer builder for custom kernels, shape helpers). Not exported by the package: the
 * public API is `./index.ts`.
 */
export { fill, fillInPlace, axpby, accumulate, sumTo, broadcastShape, expandScaled } from './primitives.js';
export { Params } from './params.js';
export { numel } from './tensor.js';
export { fmtShape } from './ops/launch.js';
export { dropoutMask } from './ops/dropout.js';
export { copyFlatInto, splitFlat, voteAlignment, weightedVotes } from './ops/robust.js';
export { INSTALL_HINT } from './device.js';
