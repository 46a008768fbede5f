/**
 * Training state in ONE safetensors file, written atomically: module weights under a prefix
 * ("G.", "D."), optimizer moments ("optim.G.m.<param>", "optim.G.v.<param>"), and a JSON
 * metadata entry with step counts, hyper-parameters and the run's config. One file means a crash
 * can never leave half a checkpoint: either the old file or the new one is there.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensorInput } from '../io/safetensors.js';
import type { AdamState } from '../engine/optim.js';
import type { Module, StateTensorInput } from '../models/module.js';

export interface TrainingState {
  modules: Record<string, Module>;
  optimizers: Record<string, { exportState(): Promise<AdamState>; importState(s: AdamState): void }>;
  /** JSON-serializable extra state: iteration, config, registry, ... */
  info: Record<string, unknown>;
}

const META_KEY = 'asyndgan';

/** Writes modules, optimizer states and `info` to `path` (atomic). */
export async function saveTrainingState(path: string, state: TrainingState): Promise<void> {
  await writeFileAtomic(path, await saveTrainingStateBytes(state));
}

/** Restores what `saveTrainingState` wrote into the given modules and optimizers; returns `info`. */
export async function loadTrainingState(path: string, state: Omit<TrainingState, 'info'>): Promise<Record<string, unknown>> {
  return loadTrainingStateBytes(new Uint8Array(await readFile(path)), state, path);
}

/** The training state as safetensors bytes. */
export async function saveTrainingStateBytes(state: TrainingState): Promise<Uint8Array> {
  const tensors: Record<string, SafetensorsTensorInput> = {};
  for (const [prefix, module] of Object.entries(state.modules)) {
    for (const [name, t] of Object.entries(await module.stateDict())) tensors[`${prefix}.${name}`] = t;
  }
  const optimizerMeta: Record<string, unknown> = {};
  for (const [prefix, opt] of Object.entries(state.optimizers)) {
    const s = await opt.exportState();
    s.names.forEach((name, i) => {
      tensors[`optim.${prefix}.m.${name}`] = { dtype: 'F32', shape: [s.m[i]!.length], data: s.m[i]! };
      tensors[`optim.${prefix}.v.${name}`] = { dtype: 'F32', shape: [s.v[i]!.length], data: s.v[i]! };
    });
    const { m: _m, v: _v, ...scalars } = s;
    optimizerMeta[prefix] = scalars;
  }
  return encodeSafetensors(tensors, {
    [META_KEY]: JSON.stringify({ version: 1, optimizers: optimizerMeta, info: state.info }),
  });
}

/** Restores a state from `saveTrainingStateBytes` output; `path` only names the source in errors. */
export async function loadTrainingStateBytes(
  bytes: Uint8Array,
  state: Omit<TrainingState, 'info'>,
  path = '<training state>',
): Promise<Record<string, unknown>> {
  const file = decodeSafetensors(bytes, path);
  const metaText = file.metadata[META_KEY];
  if (!metaText) throw new Error(`${path}: not an asyndgan training state (no "${META_KEY}" metadata)`);
  let meta: { version: number; optimizers: Record<string, Omit<AdamState, 'm' | 'v'>>; info: Record<string, unknown> };
  try {
    meta = JSON.parse(metaText);
  } catch {
    throw new Error(`${path}: training-state metadata is not valid JSON`);
  }
  if (meta.version !== 1) throw new Error(`${path}: unsupported training-state version ${meta.version}`);
  for (const [prefix, module] of Object.entries(state.modules)) {
    const own: Record<string, StateTensorInput> = {};
    for (const [key, t] of Object.entries(file.tensors)) {
      if (key.startsWith(`${prefix}.`)) own[key.slice(prefix.length + 1)] = t as StateTensorInput;
    }
    module.loadStateDict(own, { source: `${path} [${prefix}]` });
  }
  for (const [prefix, opt] of Object.entries(state.optimizers)) {
    const scalars = meta.optimizers[prefix];
    if (!scalars) throw new Error(`${path}: no optimizer state "${prefix}"`);
    const moment = (kind: string, name: string): Float32Array => {
      const t = file.tensors[`optim.${prefix}.${kind}.${name}`];
      if (!t || !(t.data instanceof Float32Array)) throw new Error(`${path}: missing optimizer tensor optim.${prefix}.${kind}.${name}`);
      return t.data;
    };
    opt.importState({
      ...scalars,
      m: scalars.names.map((n) => moment('m', n)),
      v: scalars.names.map((n) => moment('v', n)),
    });
  }
  return meta.info;
}
