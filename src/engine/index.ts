/**
 * asyndgan's tensor engine: WGSL kernels on WebGPU (Dawn), reverse-mode autograd, Adam.
 *
 * ```ts
 * import { init, tensor, randn, conv2d, relu, mean, backward } from 'asyndgan/engine';
 * await init();
 * ```
 */
export { init, engine, Engine, type Launch } from './engine.js';
export type { ConvKernels, DeviceOptions, GpuContext } from './device.js';
export { NoAdapterError, KernelError, ShapeError, DisposedError } from './errors.js';
export { Tensor, type DType } from './tensor.js';
export type { PoolStats } from './pool.js';
export { tidy, keep } from './scope.js';
export { backward, noGrad, isGradEnabled, releaseGraph } from './autograd.js';
export { Rng, hashSeed } from './random.js';
export * from './ops/index.js';
export { Adam, AdamW, type AdamOptions, type AdamState, type ParamList } from './optim.js';
export {
  normal_, uniform_, constant_, zeros_, ones_, xavierUniform_, kaimingNormal_, calculateGain, fans,
  type KaimingOptions, type Nonlinearity,
} from './init.js';
export { Profiler, PROFILER_DAWN_FLAGS, type ProfileReport, type KernelRow, type ProfileEvent } from './profiler.js';
export { formatTable, toChromeTrace, type ChromeTrace, type TraceEvent } from './profile-render.js';
