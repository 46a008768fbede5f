import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as E from '../src/engine/index.js';
import { axpby } from '../src/engine/internal.js';
import { defaultPollInterval, waitGently } from '../src/engine/polling.js';
import { sizeClass } from '../src/engine/pool.js';
import { defineInclude, expandIncludes, opIdConstants } from '../src/engine/wgsl-include.js';
import { BINARY, UNARY } from '../src/engine/primitives.js';
import { gpu } from './helpers/engine.js';

const engine = await gpu();

t.test('device exposes adapter and granted features', async (t) => {
  t.ok(engine.gpu.adapterName.length > 0);
  for (const f of engine.gpu.features) t.ok(['timestamp-query', 'shader-f16', 'subgroups'].includes(f), f);
  t.ok(engine.gpu.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
});

t.test('tensor round trip, views share storage, dispose', async (t) => {
  const x = E.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  t.same([...(await x.read())], [1, 2, 3, 4, 5, 6]);
  const v = E.reshape(x, [3, -1]);
  t.same(v.shape, [3, 2]);
  t.equal(v.buffer, x.buffer, 'reshape is a view');
  x.dispose();
  t.same([...(await v.read())], [1, 2, 3, 4, 5, 6], 'view keeps storage alive');
  v.dispose();
  await t.rejects(v.read(), E.DisposedError);
  t.throws(() => E.tensor([1, 2, 3], [2, 2]), E.ShapeError);
  t.throws(() => E.reshape(E.zeros([2, 3]), [4, -1]), /cannot view/);
  t.equal(await E.tensor([42], [1]).item(), 42);
});

t.test('the recorder submits every flushEvery dispatches, and results stay exact', async (t) => {
  const rec = engine.recorder;
  await engine.sync();
  const saved = rec.flushEvery;
  rec.flushEvery = 7;
  const submits = rec.submits;
  // 23 chained adds: 1 + 23 = 24 everywhere; each reads the previous one's output, so a wrong
  // order across submissions (or a lost one) changes the value.
  let x = E.ones([1000]);
  for (let i = 0; i < 23; i++) {
    const y = E.add(x, E.ones([1000]));
    x.dispose();
    x = y;
  }
  const dispatched = rec.dispatches;
  t.ok(rec.submits - submits >= 3, `${rec.submits - submits} submissions before any readback`);
  const v = await x.read();
  t.ok(v.every((e) => e === 24), 'value after 23 chained adds across submissions');
  rec.flushEvery = 0;
  const before = rec.submits;
  for (let i = 0; i < 20; i++) E.ones([10]).dispose();
  t.equal(rec.submits, before, 'flushEvery 0: nothing submitted until needed');
  t.ok(rec.dispatches > dispatched);
  rec.flushEvery = saved;
  x.dispose();
  await engine.sync();
});

t.test('waiting for a CPU adapter polls on a timer instead of spinning, and restores setImmediate', async (t) => {
  t.equal(engine.gpu.software, true, 'lavapipe is a software adapter');
  t.equal(engine.pollIntervalMs, Number(process.env.ASYNDGAN_POLL_MS || 1), 'default 1 ms on CPU adapters');
  const real = globalThis.setImmediate;
  let seen: typeof setImmediate | null = null;
  const inner = await waitGently(1, async () => {
    seen = globalThis.setImmediate;
    // Overlapping waits: the replacement stays until the last one ends.
    await Promise.all([waitGently(1, () => new Promise((r) => setTimeout(r, 5))), engine.sync()]);
    return globalThis.setImmediate;
  });
  t.not(seen, real, 'replaced during the wait');
  t.equal(inner, seen, 'still replaced after a nested wait ended');
  t.equal(globalThis.setImmediate, real, 'restored after the wait');
  await t.rejects(waitGently(1, async () => { throw new Error('boom'); }), /boom/);
  t.equal(globalThis.setImmediate, real, 'restored after a failed wait');
  const order: string[] = [];
  await waitGently(1, () => new Promise<void>((r) => setImmediate(() => { order.push('callback'); r(); })));
  t.same(order, ['callback'], 'setImmediate callbacks still run during a wait');
  const y = E.relu(E.tensor([-1, 2]));
  t.same([...(await y.read())], [0, 2], 'reads complete with timer polling');
  t.equal(await waitGently(0, async () => globalThis.setImmediate), real, 'interval 0: untouched');
  t.throws(() => defaultPollInterval(true, -1), /poll interval/);
  t.equal(defaultPollInterval(false, undefined), Number(process.env.ASYNDGAN_POLL_MS || 0), 'GPUs: busy polling unless the env says otherwise');
  y.dispose();
});

t.test('tidy releases intermediates, keeps results', async (t) => {
  const before = engine.pool.stats.bytesInUse;
  const kept = E.tidy(() => {
    const a = E.ones([100]);
    const b = E.scale(a, 3);
    return E.add(a, b);
  });
  t.equal(engine.pool.stats.bytesInUse - before, sizeClass(400), 'only the result (one 400-byte tensor) survives');
  t.same((await kept.read()).slice(0, 3), new Float32Array([4, 4, 4]));
  kept.dispose();
  t.equal(engine.pool.stats.bytesInUse, before);
  t.throws(() => E.tidy(() => { E.ones([3]); throw new Error('boom'); }), /boom/);
  t.equal(engine.pool.stats.bytesInUse, before, 'tensors are released when the function throws');
});

t.test('backward with an external gradient, accumulation and noGrad', async (t) => {
  const w = E.parameter(E.tensor([1, 2, 3], [3]));
  const x = E.tensor([4, 5, 6], [3]);
  E.tidy(() => {
    const y = E.mul(w, x); // dy/dw = x
    E.backward(y, E.tensor([1, 10, 100], [3]));
  });
  t.same([...(await w.grad!.read())], [4, 50, 600]);
  E.tidy(() => E.backward(E.sum(E.mul(w, x))));
  t.same([...(await w.grad!.read())], [8, 55, 606], 'gradients accumulate');
  const y = E.noGrad(() => E.mul(w, x));
  t.equal(y.requiresGrad, false);
  t.equal(y.node, null);
  t.throws(() => E.backward(E.mul(w, x)), /pass a gradient/);
  t.throws(() => E.backward(E.sum(E.mul(w, x)), E.zeros([2])), /does not match/);
  // Same number of elements, other shape: a transposed gradient must not be taken silently.
  const m = E.parameter(E.tensor([1, 2, 3, 4, 5, 6], [2, 3]));
  t.throws(() => E.tidy(() => E.backward(E.mul(m, m), E.zeros([3, 2]))), /gradient shape \[3,2\] does not match output shape \[2,3\]/);
  t.throws(() => E.tidy(() => E.backward(E.mul(m, m), E.zeros([6]))), /does not match/, 'nor a flat one');
});

t.test('backward releases saved values', async (t) => {
  const w = E.parameter(E.tensor([1, 2, 3], [3]));
  const x = E.tensor([4, 5, 6], [3]);
  // Warm up so the grad buffer exists.
  E.tidy(() => E.backward(E.sum(E.mul(E.tanh(w), x))));
  const before = engine.pool.stats.bytesInUse;
  E.tidy(() => E.backward(E.sum(E.mul(E.tanh(w), x))));
  t.equal(engine.pool.stats.bytesInUse, before, 'no memory held after backward in a scope');
  const loss = E.tidy(() => E.sum(E.mul(E.tanh(w), x)));
  t.ok(engine.pool.stats.bytesInUse > before + sizeClass(4), 'the graph holds saved values past the scope');
  E.releaseGraph(loss);
  loss.dispose();
  t.equal(engine.pool.stats.bytesInUse, before, 'releaseGraph frees saved values');
});

t.test('steady-state steps allocate no GPU buffer and create no bind group', async (t) => {
  const w = E.parameter(E.randn([7, 33], 1));
  const target = E.randn([7, 33], 2);
  const step = () =>
    E.tidy(() => {
      const loss = E.mean(E.square(E.sub(E.tanh(w), target)));
      E.backward(loss);
      E.noGrad(() => axpby(w, 1, w.grad!, -0.5));
      w.grad!.dispose(); // zero_grad(set_to_none=True), PyTorch's default
      w.grad = null;
      return loss;
    });
  const first = step();
  const l0 = await first.item();
  first.dispose();
  const created = engine.pool.stats.created;
  const groups = { ...engine.recorder.bindGroupStats };
  let last = 0;
  for (let i = 0; i < 5; i++) {
    const l = step();
    last = await l.item();
    l.dispose();
    // The first repeat may still meet buffers in a new order; from then on everything repeats.
    if (i === 0) Object.assign(groups, engine.recorder.bindGroupStats);
  }
  t.equal(engine.pool.stats.created, created, 'no buffer created after the first step');
  const stats = engine.recorder.bindGroupStats;
  t.equal(stats.created, groups.created, 'the same pipelines on the same pooled buffers reuse their bind groups');
  t.ok(stats.reused > groups.reused, `${stats.reused - groups.reused} bind groups reused`);
  t.ok(last < l0, `loss decreased ${l0} -> ${last}`);
});

t.test('kernel compile errors name the shader file', async (t) => {
  engine.kernels.register('broken-test.wgsl', '@compute @workgroup_size(1) fn main() { let x: u32 = 1.5; }');
  const out = E.zeros([4]);
  engine.launch({ file: 'broken-test.wgsl', buffers: [], workgroups: [1] });
  const err = await engine.sync().then(() => null, (e: unknown) => e);
  t.ok(err instanceof E.KernelError, 'a KernelError is raised');
  t.match((err as Error).message, /broken-test\.wgsl/);
  t.same((err as E.KernelError).shaderFiles.includes('broken-test.wgsl'), true);
  out.dispose();
  t.throws(() => engine.launch({ file: 'no-such-kernel.wgsl', buffers: [], workgroups: [1] }), /not found: shaders\/no-such-kernel\.wgsl/);
});

t.test('WGSL includes: expanded once, compiler messages point at the line a person edits', async (t) => {
  // An error after the include is reported at its own line (5), not at its line in the expansion.
  engine.kernels.register('include-test.wgsl', [
    'override TM: u32 = 4u;',
    'var<private> acc: array<vec4f, 16>;',
    '// #include "pick_acc.wgsl"',
    '// #include "pick_acc.wgsl"',
    '@compute @workgroup_size(1) fn main() { let x: u32 = pick(0u).x; }',
  ].join('\n'));
  engine.launch({ file: 'include-test.wgsl', buffers: [], workgroups: [1] });
  const err = (await engine.sync().then(() => null, (e: unknown) => e)) as Error | null;
  t.ok(err instanceof E.KernelError, 'a KernelError is raised');
  t.match(err?.message ?? '', /include-test\.wgsl failed to compile:\n {2}line 5:/, 'the error line of the shader itself');
  t.notMatch(err?.message ?? '', /redefinition|already declared/, 'the second include of the same file is skipped');
  // An error inside the included file names that file (here: `acc` is not declared).
  engine.kernels.register('include-test-2.wgsl', '// #include "pick_acc.wgsl"\n@compute @workgroup_size(1) fn main() { _ = pick(0u); }');
  engine.launch({ file: 'include-test-2.wgsl', buffers: [], workgroups: [1] });
  const err2 = (await engine.sync().then(() => null, (e: unknown) => e)) as Error | null;
  t.match(err2?.message ?? '', /include\/pick_acc\.wgsl line \d+:/, 'errors in an included file name it');
  const dir = mkdtempSync(join(tmpdir(), 'wgsl-include-'));
  writeFileSync(join(dir, 'a.wgsl'), '// #include "b.wgsl"\n');
  writeFileSync(join(dir, 'b.wgsl'), '// #include "a.wgsl"\n');
  t.throws(() => expandIncludes('k.wgsl', '// #include "a.wgsl"', dir), /include cycle k\.wgsl -> a\.wgsl -> b\.wgsl -> a\.wgsl/);
  t.throws(() => expandIncludes('k.wgsl', 'x\n// #include "missing.wgsl"', dir), /k\.wgsl:2: included file not found: shaders\/include\/missing\.wgsl/);
  const ok = expandIncludes('k.wgsl', 'one\n// #include "c.wgsl"\nthree', (writeFileSync(join(dir, 'c.wgsl'), 'inc1\ninc2'), dir));
  t.same(ok.code.split('\n'), ['one', 'inc1', 'inc2', 'three']);
  t.same(ok.origins[3], { file: 'k.wgsl', line: 3 }, 'origin of a line after the include');
});

t.test('op ids: the WGSL names every op of the TS tables, through the generated include', async (t) => {
  t.equal(opIdConstants('UNARY', { relu: 0, leakyRelu: 1 }), 'const UNARY_RELU: u32 = 0u;\nconst UNARY_LEAKY_RELU: u32 = 1u;');
  const engine = await gpu();
  const code = engine.kernels.source('elementwise.wgsl').code;
  t.match(code, /const BINARY_DIV: u32 = 3u;/, 'the generated constants are included');
  for (const fn of ['unary', 'unary_deriv']) {
    const body = code.slice(code.indexOf(`fn ${fn}(`), code.indexOf('\n}\n', code.indexOf(`fn ${fn}(`)));
    for (const op of Object.keys(UNARY)) {
      const name = `UNARY_${op.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`;
      t.match(body, new RegExp(`case ${name}\\b`), `${fn} has a case for ${op}`);
    }
    t.notMatch(body, /case \d+u/, `${fn} has no numbered case left`);
  }
  const binary = code.slice(code.indexOf('fn binary('), code.indexOf('\n}\n', code.indexOf('fn binary(')));
  for (const op of Object.keys(BINARY)) t.match(binary, new RegExp(`case BINARY_${op.toUpperCase()}\\b`), `binary has a case for ${op}`);
  t.notMatch(binary, /max\(|min\(/, 'no case that no TS entry can reach');
  t.throws(() => defineInclude('elementwise_ops.wgsl', 'const X: u32 = 1u;'), /defined twice/, 'a generated include cannot be silently replaced');
});

t.test('no adapter: clear message saying what to install', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-'));
  const script = join(dir, 'probe.mts');
  writeFileSync(script, `import { init } from ${JSON.stringify(new URL('../src/engine/index.ts', import.meta.url).pathname)};
try { await init(); console.log('ADAPTER'); } catch (e) { console.log(String(e)); }`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.match(r.stdout, /NoAdapterError/);
  t.match(r.stdout, /mesa-vulkan-drivers/);
  t.match(r.stdout, /bookworm-backports/);
});
