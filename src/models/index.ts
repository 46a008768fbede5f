/**
 * asyndgan's networks, in the style of torch.nn: the module system, layers, the pix2pix/AsynDGAN
 * ResNet generator and PatchGAN discriminator, the evaluation U-Net, and safetensors checkpoints
 * with PyTorch names and layouts.
 */
export {
  Module, Counter, StateDictError, toRng,
  type SeedLike, type BufferValue, type StateDtype, type StateTensor, type StateDict, type StateTensorInput,
  type LoadOptions, type LoadResult,
} from './module.js';
export {
  Conv2d, ConvTranspose2d, BatchNorm2d, InstanceNorm2d, ReLU, LeakyReLU, Tanh, Sigmoid, ReflectionPad2d,
  ZeroPad2d, MaxPool2d, Upsample2x, Identity, Dropout, Sequential,
  type InitScheme, type InitOptions, type Conv2dOptions, type ConvTranspose2dOptions, type BatchNorm2dOptions,
  type InstanceNorm2dOptions, type DropoutOptions, type Padding2d,
} from './layers.js';
export {
  ResnetGenerator, ResnetBlock, normLayer,
  type NormKind, type ResnetGeneratorOptions, type ResnetBlockOptions,
} from './resnet-generator.js';
export { PatchDiscriminator, patchOutputSize, type PatchDiscriminatorOptions } from './patch-discriminator.js';
export { UNet, ConvDownBlock, ConvUpBlock, ConvReluNorm, type UNetOptions, type UpsampleKind } from './unet.js';
export { saveModule, loadModule, encodeModule, decodeModule } from './checkpoint.js';
