/**
 * Validation of untrusted frames. Nothing decoded from the network is used before it has
 * passed through here; every failure is a ProtocolError naming the offending field.
 *
 * Two layers:
 *  - validateMessage: structure only (known type for the direction, field types, tensor
 *    dtype/shape/byte length agree). Needs no session state.
 *  - check*: agreement with the session (mask shape from the config, a gradientReply matches
 *    the roundRequest it answers, values finite). These decode tensors and return them.
 * Unknown extra top-level fields are ignored (forward compatibility inside version 2).
 */
import { badF16sScale, decodeTensor, firstNonFinite, shapeSize } from './codec.js';
import {
  DTYPE_BYTES, DTYPES, ERROR_CODES, MASK_ENCODINGS, NODE_TO_SERVER_TYPES, PROTOCOL_VERSION, ProtocolError, SERVER_TO_NODE_TYPES,
  type AugParams, type Capabilities, type Direction, type Dtype, type ErrorCode, type ErrorMsg, type GoodbyeMsg,
  type GradientReplyMsg, type HelloMsg, type Losses, type MaskAckMsg, type MaskEncoding, type MaskUploadMsg, type NodeToServer,
  type RoundRequestMsg, type ServerToNode, type SessionConfig, type StatusMsg, type ValidationLimits,
  type WelcomeMsg, type WireTensor,
} from './protocol.js';

type Obj = Record<string, unknown>;

/** Context threaded through the field checkers so errors can name the message type. */
interface Ctx { type: string | undefined; limits: ValidationLimits }

function fail(ctx: Ctx, code: ErrorCode, field: string, message: string): never {
  throw new ProtocolError(code, `${ctx.type ?? 'frame'}: ${field}: ${message}`, ctx.type === undefined ? { field } : { field, offendingType: ctx.type });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'binary';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

function isPlainObject(v: unknown): v is Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function get(o: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** Optional fields may be omitted or nil (Python's None): both mean absent. */
function absent(o: Obj, key: string): boolean {
  const v = get(o, key);
  return v === undefined || v === null;
}

function reqObject(ctx: Ctx, o: Obj, key: string, path: string): Obj {
  const v = get(o, key);
  if (!isPlainObject(v)) fail(ctx, 'invalid_field', path, `expected a map, got ${describe(v)}`);
  return v;
}

function reqString(ctx: Ctx, o: Obj, key: string, path: string, maxLen: number, minLen = 0): string {
  const v = get(o, key);
  if (typeof v !== 'string') fail(ctx, 'invalid_field', path, `expected a string, got ${describe(v)}`);
  if (v.length < minLen || v.length > maxLen) fail(ctx, 'invalid_field', path, `length ${v.length} outside [${minLen}, ${maxLen}]`);
  return v;
}

function reqInt(ctx: Ctx, o: Obj, key: string, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = get(o, key);
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(ctx, 'invalid_field', path, `expected an integer, got ${describe(v)}${typeof v === 'number' ? ` ${v}` : ''}`);
  if (v < min || v > max) fail(ctx, 'invalid_field', path, `${v} outside [${min}, ${max}]`);
  return v;
}

function reqFinite(ctx: Ctx, o: Obj, key: string, path: string): number {
  const v = get(o, key);
  if (typeof v !== 'number') fail(ctx, 'invalid_field', path, `expected a number, got ${describe(v)}`);
  if (!Number.isFinite(v)) fail(ctx, 'non_finite', path, `${v} is not finite`);
  return v;
}

function reqBool(ctx: Ctx, o: Obj, key: string, path: string): boolean {
  const v = get(o, key);
  if (typeof v !== 'boolean') fail(ctx, 'invalid_field', path, `expected a boolean, got ${describe(v)}`);
  return v;
}

function reqArray(ctx: Ctx, o: Obj, key: string, path: string, maxLen: number): unknown[] {
  const v = get(o, key);
  if (!Array.isArray(v)) fail(ctx, 'invalid_field', path, `expected an array, got ${describe(v)}`);
  if (v.length > maxLen) fail(ctx, 'invalid_field', path, `${v.length} entries exceed the limit ${maxLen}`);
  return v;
}

function reqDtype(ctx: Ctx, v: unknown, path: string): Dtype {
  if (typeof v !== 'string' || !(DTYPES as readonly string[]).includes(v)) {
    fail(ctx, 'invalid_field', path, `unknown dtype ${typeof v === 'string' ? JSON.stringify(v.slice(0, 32)) : describe(v)} (expected one of ${DTYPES.join(', ')})`);
  }
  return v as Dtype;
}

/** Most entries in welcome.knownKeys (a node may hold more masks than fit in one message's keys). */
export const MAX_KNOWN_KEYS = 1 << 20;

/** keys: non-empty unique strings. */
function reqKeys(ctx: Ctx, o: Obj, key: string, maxEntries = ctx.limits.maxKeys): string[] {
  const arr = reqArray(ctx, o, key, key, maxEntries);
  const seen = new Set<string>();
  for (let i = 0; i < arr.length; i++) {
    const k = arr[i];
    if (typeof k !== 'string') fail(ctx, 'invalid_field', `${key}[${i}]`, `expected a string, got ${describe(k)}`);
    if (k.length === 0 || k.length > ctx.limits.maxKeyLength) fail(ctx, 'invalid_field', `${key}[${i}]`, `length ${k.length} outside [1, ${ctx.limits.maxKeyLength}]`);
    if (seen.has(k)) fail(ctx, 'invalid_field', `${key}[${i}]`, `duplicate key ${JSON.stringify(k)}`);
    seen.add(k);
  }
  return arr as string[];
}

/** Structural tensor check: known dtype, integer dims, byte length matches shape. */
function reqTensor(ctx: Ctx, o: Obj, key: string): WireTensor {
  const t = reqObject(ctx, o, key, key);
  const dtype = reqDtype(ctx, get(t, 'dtype'), `${key}.dtype`);
  const shapeRaw = reqArray(ctx, t, 'shape', `${key}.shape`, 8);
  const shape: number[] = [];
  for (let i = 0; i < shapeRaw.length; i++) {
    const d = shapeRaw[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) fail(ctx, 'invalid_field', `${key}.shape[${i}]`, `expected a non-negative integer, got ${typeof d === 'number' ? d : describe(d)}`);
    shape.push(d);
  }
  const data = get(t, 'data');
  if (!(data instanceof Uint8Array)) fail(ctx, 'invalid_field', `${key}.data`, `expected binary, got ${describe(data)}`);
  const n = shapeSize(shape);
  const need = n * DTYPE_BYTES[dtype];
  if (!Number.isSafeInteger(need) || need !== data.byteLength) {
    fail(ctx, 'shape_mismatch', `${key}.data`, `${data.byteLength} bytes, but shape [${shape.join(', ')}] of ${dtype} needs ${need}`);
  }
  // 'f16s' needs its scale; any other dtype must not carry one (a scale it ignored would be a silent misread).
  const scale = get(t, 'scale');
  if (dtype === 'f16s') {
    const why = badF16sScale(scale);
    if (why) fail(ctx, 'invalid_field', `${key}.scale`, `f16s scale ${why}`);
    return { dtype, shape, data, scale: scale as number };
  }
  if (scale !== undefined) fail(ctx, 'invalid_field', `${key}.scale`, `an ${dtype} tensor carries no scale (only f16s does)`);
  return { dtype, shape, data };
}

function reqLosses(ctx: Ctx, o: Obj): Losses {
  const l = reqObject(ctx, o, 'losses', 'losses');
  return {
    dReal: reqFinite(ctx, l, 'dReal', 'losses.dReal'),
    dFake: reqFinite(ctx, l, 'dFake', 'losses.dFake'),
    gGan: reqFinite(ctx, l, 'gGan', 'losses.gGan'),
    gL1: reqFinite(ctx, l, 'gL1', 'losses.gL1'),
  };
}

function reqAug(ctx: Ctx, o: Obj, n: number): AugParams[] | undefined {
  if (absent(o, 'aug')) return undefined;
  const arr = reqArray(ctx, o, 'aug', 'aug', ctx.limits.maxKeys);
  if (arr.length !== n) fail(ctx, 'shape_mismatch', 'aug', `${arr.length} entries for ${n} keys`);
  return arr.map((a, i) => {
    if (!isPlainObject(a)) fail(ctx, 'invalid_field', `aug[${i}]`, `expected a map, got ${describe(a)}`);
    const out: AugParams = {};
    for (const k of Object.keys(a)) {
      if (k === 'flipH' || k === 'flipV') out[k] = reqBool(ctx, a, k, `aug[${i}].${k}`);
      else fail(ctx, 'invalid_field', `aug[${i}].${k.slice(0, 64)}`, 'unknown augmentation parameter');
    }
    return out;
  });
}

function reqCapabilities(ctx: Ctx, o: Obj): Capabilities {
  const c = reqObject(ctx, o, 'capabilities', 'capabilities');
  const dtypesRaw = reqArray(ctx, c, 'dtypes', 'capabilities.dtypes', ctx.limits.maxListEntries);
  const dtypes = dtypesRaw.map((d, i) => reqDtype(ctx, d, `capabilities.dtypes[${i}]`));
  if (!dtypes.includes('f32')) fail(ctx, 'invalid_field', 'capabilities.dtypes', "must include 'f32'");
  const out: Capabilities = { dtypes };
  if (!absent(c, 'modalities')) {
    const m = reqArray(ctx, c, 'modalities', 'capabilities.modalities', ctx.limits.maxListEntries);
    out.modalities = m.map((_, i) => reqString(ctx, m as unknown as Obj, String(i), `capabilities.modalities[${i}]`, ctx.limits.maxKeyLength));
  }
  return out;
}

function reqSessionConfig(ctx: Ctx, o: Obj): SessionConfig {
  const c = reqObject(ctx, o, 'config', 'config');
  const sampling = reqString(ctx, c, 'sampling', 'config.sampling', 16);
  if (sampling !== 'balance' && sampling !== 'uniform') fail(ctx, 'invalid_field', 'config.sampling', `unknown sampling ${JSON.stringify(sampling)}`);
  const weighting = reqString(ctx, c, 'weighting', 'config.weighting', 16);
  if (weighting !== 'samples' && weighting !== 'equal') fail(ctx, 'invalid_field', 'config.weighting', `unknown weighting ${JSON.stringify(weighting)}`);
  return {
    maskChannels: reqInt(ctx, c, 'maskChannels', 'config.maskChannels', 1, 1 << 16),
    imageChannels: reqInt(ctx, c, 'imageChannels', 'config.imageChannels', 1, 1 << 16),
    height: reqInt(ctx, c, 'height', 'config.height', 1, 1 << 16),
    width: reqInt(ctx, c, 'width', 'config.width', 1, 1 << 16),
    lambdaL1: reqFinite(ctx, c, 'lambdaL1', 'config.lambdaL1'),
    batchSize: reqInt(ctx, c, 'batchSize', 'config.batchSize', 1, 1 << 20),
    wireDtype: reqDtype(ctx, get(c, 'wireDtype'), 'config.wireDtype'),
    maxFrameBytes: reqInt(ctx, c, 'maxFrameBytes', 'config.maxFrameBytes', 1),
    roundTimeoutMs: reqInt(ctx, c, 'roundTimeoutMs', 'config.roundTimeoutMs', 0),
    maxStaleness: reqInt(ctx, c, 'maxStaleness', 'config.maxStaleness', 0),
    sampling,
    weighting,
    ...(absent(c, 'modalities') ? {} : { modalities: reqModalityList(ctx, c) }),
    ...(absent(c, 'maskEncoding') ? {} : { maskEncoding: reqMaskEncoding(ctx, c) }),
  };
}

function reqMaskEncoding(ctx: Ctx, c: Obj): MaskEncoding {
  const e = reqString(ctx, c, 'maskEncoding', 'config.maskEncoding', 16);
  if (!(MASK_ENCODINGS as readonly string[]).includes(e)) fail(ctx, 'invalid_field', 'config.maskEncoding', `unknown mask encoding ${JSON.stringify(e)} (expected ${MASK_ENCODINGS.join(' or ')})`);
  return e as MaskEncoding;
}

/** config.modalities: one unique (case-insensitive) name per image channel. */
function reqModalityList(ctx: Ctx, c: Obj): string[] {
  const m = reqArray(ctx, c, 'modalities', 'config.modalities', ctx.limits.maxListEntries);
  const names = m.map((_, i) => reqString(ctx, m as unknown as Obj, String(i), `config.modalities[${i}]`, ctx.limits.maxKeyLength));
  const channels = get(c, 'imageChannels');
  if (names.length !== channels) fail(ctx, 'invalid_field', 'config.modalities', `${names.length} names for ${String(channels)} image channels`);
  if (new Set(names.map((n) => n.toLowerCase())).size !== names.length) fail(ctx, 'invalid_field', 'config.modalities', 'a name appears twice');
  return names;
}

function reqMetrics(ctx: Ctx, o: Obj): Record<string, number> {
  const m = reqObject(ctx, o, 'metrics', 'metrics');
  const keys = Object.keys(m);
  if (keys.length > ctx.limits.maxListEntries) fail(ctx, 'invalid_field', 'metrics', `${keys.length} entries exceed the limit ${ctx.limits.maxListEntries}`);
  const out: Record<string, number> = {};
  for (const k of keys) {
    if (k.length > ctx.limits.maxKeyLength) fail(ctx, 'invalid_field', 'metrics', `key of length ${k.length} is too long`);
    out[k] = reqFinite(ctx, m, k, `metrics.${k}`);
  }
  return out;
}

// ---- per-type structure ------------------------------------------------------------

function hello(ctx: Ctx, o: Obj): HelloMsg {
  // Version first: a newer peer whose hello differs in shape still gets the polite refusal.
  const v = get(o, 'protocolVersion');
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(ctx, 'invalid_field', 'protocolVersion', `expected an integer, got ${describe(v)}`);
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError('unsupported_version', `protocolVersion ${v} is not supported; this server speaks version ${PROTOCOL_VERSION}`, { field: 'protocolVersion', offendingType: 'hello', fatal: true });
  }
  return {
    type: 'hello',
    protocolVersion: v,
    nodeId: reqString(ctx, o, 'nodeId', 'nodeId', ctx.limits.maxKeyLength, 1),
    token: reqString(ctx, o, 'token', 'token', ctx.limits.maxStringLength),
    capabilities: reqCapabilities(ctx, o),
  };
}

function maskUpload(ctx: Ctx, o: Obj): MaskUploadMsg {
  const keys = reqKeys(ctx, o, 'keys');
  const masks = reqTensor(ctx, o, 'masks');
  if (masks.shape.length !== 4) fail(ctx, 'shape_mismatch', 'masks.shape', `expected rank 4 [n, C, H, W], got rank ${masks.shape.length}`);
  if (masks.shape[0] !== keys.length) fail(ctx, 'shape_mismatch', 'masks.shape[0]', `${masks.shape[0]} masks for ${keys.length} keys`);
  return { type: 'maskUpload', keys, masks, sampleCount: reqInt(ctx, o, 'sampleCount', 'sampleCount', 1) };
}

function gradientReply(ctx: Ctx, o: Obj): GradientReplyMsg {
  const round = reqInt(ctx, o, 'round', 'round', 1);
  const keys = reqKeys(ctx, o, 'keys');
  const grad = reqTensor(ctx, o, 'grad');
  return { type: 'gradientReply', round, keys, grad, losses: reqLosses(ctx, o) };
}

function status(ctx: Ctx, o: Obj): StatusMsg {
  return { type: 'status', round: reqInt(ctx, o, 'round', 'round', 0), metrics: reqMetrics(ctx, o) };
}

function error(ctx: Ctx, o: Obj): ErrorMsg {
  const code = reqString(ctx, o, 'code', 'code', 64);
  if (!(ERROR_CODES as readonly string[]).includes(code)) fail(ctx, 'invalid_field', 'code', `unknown error code ${JSON.stringify(code)}`);
  const msg: ErrorMsg = { type: 'error', code: code as ErrorCode, message: reqString(ctx, o, 'message', 'message', ctx.limits.maxStringLength), fatal: reqBool(ctx, o, 'fatal', 'fatal') };
  if (!absent(o, 'field')) msg.field = reqString(ctx, o, 'field', 'field', ctx.limits.maxStringLength);
  if (!absent(o, 'offendingType')) msg.offendingType = reqString(ctx, o, 'offendingType', 'offendingType', ctx.limits.maxStringLength);
  if (!absent(o, 'round')) msg.round = reqInt(ctx, o, 'round', 'round', 0);
  return msg;
}

function goodbye(ctx: Ctx, o: Obj): GoodbyeMsg {
  const msg: GoodbyeMsg = { type: 'goodbye', reason: reqString(ctx, o, 'reason', 'reason', ctx.limits.maxStringLength) };
  if (!absent(o, 'code')) msg.code = reqString(ctx, o, 'code', 'code', 64);
  return msg;
}

function welcome(ctx: Ctx, o: Obj): WelcomeMsg {
  const v = reqInt(ctx, o, 'protocolVersion', 'protocolVersion', 0);
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError('unsupported_version', `protocolVersion ${v} is not supported; this node speaks version ${PROTOCOL_VERSION}`, { field: 'protocolVersion', offendingType: 'welcome', fatal: true });
  }
  return {
    type: 'welcome',
    protocolVersion: v,
    sessionId: reqString(ctx, o, 'sessionId', 'sessionId', ctx.limits.maxKeyLength),
    nodeId: reqString(ctx, o, 'nodeId', 'nodeId', ctx.limits.maxKeyLength, 1),
    round: reqInt(ctx, o, 'round', 'round', 0),
    config: reqSessionConfig(ctx, o),
    knownKeys: reqKeys(ctx, o, 'knownKeys', MAX_KNOWN_KEYS),
  };
}

function maskAck(ctx: Ctx, o: Obj): MaskAckMsg {
  return { type: 'maskAck', accepted: reqInt(ctx, o, 'accepted', 'accepted', 0), total: reqInt(ctx, o, 'total', 'total', 0) };
}

function roundRequest(ctx: Ctx, o: Obj): RoundRequestMsg {
  const round = reqInt(ctx, o, 'round', 'round', 1);
  const keys = reqKeys(ctx, o, 'keys');
  const fakes = reqTensor(ctx, o, 'fakes');
  if (fakes.shape.length !== 4) fail(ctx, 'shape_mismatch', 'fakes.shape', `expected rank 4 [n, C, H, W], got rank ${fakes.shape.length}`);
  if (fakes.shape[0] !== keys.length) fail(ctx, 'shape_mismatch', 'fakes.shape[0]', `${fakes.shape[0]} fakes for ${keys.length} keys`);
  const aug = reqAug(ctx, o, keys.length);
  return aug ? { type: 'roundRequest', round, keys, fakes, aug } : { type: 'roundRequest', round, keys, fakes };
}

const TO_SERVER: Record<NodeToServer['type'], (ctx: Ctx, o: Obj) => NodeToServer> = {
  hello, maskUpload, gradientReply, status, error, goodbye,
};
const TO_NODE: Record<ServerToNode['type'], (ctx: Ctx, o: Obj) => ServerToNode> = {
  welcome, maskAck, roundRequest, status, error, goodbye,
};

/**
 * Structurally validate a decoded frame received by `direction`'s side.
 * Throws ProtocolError ('unknown_type', 'invalid_field', 'shape_mismatch', 'non_finite',
 * 'unsupported_version') with `field` naming what was wrong.
 */
export function validateMessage(raw: Obj, direction: 'toServer', limits: ValidationLimits): NodeToServer;
export function validateMessage(raw: Obj, direction: 'toNode', limits: ValidationLimits): ServerToNode;
export function validateMessage(raw: Obj, direction: Direction, limits: ValidationLimits): NodeToServer | ServerToNode;
export function validateMessage(raw: Obj, direction: Direction, limits: ValidationLimits): NodeToServer | ServerToNode {
  const type = get(raw, 'type');
  const ctx: Ctx = { type: undefined, limits };
  if (typeof type !== 'string') fail(ctx, 'unknown_type', 'type', `expected a string, got ${describe(type)}`);
  const table: Record<string, (ctx: Ctx, o: Obj) => NodeToServer | ServerToNode> = direction === 'toServer' ? TO_SERVER : TO_NODE;
  const allowed: readonly string[] = direction === 'toServer' ? NODE_TO_SERVER_TYPES : SERVER_TO_NODE_TYPES;
  if (!allowed.includes(type)) {
    fail(ctx, 'unknown_type', 'type', `${JSON.stringify(type.slice(0, 64))} is not a message a ${direction === 'toServer' ? 'server' : 'node'} accepts`);
  }
  ctx.type = type;
  return table[type]!(ctx, raw);
}

// ---- checks against session state ----------------------------------------------------

function ctxOf(type: string): Ctx {
  // Contextual checks never consult limits; a placeholder keeps the helpers uniform.
  return { type, limits: { maxFrameBytes: 0, maxKeys: 0, maxKeyLength: 0, maxStringLength: 0, maxListEntries: 0 } };
}

/** Require `t.shape` to equal `expected` exactly. */
export function checkShape(type: string, field: string, t: WireTensor, expected: readonly number[]): void {
  const ctx = ctxOf(type);
  if (t.shape.length !== expected.length) fail(ctx, 'shape_mismatch', `${field}.shape`, `rank ${t.shape.length}, expected [${expected.join(', ')}]`);
  for (let i = 0; i < expected.length; i++) {
    if (t.shape[i] !== expected[i]) fail(ctx, 'shape_mismatch', `${field}.shape[${i}]`, `${t.shape[i]}, expected ${expected[i]} (expected shape [${expected.join(', ')}])`);
  }
}

/** Decode a structurally valid tensor and reject NaN/Inf, naming the first bad element. */
export function decodeFinite(type: string, field: string, t: WireTensor): Float32Array {
  const values = decodeTensor(t);
  const bad = firstNonFinite(values);
  if (bad >= 0) fail(ctxOf(type), 'non_finite', field, `element ${bad} is ${values[bad]}`);
  return values;
}

/**
 * Check an upload against the session's mask geometry and encoding; returns the decoded masks.
 * Why the encoding matters: masks feed the generator's batch norm, whose running statistics a
 * value like 1e30 or -1e6 would corrupt for good. Every value must be exactly 0 or 1; with
 * 'one-hot' (the default for maskChannels >= 2) each pixel's channel values must also sum to 1.
 * The error names the first bad element as [sample, channel, y, x].
 */
export function checkMaskUpload(msg: MaskUploadMsg, cfg: Pick<SessionConfig, 'maskChannels' | 'height' | 'width' | 'maskEncoding'>): Float32Array {
  checkShape('maskUpload', 'masks', msg.masks, [msg.keys.length, cfg.maskChannels, cfg.height, cfg.width]);
  const values = decodeFinite('maskUpload', 'masks', msg.masks);
  const C = cfg.maskChannels;
  const plane = cfg.height * cfg.width;
  const where = (i: number): string => {
    const n = Math.floor(i / (C * plane));
    const c = Math.floor(i / plane) % C;
    const p = i % plane;
    return `[${n}, ${c}, ${Math.floor(p / cfg.width)}, ${p % cfg.width}]`;
  };
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== 0 && v !== 1) fail(ctxOf('maskUpload'), 'invalid_field', 'masks', `element ${i} ${where(i)} is ${v}; mask values must be 0 or 1`);
  }
  const encoding = cfg.maskEncoding ?? (C >= 2 ? 'one-hot' : 'binary');
  if (encoding === 'one-hot') {
    for (let n = 0; n < msg.keys.length; n++) {
      for (let p = 0; p < plane; p++) {
        let sum = 0;
        for (let c = 0; c < C; c++) sum += values[(n * C + c) * plane + p]!;
        if (sum !== 1) {
          const i = n * C * plane + p;
          fail(ctxOf('maskUpload'), 'invalid_field', 'masks', `pixel ${where(i).replace(/, \d+, /, ', *, ')} has ${sum} classes set; a one-hot mask has exactly one per pixel`);
        }
      }
    }
  }
  return values;
}

/** What a gradientReply must match: the roundRequest that was sent. */
export interface ExpectedReply {
  round: number;
  keys: readonly string[];
  shape: readonly number[];
}

/** Check a reply against its request (same keys in the same order, same shape, finite); returns the gradient. */
export function checkGradientReply(msg: GradientReplyMsg, expected: ExpectedReply): Float32Array {
  const ctx = ctxOf('gradientReply');
  if (msg.round !== expected.round) fail(ctx, 'unexpected', 'round', `reply is for round ${msg.round}, expected ${expected.round}`);
  if (msg.keys.length !== expected.keys.length) fail(ctx, 'shape_mismatch', 'keys', `${msg.keys.length} keys, the request had ${expected.keys.length}`);
  for (let i = 0; i < expected.keys.length; i++) {
    if (msg.keys[i] !== expected.keys[i]) fail(ctx, 'invalid_field', `keys[${i}]`, `${JSON.stringify(msg.keys[i])}, the request had ${JSON.stringify(expected.keys[i])}`);
  }
  checkShape('gradientReply', 'grad', msg.grad, expected.shape);
  return decodeFinite('gradientReply', 'grad', msg.grad);
}

/** Check a roundRequest against the welcome config and the node's own keys; returns the fakes. */
export function checkRoundRequest(msg: RoundRequestMsg, cfg: SessionConfig, hasKey: (key: string) => boolean): Float32Array {
  const ctx = ctxOf('roundRequest');
  if (msg.keys.length > cfg.batchSize) fail(ctx, 'shape_mismatch', 'keys', `${msg.keys.length} keys exceed batchSize ${cfg.batchSize}`);
  for (let i = 0; i < msg.keys.length; i++) {
    if (!hasKey(msg.keys[i]!)) fail(ctx, 'invalid_field', `keys[${i}]`, `unknown key ${JSON.stringify(msg.keys[i])}`);
  }
  checkShape('roundRequest', 'fakes', msg.fakes, [msg.keys.length, cfg.imageChannels, cfg.height, cfg.width]);
  return decodeFinite('roundRequest', 'fakes', msg.fakes);
}
