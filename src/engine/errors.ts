/** Errors raised by the engine. Each names what was wrong so a user can act on it. */

/** No WebGPU adapter could be obtained (no GPU driver, no Vulkan ICD, or an old Mesa). */
export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

/** A WGSL shader failed to compile, a pipeline failed to build, or a dispatch failed validation. */
export class KernelError extends Error {
  override name = 'KernelError';
  constructor(message: string, readonly shaderFiles: readonly string[]) {
    super(message);
  }
}

/** An op was called with tensors of incompatible shapes or invalid arguments. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** A tensor was used after its GPU storage was released. */
export class DisposedError extends Error {
  override name = 'DisposedError';
}
