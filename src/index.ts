/**
 * asyndgan: AsynDGAN (Chang et al., CVPR 2020) on a hand-written WGSL engine.
 *
 * Entry points:
 * - `asyndgan/engine`: tensors, autograd, kernels, Adam (`init()` first);
 * - `asyndgan/models`: torch.nn-style modules, the ResNet generator, PatchGAN, U-Net, safetensors;
 * - `asyndgan/federation`: the generator server, the hospital node and their engine backends.
 *
 * This root entry re-exports the three as namespaces.
 */
export * as engine from './engine/index.js';
export * as models from './models/index.js';
export * as federation from './federation/index.js';
