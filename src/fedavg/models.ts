/**
 * A module's averageable state as plain arrays: the float entries of its state dict (parameters
 * and batch-norm running statistics), in state-dict order. The integer batch counters
 * (num_batches_tracked) are left out: they count local steps and mean nothing averaged.
 */
import type { Module, StateTensorInput } from '../models/module.js';
import type { ModelLayout } from './protocol.js';

/** Names and shapes of the float state of `m`, state-dict order. */
export async function modelLayout(m: Module): Promise<{ names: string[]; layout: ModelLayout }> {
  const dict = await m.stateDict();
  const names = Object.keys(dict).filter((k) => dict[k]!.dtype === 'F32');
  return { names, layout: names.map((k) => [...dict[k]!.shape]) };
}

/** The float state of `m` (copies read back from the device). */
export async function readModel(m: Module, names: readonly string[]): Promise<Float32Array[]> {
  const dict = await m.stateDict();
  return names.map((k) => dict[k]!.data as Float32Array);
}

/** Write `tensors` into `m` in place (optimizers holding its parameters stay valid); counters untouched. */
export function writeModel(m: Module, names: readonly string[], layout: ModelLayout, tensors: readonly Float32Array[]): void {
  const dict: Record<string, StateTensorInput> = {};
  names.forEach((k, i) => (dict[k] = { dtype: 'F32', shape: layout[i]!, data: tensors[i]! }));
  m.loadStateDict(dict, { strict: false, source: 'fedavg global model' });
}
