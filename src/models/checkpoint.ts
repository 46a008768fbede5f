/**
 * Module checkpoints as safetensors files with PyTorch names and layouts, so that
 * `safetensors.torch.load_file(path)` gives a dict that `net.load_state_dict()` accepts for the
 * reference networks (conv weight [out, in, kh, kw], transposed conv weight [in, out, kh, kw],
 * BatchNorm running_mean / running_var F32 and num_batches_tracked a 0-d I64).
 */
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import type { LoadOptions, LoadResult, Module, StateDict, StateTensorInput } from './module.js';

/** Metadata we add to every file (the caller's keys win). */
function withDefaults(module: Module, metadata?: Record<string, string>): Record<string, string> {
  return {
    format: 'pt',
    module: module.constructor.name,
    parameters: String(module.numParameters()),
    ...metadata,
  };
}

/** safetensors bytes of the module's state dict. */
export async function encodeModule(module: Module, metadata?: Record<string, string>): Promise<Uint8Array> {
  return encodeSafetensors(await module.stateDict(), withDefaults(module, metadata));
}

/** Loads safetensors bytes into the module (see Module.loadStateDict). */
export function decodeModule(bytes: Uint8Array, module: Module, options: LoadOptions = {}): LoadResult & { metadata: Record<string, string> } {
  const source = options.source ?? '<bytes>';
  const file = decodeSafetensors(bytes, source);
  return { ...module.loadStateDict(file.tensors as Record<string, StateTensorInput>, { ...options, source }), metadata: file.metadata };
}

/** Writes the module's parameters and buffers to `path` (atomically). */
export async function saveModule(path: string, module: Module, metadata?: Record<string, string>): Promise<void> {
  const state: StateDict = await module.stateDict();
  await saveSafetensors(path, state, withDefaults(module, metadata));
}

/**
 * Loads `path` into `module` in place. Strict by default: missing or unexpected tensors, wrong
 * shapes or non-float data throw a StateDictError naming the file, and leave the module unchanged.
 * Returns the file's metadata and, when not strict, what was skipped.
 */
export async function loadModule(
  path: string,
  module: Module,
  options: Omit<LoadOptions, 'source'> = {},
): Promise<LoadResult & { metadata: Record<string, string> }> {
  const file = await loadSafetensors(path);
  const result = module.loadStateDict(file.tensors as Record<string, StateTensorInput>, { ...options, source: path });
  return { ...result, metadata: file.metadata };
}
