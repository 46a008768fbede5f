/**
 * Masks are checked against the documented encoding (checkMaskUpload) and the encoding travels in
 * the session config (validated on the node's side). Crafted values (1e30, -1e6, 255, 0.5) and
 * pixels with zero or two classes are refused with invalid_field naming the first bad element.
 */
import t, { type Test } from 'tap';
import { encodeTensor } from '../src/net/codec.js';
import { DEFAULT_LIMITS, ProtocolError, type MaskUploadMsg, type SessionConfig } from '../src/net/protocol.js';
import { checkMaskUpload, validateMessage } from '../src/net/validate.js';

const H = 2;
const W = 3;
function upload(values: number[], channels: number): MaskUploadMsg {
  const n = values.length / (channels * H * W);
  return { type: 'maskUpload', keys: Array.from({ length: n }, (_, i) => `k${i}`), masks: encodeTensor(Float32Array.from(values), [n, channels, H, W]), sampleCount: n };
}
/** One-hot masks over 3 classes: pixel p has class classes[p]. */
function oneHot(classes: number[]): number[] {
  const out = new Array<number>(3 * H * W).fill(0);
  classes.forEach((c, p) => (out[c * H * W + p] = 1));
  return out;
}
const cfg3 = { maskChannels: 3, height: H, width: W } as const;

function refusal(t: Test, fn: () => unknown, pattern: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(e instanceof ProtocolError && e.code === 'invalid_field' && e.field === 'masks', `${what}: invalid_field on masks`);
    t.match((e as Error).message, pattern, what);
  }
}

t.test('one-hot (the default for >= 2 mask channels)', async (t) => {
  const good = oneHot([0, 1, 2, 0, 1, 2]);
  t.same([...checkMaskUpload(upload(good, 3), cfg3)], good, 'a one-hot mask is accepted and returned');
  for (const [v, name] of [[1e30, '1e30'], [-1e6, '-1e6'], [255, '255'], [0.5, '0.5']] as const) {
    const bad = [...good];
    bad[4] = v;
    refusal(t, () => checkMaskUpload(upload(bad, 3), cfg3), new RegExp(`maskUpload: masks: element 4 \\[0, 0, 1, 1\\] is ${String(Math.fround(v)).replace('+', '\\+')}; mask values must be 0 or 1`), name);
  }
  const none = [...good];
  none[2 * H * W + 5] = 0; // pixel 5 loses its class
  refusal(t, () => checkMaskUpload(upload(none, 3), cfg3), /pixel \[0, \*, 1, 2\] has 0 classes set; a one-hot mask has exactly one per pixel/, 'no class');
  const two = [...good];
  two[1 * H * W + 0] = 1; // pixel 0: classes 0 and 1
  refusal(t, () => checkMaskUpload(upload([...good, ...two], 3), cfg3), /pixel \[1, \*, 0, 0\] has 2 classes set/, 'two classes, second mask');
  refusal(t, () => checkMaskUpload(upload(new Array(18).fill(1), 3), { ...cfg3, maskEncoding: 'one-hot' }), /pixel \[0, \*, 0, 0\] has 3 classes set/, 'all ones');
});

t.test("binary (the default for one channel, or maskEncoding: 'binary')", async (t) => {
  const cfg1 = { maskChannels: 1, height: H, width: W } as const;
  t.same([...checkMaskUpload(upload([0, 1, 1, 0, 0, 1], 1), cfg1)], [0, 1, 1, 0, 0, 1], 'a single-channel 0/1 mask');
  refusal(t, () => checkMaskUpload(upload([0, 1, 255, 0, 0, 1], 1), cfg1), /element 2 \[0, 0, 0, 2\] is 255/, '255 in a binary mask');
  const multi = new Array<number>(18).fill(1);
  t.equal(checkMaskUpload(upload(multi, 3), { ...cfg3, maskEncoding: 'binary' }).length, 18, "'binary' with 3 channels: overlapping labels allowed");
  refusal(t, () => checkMaskUpload(upload([1e30, ...multi.slice(1)], 3), { ...cfg3, maskEncoding: 'binary' }), /element 0 .* is 1\.0000000150474662e\+30/, 'but still 0 or 1');
});

t.test('config.maskEncoding is validated on the node side', async (t) => {
  const config: SessionConfig = {
    maskChannels: 3, imageChannels: 1, height: H, width: W, lambdaL1: 100, batchSize: 2, wireDtype: 'f32', maxFrameBytes: 1 << 20,
    roundTimeoutMs: 1000, maxStaleness: 1, sampling: 'balance', weighting: 'samples', maskEncoding: 'one-hot',
  };
  const welcome = (c: Record<string, unknown>) => ({ type: 'welcome', protocolVersion: 2, sessionId: 's', nodeId: 'n', round: 0, config: c, knownKeys: [] });
  const ok = validateMessage(welcome({ ...config }), 'toNode', DEFAULT_LIMITS) as { config: SessionConfig };
  t.equal(ok.config.maskEncoding, 'one-hot');
  const { maskEncoding: _, ...without } = config;
  t.equal((validateMessage(welcome(without), 'toNode', DEFAULT_LIMITS) as { config: SessionConfig }).config.maskEncoding, undefined, 'absent: the documented default applies');
  t.throws(() => validateMessage(welcome({ ...config, maskEncoding: 'rgb' }), 'toNode', DEFAULT_LIMITS), /welcome: config\.maskEncoding: unknown mask encoding "rgb" \(expected one-hot or binary\)/);
});
