/** Small pure parts of the network layer: sampling, weighting, backoff, tokens, checkpoints, augmentation, registry. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { applyAugmentation, randomFlips } from '../src/net/augment.js';
import { backoffDelay } from '../src/net/backoff.js';
import { FileCheckpointStore, MemoryCheckpointStore } from '../src/net/checkpoint.js';
import { NodeRegistry } from '../src/net/registry.js';
import { Rng, sampleRound } from '../src/net/sampling.js';
import { combineWeights } from '../src/net/aggregate.js';
import { TokenTable } from '../src/net/tokens.js';

t.test('Rng is deterministic and resumable', async (t) => {
  const a = new Rng(42);
  const seq = Array.from({ length: 5 }, () => a.next());
  t.ok(seq.every((x) => x >= 0 && x < 1));
  const b = new Rng(42);
  t.same(Array.from({ length: 5 }, () => b.next()), seq);
  const c = new Rng(7);
  c.next();
  const st = c.state;
  const after = [c.next(), c.next()];
  const d = Rng.fromState(st);
  t.same([d.next(), d.next()], after, 'state restores the sequence');
});

t.test('balance sampling: one batch per node, distinct keys', async (t) => {
  const rng = new Rng(1);
  const cands = [
    { nodeId: 'a', keys: Array.from({ length: 10 }, (_, i) => `a${i}`) },
    { nodeId: 'b', keys: ['b0', 'b1'] },
    { nodeId: 'c', keys: [] },
  ];
  for (let it = 0; it < 50; it++) {
    const p = sampleRound('balance', cands, 4, rng);
    t.same([...p.keys()], ['a', 'b'], 'empty nodes skipped');
    t.equal(p.get('a')!.length, 4);
    t.equal(new Set(p.get('a')).size, 4, 'distinct');
    t.same([...p.get('b')!].sort(), ['b0', 'b1'], 'a small node gives all it has');
  }
});

t.test('uniform sampling: batchSize draws from the union, shares proportional to mask counts', async (t) => {
  const rng = new Rng(2);
  const cands = [
    { nodeId: 'a', keys: Array.from({ length: 300 }, (_, i) => `a${i}`) },
    { nodeId: 'b', keys: Array.from({ length: 100 }, (_, i) => `b${i}`) },
  ];
  let na = 0;
  let nb = 0;
  for (let it = 0; it < 400; it++) {
    const p = sampleRound('uniform', cands, 8, rng);
    const all = [...(p.get('a') ?? []), ...(p.get('b') ?? [])];
    t.equal(all.length, 8);
    t.equal(new Set(all).size, 8);
    t.ok((p.get('a') ?? []).every((k) => k.startsWith('a')) && (p.get('b') ?? []).every((k) => k.startsWith('b')));
    na += p.get('a')?.length ?? 0;
    nb += p.get('b')?.length ?? 0;
  }
  t.ok(Math.abs(na / (na + nb) - 0.75) < 0.03, `share of a ${(na / (na + nb)).toFixed(3)} ~ 0.75`);
  t.equal(sampleRound('uniform', [{ nodeId: 'x', keys: ['x0', 'x1'] }], 5, rng).get('x')!.length, 2, 'never more than there is');
});

t.test('combineWeights', async (t) => {
  const inputs = [{ sampleCount: 10, batchCount: 1 }, { sampleCount: 30, batchCount: 3 }];
  t.same(combineWeights(inputs, 'samples', 'balance'), [0.25, 0.75]);
  t.same(combineWeights(inputs, 'samples', 'uniform'), [0.25, 0.75]);
  t.same(combineWeights([{ sampleCount: 10, batchCount: 3 }, { sampleCount: 30, batchCount: 1 }], 'samples', 'uniform'), [0.75, 0.25], 'uniform uses batch shares');
  t.same(combineWeights(inputs, 'equal', 'balance'), [0.5, 0.5]);
  t.same(combineWeights([], 'samples', 'balance'), []);
});

t.test('backoff: exponential, capped, jittered', async (t) => {
  const opts = { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  t.same([0, 1, 2, 3, 4, 10, 1000].map((a) => backoffDelay(a, opts, () => 0)), [100, 200, 400, 800, 1000, 1000, 1000], 'no jitter draw: pure exponential with cap');
  t.equal(backoffDelay(3, opts, () => 0.999999), 400, 'full jitter draw halves it');
  const rng = new Rng(5);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(i % 8, opts, () => rng.next());
    const base = Math.min(1000, 100 * 2 ** (i % 8));
    t.ok(d >= base / 2 && d <= base, 'within [base/2, base]');
  }
});

t.test('TokenTable', async (t) => {
  const tt = TokenTable.parse(JSON.stringify({ nodes: { a: 'secret-a', b: 'secret-b' } }));
  t.ok(tt.verify('a', 'secret-a'));
  t.notOk(tt.verify('a', 'secret-b'));
  t.notOk(tt.verify('a', 'secret-a '));
  t.notOk(tt.verify('c', 'secret-a'));
  t.notOk(tt.verify('a', ''));
  t.same(tt.ids().sort(), ['a', 'b']);
  t.throws(() => TokenTable.parse('{"a":"b"}'), /nodes/);
  t.throws(() => new TokenTable({ a: '' }), /non-empty/);
  const dir = t.testdir({ 'tokens.json': JSON.stringify({ nodes: { h1: 'tok' } }) });
  t.ok((await TokenTable.load(join(dir, 'tokens.json'))).verify('h1', 'tok'));
});

t.test('FileCheckpointStore: atomic replace, no temp files, missing -> undefined', async (t) => {
  const dir = t.testdir({});
  const store = new FileCheckpointStore(join(dir, 'sub'), 'c.bin');
  t.equal(await store.load(), undefined);
  await store.save(new Uint8Array([1, 2, 3]));
  await store.save(new Uint8Array([4, 5]));
  t.same([...(await store.load())!], [4, 5]);
  t.same(readdirSync(join(dir, 'sub')), ['c.bin']);
  // A crash between writing the temp file and renaming leaves the old checkpoint readable.
  writeFileSync(join(dir, 'sub', '.c.bin.999999999.1.tmp'), 'partial');
  t.same([...readFileSync(store.path).subarray(48)], [4, 5], 'the file: 48-byte header (magic + SHA-256), then the payload');
  t.same([...(await new FileCheckpointStore(join(dir, 'sub'), 'c.bin').load())!], [4, 5], 'a restarted reader gets the old checkpoint');
  t.same(readdirSync(join(dir, 'sub')), ['c.bin'], 'and removed the leftover temp file');
  const mem = new MemoryCheckpointStore();
  const buf = new Uint8Array([9]);
  await mem.save(buf);
  buf[0] = 0;
  t.same([...(await mem.load())!], [9], 'memory store copies');
});

t.test('augmentation flips both ways and is its own inverse', async (t) => {
  const x = Float32Array.from({ length: 2 * 2 * 3 }, (_, i) => i); // [1, 2, 2, 3]
  const h = applyAugmentation(x, [1, 2, 2, 3], [{ flipH: true }]);
  t.same([...h.subarray(0, 3)], [2, 1, 0]);
  const v = applyAugmentation(x, [1, 2, 2, 3], [{ flipV: true }]);
  t.same([...v.subarray(0, 6)], [3, 4, 5, 0, 1, 2]);
  const both = applyAugmentation(applyAugmentation(x, [1, 2, 2, 3], [{ flipH: true, flipV: true }]), [1, 2, 2, 3], [{ flipH: true, flipV: true }]);
  t.same([...both], [...x]);
  t.same([...applyAugmentation(x, [1, 2, 2, 3], undefined)], [...x]);
  const rng = new Rng(3);
  const draws = Array.from({ length: 200 }, () => randomFlips({ horizontal: true, vertical: true })(() => rng.next()));
  t.ok(draws.some((d) => d.flipH) && draws.some((d) => !d.flipH) && draws.some((d) => d.flipV));
});

t.test('NodeRegistry snapshot/restore round trip', async (t) => {
  const r = new NodeRegistry([1, 2, 2]);
  r.addMasks('a', ['k0', 'k1'], new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]), 10);
  r.addMasks('a', ['k1'], new Float32Array([9, 9, 9, 9]), 12);
  t.same(r.keys('a'), ['k0', 'k1']);
  const r2 = new NodeRegistry([1, 2, 2]);
  r2.restore(r.snapshot());
  t.same([...r2.get('a')!.masks.get('k1')!], [9, 9, 9, 9], 'replaced mask kept');
  t.equal(r2.get('a')!.sampleCount, 12);
  t.throws(() => new NodeRegistry([1, 3, 3]).restore(r.snapshot()), /shape/);
});

t.test("aggregation 'coordinate-median' needs a generator backend with per-node gradients", async (t) => {
  const { Coordinator } = await import('../src/net/coordinator.js');
  const { LinearGenerator } = await import('./helpers/net-backends.js');
  const opts = { generator: new LinearGenerator(), tokens: { a: 'token-a-0123456789abcdef' }, session: { maskChannels: 1, imageChannels: 1, height: 2, width: 2, batchSize: 1 } };
  t.throws(() => new Coordinator({ ...opts, replyBounds: { aggregation: 'coordinate-median' } }), /aggregation 'coordinate-median' needs a generator backend with applyVotes/);
  t.doesNotThrow(() => new Coordinator({ ...opts, replyBounds: { aggregation: 'clipped-median' } }), 'the default rule needs no votes');
});
