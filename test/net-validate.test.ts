import t from 'tap';
import { decodeFrame, encodeFrame, encodeTensor } from '../src/net/codec.js';
import { DEFAULT_LIMITS, PROTOCOL_VERSION, ProtocolError, type SessionConfig } from '../src/net/protocol.js';
import { checkGradientReply, checkMaskUpload, checkRoundRequest, validateMessage } from '../src/net/validate.js';

const limits = { ...DEFAULT_LIMITS, maxKeys: 16 };
const cfg: SessionConfig = {
  maskChannels: 1, imageChannels: 3, height: 2, width: 2, lambdaL1: 100, batchSize: 4, wireDtype: 'f32', maxFrameBytes: 1 << 20,
  roundTimeoutMs: 1000, maxStaleness: 1, sampling: 'balance', weighting: 'samples',
};
const tensor = (shape: number[], dtype: 'f32' | 'f16' = 'f32', fill = 0.5): ReturnType<typeof encodeTensor> =>
  encodeTensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill), shape, dtype);

type Asserts = Pick<typeof t, 'equal' | 'fail' | 'ok'>;

/** Through real bytes, as on the wire. */
const wire = (o: Record<string, unknown>): Record<string, unknown> => decodeFrame(encodeFrame(o), 1 << 24);

function expectError(t: Asserts, f: () => unknown, code: string, field: string | undefined, name: string): void {
  try {
    f();
    t.fail(`${name}: no error`);
  } catch (e) {
    if (!(e instanceof ProtocolError)) {
      t.fail(`${name}: ${String(e)}`);
      return;
    }
    t.equal(e.code, code, `${name}: code`);
    t.equal(e.field, field, `${name}: field`);
    if (field) t.ok(e.message.includes(field), `${name}: message names the field (${e.message})`);
  }
}

const base = {
  hello: { type: 'hello', protocolVersion: PROTOCOL_VERSION, nodeId: 'n1', token: 'tok', capabilities: { dtypes: ['f32', 'f16'], modalities: ['T1'] } },
  maskUpload: { type: 'maskUpload', keys: ['a', 'b'], masks: tensor([2, 1, 2, 2], 'f32', 1), sampleCount: 10 },
  gradientReply: { type: 'gradientReply', round: 5, keys: ['a', 'b'], grad: tensor([2, 3, 2, 2]), losses: { dReal: 0.1, dFake: 0.2, gGan: 0.3, gL1: 0.4 } },
  status: { type: 'status', round: 2, metrics: { dSteps: 4 } },
  error: { type: 'error', code: 'internal', message: 'x', fatal: false, field: 'f', offendingType: 'hello', round: 3 },
  goodbye: { type: 'goodbye', reason: 'bye' },
  welcome: { type: 'welcome', protocolVersion: PROTOCOL_VERSION, sessionId: 's', nodeId: 'n1', round: 0, config: cfg, knownKeys: ['a'] },
  maskAck: { type: 'maskAck', accepted: 2, total: 2 },
  roundRequest: { type: 'roundRequest', round: 5, keys: ['a', 'b'], fakes: tensor([2, 3, 2, 2], 'f16'), aug: [{ flipH: true }, { flipV: false }] },
};

t.test('valid messages pass, in their direction only', async (t) => {
  for (const k of ['hello', 'maskUpload', 'gradientReply', 'status', 'error', 'goodbye'] as const) {
    t.equal(validateMessage(wire(base[k]), 'toServer', limits).type, k, `${k} to server`);
  }
  for (const k of ['welcome', 'maskAck', 'roundRequest', 'status', 'error', 'goodbye'] as const) {
    t.equal(validateMessage(wire(base[k]), 'toNode', limits).type, k, `${k} to node`);
  }
  expectError(t, () => validateMessage(wire(base.roundRequest), 'toServer', limits), 'unknown_type', 'type', 'roundRequest sent to server');
  expectError(t, () => validateMessage(wire(base.hello), 'toNode', limits), 'unknown_type', 'type', 'hello sent to node');
  expectError(t, () => validateMessage(wire({ type: 'realImages', data: new Uint8Array(4) }), 'toServer', limits), 'unknown_type', 'type', 'no message type carries real images');
  expectError(t, () => validateMessage(wire({ x: 1 }), 'toServer', limits), 'unknown_type', 'type', 'missing type');
  expectError(t, () => validateMessage(wire({ type: 7 }), 'toServer', limits), 'unknown_type', 'type', 'numeric type');
});

t.test('structural errors name the field', async (t) => {
  const cases: [keyof typeof base, 'toServer' | 'toNode', Record<string, unknown>, string, string][] = [
    ['hello', 'toServer', { protocolVersion: 3 }, 'unsupported_version', 'protocolVersion'],
    ['hello', 'toServer', { protocolVersion: '1' }, 'invalid_field', 'protocolVersion'],
    ['hello', 'toServer', { nodeId: '' }, 'invalid_field', 'nodeId'],
    ['hello', 'toServer', { nodeId: 'x'.repeat(300) }, 'invalid_field', 'nodeId'],
    ['hello', 'toServer', { token: 5 }, 'invalid_field', 'token'],
    ['hello', 'toServer', { token: undefined }, 'invalid_field', 'token'],
    ['hello', 'toServer', { capabilities: { dtypes: ['f16'] } }, 'invalid_field', 'capabilities.dtypes'],
    ['hello', 'toServer', { capabilities: { dtypes: ['f32', 'bf16'] } }, 'invalid_field', 'capabilities.dtypes[1]'],
    ['hello', 'toServer', { capabilities: { dtypes: ['f32'], modalities: [3] } }, 'invalid_field', 'capabilities.modalities[0]'],
    ['maskUpload', 'toServer', { keys: 'a' }, 'invalid_field', 'keys'],
    ['maskUpload', 'toServer', { keys: ['a', 'a'] }, 'invalid_field', 'keys[1]'],
    ['maskUpload', 'toServer', { keys: ['a', ''] }, 'invalid_field', 'keys[1]'],
    ['maskUpload', 'toServer', { keys: Array.from({ length: 17 }, (_, i) => `k${i}`) }, 'invalid_field', 'keys'],
    ['maskUpload', 'toServer', { keys: ['a'] }, 'shape_mismatch', 'masks.shape[0]'],
    ['maskUpload', 'toServer', { masks: tensor([2, 4]) }, 'shape_mismatch', 'masks.shape'],
    ['maskUpload', 'toServer', { masks: { ...tensor([2, 1, 2, 2]), dtype: 'f64' } }, 'invalid_field', 'masks.dtype'],
    ['maskUpload', 'toServer', { masks: { ...tensor([2, 1, 2, 2]), shape: [2, 1, 2, -2] } }, 'invalid_field', 'masks.shape[3]'],
    ['maskUpload', 'toServer', { masks: { ...tensor([2, 1, 2, 2]), shape: [2, 1, 2, 2.5] } }, 'invalid_field', 'masks.shape[3]'],
    ['maskUpload', 'toServer', { masks: { ...tensor([2, 1, 2, 2]), data: 'abc' } }, 'invalid_field', 'masks.data'],
    ['maskUpload', 'toServer', { masks: { ...tensor([2, 1, 2, 2]), data: new Uint8Array(31) } }, 'shape_mismatch', 'masks.data'],
    ['maskUpload', 'toServer', { masks: { ...tensor([2, 1, 2, 2]), dtype: 'f16' } }, 'shape_mismatch', 'masks.data'],
    ['maskUpload', 'toServer', { masks: [1, 2] }, 'invalid_field', 'masks'],
    ['maskUpload', 'toServer', { sampleCount: 0 }, 'invalid_field', 'sampleCount'],
    ['maskUpload', 'toServer', { sampleCount: 1.5 }, 'invalid_field', 'sampleCount'],
    ['gradientReply', 'toServer', { round: 0 }, 'invalid_field', 'round'],
    ['gradientReply', 'toServer', { round: 2 ** 60 }, 'invalid_field', 'round'],
    ['gradientReply', 'toServer', { grad: undefined }, 'invalid_field', 'grad'],
    ['gradientReply', 'toServer', { losses: { dReal: 0, dFake: 0, gGan: 0 } }, 'invalid_field', 'losses.gL1'],
    ['gradientReply', 'toServer', { losses: { dReal: 0, dFake: NaN, gGan: 0, gL1: 0 } }, 'non_finite', 'losses.dFake'],
    ['gradientReply', 'toServer', { losses: { dReal: Infinity, dFake: 0, gGan: 0, gL1: 0 } }, 'non_finite', 'losses.dReal'],
    ['gradientReply', 'toServer', { losses: 'good' }, 'invalid_field', 'losses'],
    ['status', 'toServer', { metrics: { a: 'b' } }, 'invalid_field', 'metrics.a'],
    ['status', 'toServer', { metrics: { a: NaN } }, 'non_finite', 'metrics.a'],
    ['error', 'toServer', { code: 'nope' }, 'invalid_field', 'code'],
    ['error', 'toServer', { fatal: 'yes' }, 'invalid_field', 'fatal'],
    ['goodbye', 'toServer', { reason: null }, 'invalid_field', 'reason'],
    ['welcome', 'toNode', { protocolVersion: 9 }, 'unsupported_version', 'protocolVersion'],
    ['welcome', 'toNode', { config: { ...cfg, height: 0 } }, 'invalid_field', 'config.height'],
    ['welcome', 'toNode', { config: { ...cfg, sampling: 'random' } }, 'invalid_field', 'config.sampling'],
    ['welcome', 'toNode', { config: { ...cfg, wireDtype: 'int8' } }, 'invalid_field', 'config.wireDtype'],
    ['welcome', 'toNode', { config: { ...cfg, modalities: [] } }, 'invalid_field', 'config.modalities'],
    ['welcome', 'toNode', { config: { ...cfg, modalities: [7] } }, 'invalid_field', 'config.modalities[0]'],
    ['welcome', 'toNode', { config: { ...cfg, modalities: ['t1', 'T1', 't2'] } }, 'invalid_field', 'config.modalities'],
    ['welcome', 'toNode', { knownKeys: [1] }, 'invalid_field', 'knownKeys[0]'],
    ['maskAck', 'toNode', { total: -1 }, 'invalid_field', 'total'],
    ['roundRequest', 'toNode', { aug: [{ flipH: true }] }, 'shape_mismatch', 'aug'],
    ['roundRequest', 'toNode', { aug: [{ flipH: 1 }, {}] }, 'invalid_field', 'aug[0].flipH'],
    ['roundRequest', 'toNode', { aug: [{ rotate: 90 }, {}] }, 'invalid_field', 'aug[0].rotate'],
    ['roundRequest', 'toNode', { fakes: tensor([3, 3, 2, 2]) }, 'shape_mismatch', 'fakes.shape[0]'],
  ];
  for (const [type, dir, patch, code, field] of cases) {
    const msg = wire({ ...base[type], ...patch });
    expectError(t, () => validateMessage(msg, dir, limits), code, field, `${type} ${JSON.stringify(patch).slice(0, 60)}`);
  }
});

t.test('unknown extra fields are ignored (forward compatible)', async (t) => {
  const m = validateMessage(wire({ ...base.status, futureField: [1, 2] }), 'toServer', limits);
  t.same(m, { type: 'status', round: 2, metrics: { dSteps: 4 } }, 'validated copy holds known fields only');
});

t.test('contextual checks: masks, gradient replies, round requests', async (t) => {
  const up = validateMessage(wire(base.maskUpload), 'toServer', limits);
  if (up.type !== 'maskUpload') throw new Error('unreachable');
  t.equal(checkMaskUpload(up, cfg).length, 8);
  expectError(t, () => checkMaskUpload(up, { ...cfg, height: 3 }), 'shape_mismatch', 'masks.shape[2]', 'mask height vs config');
  const nanMask = validateMessage(wire({ ...base.maskUpload, masks: tensor([2, 1, 2, 2], 'f32', NaN) }), 'toServer', limits);
  if (nanMask.type !== 'maskUpload') throw new Error('unreachable');
  expectError(t, () => checkMaskUpload(nanMask, cfg), 'non_finite', 'masks', 'NaN mask');
  const halfMask = validateMessage(wire({ ...base.maskUpload, masks: tensor([2, 1, 2, 2], 'f32', 0.5) }), 'toServer', limits);
  if (halfMask.type !== 'maskUpload') throw new Error('unreachable');
  expectError(t, () => checkMaskUpload(halfMask, cfg), 'invalid_field', 'masks', 'a mask value other than 0 or 1');

  const expected = { round: 5, keys: ['a', 'b'], shape: [2, 3, 2, 2] };
  const reply = (patch: Record<string, unknown>): Parameters<typeof checkGradientReply>[0] => {
    const m = validateMessage(wire({ ...base.gradientReply, ...patch }), 'toServer', limits);
    if (m.type !== 'gradientReply') throw new Error('unreachable');
    return m;
  };
  t.equal(checkGradientReply(reply({}), expected).length, 24);
  t.equal(checkGradientReply(reply({ grad: tensor([2, 3, 2, 2], 'f16') }), expected).length, 24, 'f16 reply accepted');
  expectError(t, () => checkGradientReply(reply({ keys: ['b', 'a'] }), expected), 'invalid_field', 'keys[0]', 'keys reordered');
  expectError(t, () => checkGradientReply(reply({ keys: ['a'], grad: tensor([1, 3, 2, 2]) }), expected), 'shape_mismatch', 'keys', 'fewer keys');
  expectError(t, () => checkGradientReply(reply({ grad: tensor([2, 1, 2, 2]) }), expected), 'shape_mismatch', 'grad.shape[1]', 'wrong channels');
  expectError(t, () => checkGradientReply(reply({ grad: tensor([2, 3, 4]) }), expected), 'shape_mismatch', 'grad.shape', 'wrong rank');
  expectError(t, () => checkGradientReply(reply({ round: 6 }), expected), 'unexpected', 'round', 'other round');
  const nanGrad = encodeTensor(new Float32Array(24).fill(0.1), [2, 3, 2, 2]);
  new DataView(nanGrad.data.buffer, nanGrad.data.byteOffset).setFloat32(4 * 17, NaN, true);
  expectError(t, () => checkGradientReply(reply({ grad: nanGrad }), expected), 'non_finite', 'grad', 'NaN gradient');
  expectError(t, () => checkGradientReply(reply({ grad: tensor([2, 3, 2, 2], 'f16', 1e6) }), expected), 'non_finite', 'grad', 'f16 overflow to Inf');

  const rr = validateMessage(wire(base.roundRequest), 'toNode', limits);
  if (rr.type !== 'roundRequest') throw new Error('unreachable');
  t.equal(checkRoundRequest(rr, cfg, () => true).length, 24);
  expectError(t, () => checkRoundRequest(rr, cfg, (k) => k === 'a'), 'invalid_field', 'keys[1]', 'unknown key');
  expectError(t, () => checkRoundRequest(rr, { ...cfg, imageChannels: 1 }, () => true), 'shape_mismatch', 'fakes.shape[1]', 'channels vs config');
  expectError(t, () => checkRoundRequest(rr, { ...cfg, batchSize: 1 }, () => true), 'shape_mismatch', 'keys', 'over batch size');
});
