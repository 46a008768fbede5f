/**
 * The FedAvg-GAN messages, on the AsynDGAN transport: the same WebSocket upgrade authentication,
 * msgpack frames (src/net/codec.ts) and `hello`, `status`, `error` and `goodbye` messages
 * (src/net/protocol.ts); three messages of its own carry weights instead of fakes and gradients:
 *
 *   server -> node  fedWelcome  session config (local steps E, batch size, learning-rate schedule)
 *   server -> node  fedModel    the global G and D of round r-1: "train E steps from these" (configure)
 *   node -> server  fedUpdate   the site's G and D after its E local steps, its sample count (fit)
 *
 * Then the server averages (aggregate.ts) and sends the next fedModel. Models travel as lists of
 * f32 tensors in the modules' state-dict order (parameters and batch-norm running statistics;
 * the integer batch counters are not averaged and not sent). Unlike AsynDGAN, this protocol does
 * carry a function of the real images out of the hospital: the weights trained on them.
 */
import { decodeTensor, encodeTensor, firstNonFinite, shapeSize } from '../net/codec.js';
import { ProtocolError, type Losses, type WireTensor } from '../net/protocol.js';

/** Session configuration sent in fedWelcome. The server's schedule is authoritative. */
export interface FedSessionConfig {
  algorithm: 'fedavg-gan';
  /** E: local steps of G and D between two averagings. */
  localSteps: number;
  /** Masks per local step. */
  batchSize: number;
  lambdaL1: number;
  lr: number;
  beta1: number;
  /** Learning-rate schedule over local steps: constant, then linear decay over the last decaySteps of totalSteps. */
  totalSteps: number;
  decaySteps: number;
  /** A fedUpdate later than this after its fedModel is not averaged (ms). */
  roundTimeoutMs: number;
  maxFrameBytes: number;
}

export interface FedWelcomeMsg {
  type: 'fedWelcome';
  protocolVersion: number;
  sessionId: string;
  nodeId: string;
  /** Last finished round. */
  round: number;
  config: FedSessionConfig;
}

/** The two models of the GAN as wire tensors, state-dict order. */
export interface WireModels {
  G: WireTensor[];
  D: WireTensor[];
}

export interface FedModelMsg {
  type: 'fedModel';
  /** The round the node is asked to train for (the models are the result of round - 1). */
  round: number;
  models: WireModels;
}

export interface FedUpdateMsg {
  type: 'fedUpdate';
  round: number;
  /** n_k: the site's training samples. */
  sampleCount: number;
  /** Local steps taken (must equal localSteps). */
  steps: number;
  models: WireModels;
  /** Means over the local steps (L1 not multiplied by lambda). */
  losses: Losses;
}

export const FEDAVG_TYPES = ['fedWelcome', 'fedModel', 'fedUpdate'] as const;

/** Shapes of a model's tensors, state-dict order: what every frame carrying it must match. */
export type ModelLayout = readonly (readonly number[])[];

type Obj = Record<string, unknown>;

function fail(type: string, code: 'invalid_field' | 'shape_mismatch' | 'non_finite', field: string, message: string): never {
  throw new ProtocolError(code, `${type}: ${field}: ${message}`, { field, offendingType: type });
}

function int(type: string, o: Obj, key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(type, 'invalid_field', key, `expected an integer in [${min}, ${max}], got ${typeof v === 'number' ? v : typeof v}`);
  return v;
}

function finite(type: string, o: Obj, key: string, path: string): number {
  const v = o[key];
  if (typeof v !== 'number') fail(type, 'invalid_field', path, `expected a number, got ${typeof v}`);
  if (!Number.isFinite(v)) fail(type, 'non_finite', path, `${v} is not finite`);
  return v;
}

function object(type: string, v: unknown, path: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) fail(type, 'invalid_field', path, 'expected a map');
  return v as Obj;
}

/** One model's tensors, checked against `layout` (count, dtype f32, exact shapes) and decoded; finite values only. */
export function decodeModel(type: string, field: string, raw: unknown, layout: ModelLayout): Float32Array[] {
  if (!Array.isArray(raw)) fail(type, 'invalid_field', field, 'expected an array of tensors');
  if (raw.length !== layout.length) fail(type, 'shape_mismatch', field, `${raw.length} tensors, the model has ${layout.length}`);
  return raw.map((t, i) => {
    const path = `${field}[${i}]`;
    const o = object(type, t, path);
    if (o.dtype !== 'f32') fail(type, 'invalid_field', `${path}.dtype`, `expected "f32", got ${JSON.stringify(o.dtype)?.slice(0, 20)}`);
    const want = layout[i]!;
    const shape = o.shape;
    if (!Array.isArray(shape) || shape.length !== want.length || shape.some((d, j) => d !== want[j])) {
      fail(type, 'shape_mismatch', `${path}.shape`, `[${Array.isArray(shape) ? shape.slice(0, 8).join(', ') : String(shape)}], expected [${want.join(', ')}]`);
    }
    const data = o.data;
    if (!(data instanceof Uint8Array) || data.byteLength !== shapeSize(want) * 4) {
      fail(type, 'shape_mismatch', `${path}.data`, `${data instanceof Uint8Array ? data.byteLength : typeof data} bytes, shape [${want.join(', ')}] f32 needs ${shapeSize(want) * 4}`);
    }
    const values = decodeTensor({ dtype: 'f32', shape: [...want], data });
    const bad = firstNonFinite(values);
    if (bad >= 0) fail(type, 'non_finite', path, `element ${bad} is ${values[bad]}`);
    return values;
  });
}

/** Both models of a frame, decoded and checked. */
export function decodeModels(type: string, raw: unknown, layouts: { G: ModelLayout; D: ModelLayout }): { G: Float32Array[]; D: Float32Array[] } {
  const m = object(type, raw, 'models');
  return { G: decodeModel(type, 'models.G', m.G, layouts.G), D: decodeModel(type, 'models.D', m.D, layouts.D) };
}

/** A fedUpdate, fully checked against the layouts; returns its decoded models. */
export function checkFedUpdate(raw: Obj, layouts: { G: ModelLayout; D: ModelLayout }, maxSampleCount = 1e9): {
  msg: Omit<FedUpdateMsg, 'models'>; models: { G: Float32Array[]; D: Float32Array[] };
} {
  const type = 'fedUpdate';
  const round = int(type, raw, 'round', 1);
  const sampleCount = int(type, raw, 'sampleCount', 1, maxSampleCount);
  const steps = int(type, raw, 'steps', 1);
  const l = object(type, raw.losses, 'losses');
  const losses: Losses = {
    dReal: finite(type, l, 'dReal', 'losses.dReal'), dFake: finite(type, l, 'dFake', 'losses.dFake'),
    gGan: finite(type, l, 'gGan', 'losses.gGan'), gL1: finite(type, l, 'gL1', 'losses.gL1'),
  };
  const models = decodeModels(type, raw.models, layouts);
  return { msg: { type, round, sampleCount, steps, losses }, models };
}

/** A fedWelcome's structure. */
export function checkFedWelcome(raw: Obj): FedWelcomeMsg {
  const type = 'fedWelcome';
  const c = object(type, raw.config, 'config');
  if (c.algorithm !== 'fedavg-gan') fail(type, 'invalid_field', 'config.algorithm', `expected "fedavg-gan", got ${JSON.stringify(c.algorithm)?.slice(0, 40)}`);
  const config: FedSessionConfig = {
    algorithm: 'fedavg-gan', localSteps: int(type, c, 'localSteps', 1, 1e6), batchSize: int(type, c, 'batchSize', 1, 4096),
    lambdaL1: finite(type, c, 'lambdaL1', 'config.lambdaL1'), lr: finite(type, c, 'lr', 'config.lr'), beta1: finite(type, c, 'beta1', 'config.beta1'),
    totalSteps: int(type, c, 'totalSteps', 1), decaySteps: int(type, c, 'decaySteps', 0), roundTimeoutMs: int(type, c, 'roundTimeoutMs', 1),
    maxFrameBytes: int(type, c, 'maxFrameBytes', 1),
  };
  if (typeof raw.sessionId !== 'string' || typeof raw.nodeId !== 'string') fail(type, 'invalid_field', 'sessionId', 'expected strings sessionId and nodeId');
  return { type, protocolVersion: int(type, raw, 'protocolVersion', 0), sessionId: raw.sessionId, nodeId: raw.nodeId, round: int(type, raw, 'round', 0), config };
}

/** Encode tensors (f32) of a model for the wire. */
export function wireModel(tensors: readonly Float32Array[], layout: ModelLayout): WireTensor[] {
  return tensors.map((x, i) => encodeTensor(x, layout[i]!, 'f32'));
}
