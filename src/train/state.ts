/**
 * Training state in ONE safetensors file, written atomically: module weights under a prefix
 * ("G.", "D."), optimizer moments ("optim.G.m.<param>", "optim.G.v.<param>"), and a JSON
 * metadata entry with step counts, hyper-parameters and the run's config. One file means a crash
 * can never leave half a checkpoint: either the old file or the new one is there.
 *
 * No NaN or Inf is ever written or accepted: every float tensor (weights, batch-norm running
 * statistics, Adam moments) is checked on save and on load, and the error names the tensor. A
 * frozen or corrupted run (e.g. Adam's second moment at Inf) then stops at once instead of being
 * carried from checkpoint to checkpoint.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomic.js';
import { decodeSafetensors, encodeSafetensors, type SafetensorsTensorInput } from '../io/safetensors.js';
import type { AdamState } from '../engine/index.js';
import type { Module, StateTensorInput } from '../models/module.js';

export interface TrainingState {
  modules: Record<string, Module>;
  optimizers: Record<string, { exportState(): Promise<AdamState>; importState(s: AdamState): void }>;
  /** JSON-serializable extra state: iteration, config, registry, ... */
  info: Record<string, unknown>;
}

const META_KEY = 'asyndgan';

/** Index of the first NaN/Inf element of a float tensor (F16/BF16 as raw bits), or -1. */
function firstNonFiniteElement(t: { dtype: string; data: unknown }): number {
  const d = t.data;
  if (d instanceof Float32Array || d instanceof Float64Array) {
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return i;
  } else if ((t.dtype === 'F16' || t.dtype === 'BF16') && d instanceof Uint16Array) {
    const exp = t.dtype === 'F16' ? 0x7c00 : 0x7f80; // all exponent bits set: Inf or NaN
    for (let i = 0; i < d.length; i++) if ((d[i]! & exp) === exp) return i;
  }
  return -1;
}

/** Throw, naming the tensor and element, when any tensor holds NaN or Inf. */
function requireFinite(tensors: Record<string, { dtype: string; data: unknown }>, what: string): void {
  for (const [name, t] of Object.entries(tensors)) {
    const i = firstNonFiniteElement(t);
    if (i >= 0) throw new Error(`${what}: tensor ${name} holds a non-finite value (element ${i} is ${String((t.data as ArrayLike<number>)[i])})`);
  }
}

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
  requireFinite(tensors, 'refusing to save the training state');
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
  // Checked before anything is loaded, so a refused file changes nothing.
  requireFinite(file.tensors, `${path}: refusing to load the training state`);
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
