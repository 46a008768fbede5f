/**
 * Scaled f16 on the wire ('f16s'): round-trip error bound, small gradients that plain f16 flushes
 * to zero, hostile tensors refused with one line naming the field, and a loopback federation in
 * which fakes and gradients travel as f16s (half the bytes of f32) and training still converges.
 */
import t from 'tap';
import { decodeFrame, decodeTensor, encodeFrame, encodeTensor, f16sScale, F16S_MAX_SCALE } from '../src/net/codec.js';
import { DEFAULT_LIMITS, ProtocolError, type Dtype, type WireTensor } from '../src/net/protocol.js';
import { checkGradientReply, validateMessage } from '../src/net/validate.js';
import type { RoundSummary } from '../src/net/coordinator.js';
import { LinearGenerator, TARGET_A, TARGET_B } from './helpers/net-backends.js';
import { makeTestNode, startTestServer } from './helpers/net-harness.js';

/** Deterministic values spanning many decades, both signs. */
function spread(n: number, seed: number, decades: number, top: number): Float32Array {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (next() < 0.5 ? -1 : 1) * top * 10 ** (-decades * next());
  return out;
}

/** Through real msgpack bytes, as on the wire. */
const wire = (o: Record<string, unknown>): Record<string, unknown> => decodeFrame(encodeFrame(o), 1 << 24);

t.test('f16s round trip stays within max(2^-11 |x|, 2^-25 scale)', async (t) => {
  for (const [top, decades] of [[1, 6], [3e-3, 4], [1e-8, 3], [4e4, 8], [1e30, 2]] as const) {
    const x = spread(4099, 7, decades, top);
    const enc = encodeTensor(x, [4099], 'f16s');
    t.equal(enc.data.byteLength, 2 * x.length, `top ${top}: two bytes per element`);
    const back = decodeTensor(wire({ t: enc }).t as WireTensor);
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const bound = Math.max(2 ** -11 * Math.abs(x[i]!), 2 ** -25 * enc.scale!);
      worst = Math.max(worst, Math.abs(back[i]! - x[i]!) / bound);
    }
    t.ok(worst <= 1, `top ${top}: worst error ${worst.toFixed(3)} of the bound`);
  }
  t.equal(f16sScale(new Float32Array(5)), 1, 'all zeros: scale 1');
  t.same([...decodeTensor(encodeTensor(new Float32Array(5), [5], 'f16s'))], [0, 0, 0, 0, 0], 'zeros survive');
  t.equal(f16sScale(Float32Array.of(3e38)), F16S_MAX_SCALE, 'the scale is capped so that scale * 65504 stays finite');
});

t.test('a gradient of 1e-8 magnitude survives f16s; plain f16 flushes it', async (t) => {
  const g = Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? -1 : 1) * 1e-8 * (1 + i / 64));
  const viaF16 = decodeTensor(encodeTensor(g, [64], 'f16'));
  const viaF16s = decodeTensor(encodeTensor(g, [64], 'f16s'));
  // Control: plain f16 resolves only multiples of 2^-24 = 6e-8, so these become 0.
  t.ok(viaF16.every((v) => v === 0), 'plain f16 flushes 1e-8 to zero (the failure f16s prevents)');
  let worstRel = 0;
  for (let i = 0; i < g.length; i++) worstRel = Math.max(worstRel, Math.abs(viaF16s[i]! - g[i]!) / Math.abs(g[i]!));
  t.ok(worstRel <= 2 ** -11, `f16s keeps 1e-8 to ${worstRel.toExponential(2)} relative error`);
  t.ok(viaF16s.every((v, i) => Math.sign(v) === Math.sign(g[i]!)), 'signs kept');
});

t.test('hostile f16s tensors are refused with one line naming the field', async (t) => {
  const good = encodeTensor(Float32Array.of(1e-3, -2e-3, 3e-3, 4e-3), [1, 1, 2, 2], 'f16s');
  const reply = (grad: Record<string, unknown>) => wire({
    type: 'gradientReply', round: 1, keys: ['a'], grad, losses: { dReal: 0, dFake: 0, gGan: 0, gL1: 0 },
  });
  const cases: [string, Record<string, unknown>, string, string][] = [
    ['NaN scale', { ...good, scale: NaN }, 'invalid_field', 'grad.scale'],
    ['infinite scale', { ...good, scale: Infinity }, 'invalid_field', 'grad.scale'],
    ['zero scale', { ...good, scale: 0 }, 'invalid_field', 'grad.scale'],
    ['negative scale', { ...good, scale: -1 }, 'invalid_field', 'grad.scale'],
    ['scale that overflows f32', { ...good, scale: 1e35 }, 'invalid_field', 'grad.scale'],
    ['missing scale', { dtype: 'f16s', shape: good.shape, data: good.data }, 'invalid_field', 'grad.scale'],
    ['string scale', { ...good, scale: '1' }, 'invalid_field', 'grad.scale'],
    ['scale on an f32 tensor', { ...encodeTensor(new Float32Array(4), [1, 1, 2, 2]), scale: 1 }, 'invalid_field', 'grad.scale'],
    ['one byte short', { ...good, data: good.data.subarray(0, 7) }, 'shape_mismatch', 'grad.data'],
    ['f32-sized data under f16s', { ...good, data: new Uint8Array(16) }, 'shape_mismatch', 'grad.data'],
  ];
  for (const [name, grad, code, field] of cases) {
    try {
      validateMessage(reply(grad), 'toServer', DEFAULT_LIMITS);
      t.fail(`${name}: accepted`);
    } catch (e) {
      t.ok(e instanceof ProtocolError, `${name}: a ProtocolError`);
      const pe = e as ProtocolError;
      t.equal(pe.code, code, `${name}: code ${pe.code}`);
      t.equal(pe.field, field, `${name}: field`);
      t.ok(pe.message.includes(field) && !pe.message.includes('\n'), `${name}: one line naming the field: ${pe.message}`);
    }
  }
  // Halves that decode to Inf/NaN (0x7c00, 0x7e00) are caught as non-finite after decoding.
  const inf = new Uint8Array(new Uint16Array([0x3c00, 0x7c00, 0x7e00, 0]).buffer);
  const msg = validateMessage(reply({ dtype: 'f16s', shape: [1, 1, 2, 2], data: inf, scale: 0.5 }), 'toServer', DEFAULT_LIMITS);
  t.throws(() => checkGradientReply(msg as never, { round: 1, keys: ['a'], shape: [1, 1, 2, 2] }), { code: 'non_finite', field: 'grad' });
  // The well-formed tensor passes and decodes.
  const ok = validateMessage(reply(good as unknown as Record<string, unknown>), 'toServer', DEFAULT_LIMITS);
  const values = checkGradientReply(ok as never, { round: 1, keys: ['a'], shape: [1, 1, 2, 2] });
  t.ok(Math.abs(values[1]! + 2e-3) < 2e-3 * 2 ** -11, 'valid f16s reply decodes');
});

/** One loopback federation of 3 toy nodes for `rounds`; returns the learned line and the bytes. */
async function federate(wireDtype: Dtype, rounds: number): Promise<{ a: number; b: number; bytesIn: number; bytesOut: number; dtypes: Set<string> }> {
  const gen = new LinearGenerator(0.03);
  const summaries: RoundSummary[] = [];
  const server = await startTestServer(gen, { wireDtype, onRound: (s) => summaries.push(s), session: { maskChannels: 1, imageChannels: 1, height: 8, width: 8, batchSize: 6 } });
  const nodes = [
    makeTestNode(server.url, 'alpha', { n: 20, seed: 21 }),
    makeTestNode(server.url, 'beta', { n: 10, seed: 22 }),
    makeTestNode(server.url, 'gamma', { n: 8, seed: 23 }),
  ];
  const dtypes = new Set<string>();
  try {
    await Promise.all(nodes.map((n) => n.node.start()));
    await server.coordinator.waitForRound(rounds, 30000);
    for (const n of nodes) dtypes.add(n.node.sessionConfig?.wireDtype ?? '?');
  } finally {
    for (const n of nodes) n.node.stop();
    await server.stop();
  }
  // Steady rounds only (the first carries hellos and mask uploads).
  const steady = summaries.filter((s) => s.round > 5 && s.round <= rounds);
  const sum = (k: 'bytesIn' | 'bytesOut') => steady.reduce((x, s) => x + s[k], 0) / steady.length;
  return { a: gen.a, b: gen.b, bytesIn: sum('bytesIn'), bytesOut: sum('bytesOut'), dtypes };
}

t.test('a federation on f16s sends about half the tensor bytes of f32 and still learns', async (t) => {
  const f32 = await federate('f32', 120);
  const f16s = await federate('f16s', 120);
  t.same([...f16s.dtypes], ['f16s'], 'every node was served f16s');
  for (const r of [f32, f16s]) t.ok(Math.abs(r.a - TARGET_A) < 0.08 && Math.abs(r.b - TARGET_B) < 0.08, `learned (a=${r.a.toFixed(3)}, b=${r.b.toFixed(3)})`);
  // 8x8 tensors: msgpack headers and keys are a visible share, so the ratio is above 0.5.
  const ratioIn = f16s.bytesIn / f32.bytesIn;
  const ratioOut = f16s.bytesOut / f32.bytesOut;
  t.ok(ratioIn < 0.75 && ratioOut < 0.75, `bytes per round f16s/f32: in ${ratioIn.toFixed(2)}, out ${ratioOut.toFixed(2)}`);
});
