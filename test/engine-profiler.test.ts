/**
 * The per-dispatch profiler on known dispatches: rows and call counts, declared costs, event order,
 * query-chunk reuse, the CPU fallback, the Chrome trace structure, and detaching.
 * No timing thresholds: speed is measured by tools/profile.ts and tools/bench.ts, never asserted.
 */
import t, { type Test } from 'tap';
import * as E from '../src/engine/index.js';
import type { Engine } from '../src/engine/engine.js';
import { CHUNK_DISPATCHES, Profiler, type ProfileReport } from '../src/engine/profiler.js';
import { formatTable, toChromeTrace } from '../src/engine/profile-render.js';
import { Params } from '../src/engine/internal.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

const eng = await gpu();
// These tests count submissions: only explicit flushes and readbacks may submit.
eng.recorder.flushEvery = 0;

// A kernel family of our own, so that labels and costs are known exactly.
const FILE = 'profiler-test.wgsl';
eng.kernels.register(
  FILE,
  /* wgsl */ `
struct P { n: u32, iters: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;

// Heavy: iters multiply-adds per element (long enough to span many timestamp quanta).
@compute @workgroup_size(64)
fn spin(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= p.n) { return; }
  var v = a[g.x];
  for (var i = 0u; i < p.iters; i++) { v = v * 0.999 + 0.001; }
  a[g.x] = v;
}

// Light: one add per element.
@compute @workgroup_size(64)
fn touch(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= p.n) { return; }
  a[g.x] = a[g.x] + 1.0;
}
`,
);

const N = 4096;
const SPIN_ITERS = 4000;
const SPIN_COST = { flops: 2 * N * SPIN_ITERS, bytes: 8 * N };
const TOUCH_COST = { flops: N, bytes: 8 * N };

function spin(buf: E.Tensor): void {
  eng.launch({
    file: FILE,
    entry: 'spin',
    params: new Params().u32(N, SPIN_ITERS).data(),
    buffers: [buf.binding()],
    workgroups: [N / 64],
    cost: SPIN_COST,
  });
}

function touch(buf: E.Tensor): void {
  eng.launch({
    file: FILE,
    entry: 'touch',
    params: new Params().u32(N, 0).data(),
    buffers: [buf.binding()],
    workgroups: [N / 64],
    cost: TOUCH_COST,
  });
}

const buf = E.keep(E.zeros([N]));
const xs = randomArray(1000, 5);
const x = E.keep(E.tensor(xs, [1000]));
// Warm-up: build the pipelines outside the profiles.
spin(buf);
touch(buf);
E.relu(x).dispose();
await eng.sync();

/** Checks invariants every report must satisfy. */
function checkReport(t: Test, r: ProfileReport): void {
  t.equal(r.events.length, r.dispatches, 'one event per dispatch');
  t.same(r.events.map((e) => e.seq), r.events.map((_, i) => i), 'events in dispatch order');
  for (const e of r.events) {
    if (!(Number.isFinite(e.durationMs) && e.durationMs >= 0 && Number.isFinite(e.startMs) && e.startMs >= 0)) {
      t.fail(`bad event times ${JSON.stringify(e)}`);
      return;
    }
  }
  const calls = r.rows.reduce((s, row) => s + row.calls, 0);
  t.equal(calls, r.dispatches, 'rows cover every dispatch');
  t.ok(Math.abs(r.rows.reduce((s, row) => s + row.totalMs, 0) - r.kernelMs) < 1e-9, 'kernelMs is the sum of rows');
  if (r.kernelMs > 0) t.ok(Math.abs(r.rows.reduce((s, row) => s + row.share, 0) - 1) < 1e-9, 'shares sum to 1');
  for (let i = 1; i < r.rows.length; i++) {
    if (r.rows[i]!.totalMs > r.rows[i - 1]!.totalMs) t.fail('rows not sorted by total time');
  }
  for (const row of r.rows) {
    const evs = r.events.filter((e) => e.kernel === row.kernel);
    t.equal(row.calls, evs.length, `${row.kernel}: calls`);
    t.ok(Math.abs(row.meanMs * row.calls - row.totalMs) < 1e-9, `${row.kernel}: mean`);
    if (row.totalMs > 0) {
      t.ok(Math.abs(row.gflops - row.flops / (row.totalMs * 1e6)) < 1e-9, `${row.kernel}: GFLOP/s`);
      t.ok(Math.abs(row.gbps - row.bytes / (row.totalMs * 1e6)) < 1e-9, `${row.kernel}: GB/s`);
    }
  }
}

function row(r: ProfileReport, kernel: string) {
  const found = r.rows.find((x) => x.kernel === kernel);
  if (!found) throw new Error(`no row for ${kernel}; rows: ${r.rows.map((x) => x.kernel).join(', ')}`);
  return found;
}

t.test('GPU timestamps: rows, calls, costs and times of known dispatches', async (t) => {
  t.ok(eng.gpu.features.has('timestamp-query'), 'this adapter offers timestamp-query (lavapipe does)');
  t.equal(eng.recorder.timer, null, 'no timer before start');
  const p = Profiler.start(eng);
  t.equal(p.timing, 'gpu');
  t.equal(eng.recorder.timer, p, 'attached as the recorder timer');
  const y = E.relu(x); // a real op, with its own declared cost
  for (let i = 0; i < 3; i++) spin(buf);
  for (let i = 0; i < 5; i++) touch(buf);
  const y2 = E.relu(x);
  const [ya, yb] = [await y.read(), await y2.read()]; // read() submits mid-profile: two submissions
  touch(buf);
  const r = await p.stop();
  t.equal(eng.recorder.timer, null, 'detached after stop');

  const ref = Array.from(xs, (v) => Math.max(v, 0));
  t.ok(closeness(ya, ref).ok && closeness(yb, ref).ok, 'profiled dispatches still compute the right values');

  checkReport(t, r);
  t.equal(r.timing, 'gpu');
  t.equal(r.dispatches, 11);
  t.ok(r.submissions >= 2, `${r.submissions} submissions`);
  t.same(new Set(r.rows.map((x) => x.kernel)), new Set([`${FILE}:spin`, `${FILE}:touch`, 'elementwise.wgsl:unary_forward']));
  const s = row(r, `${FILE}:spin`);
  const tc = row(r, `${FILE}:touch`);
  const relu = row(r, 'elementwise.wgsl:unary_forward');
  t.same([s.calls, tc.calls, relu.calls], [3, 6, 2]);
  t.same([s.flops, s.bytes], [3 * SPIN_COST.flops, 3 * SPIN_COST.bytes], 'spin costs summed');
  t.same([tc.flops, tc.bytes], [6 * TOUCH_COST.flops, 6 * TOUCH_COST.bytes], 'touch costs summed');
  t.same([relu.flops, relu.bytes], [2 * 1000, 2 * 8000], 'relu cost as declared by elementwise.ts');
  t.same(
    r.events.map((e) => e.kernel.split(':')[1]),
    ['unary_forward', 'spin', 'spin', 'spin', 'touch', 'touch', 'touch', 'touch', 'touch', 'unary_forward', 'touch'],
    'events follow the dispatch order',
  );
  t.same(r.events.slice(1, 4).map((e) => [e.flops, e.bytes]), Array(3).fill([SPIN_COST.flops, SPIN_COST.bytes]));
  t.ok(s.totalMs > 0, `spin took ${s.totalMs} ms`);
  t.ok(r.kernelMs > 0 && r.wallMs > 0, 'times positive');
  t.ok(Number.isInteger(Math.log2(r.resolutionNs)), `resolution ${r.resolutionNs} ns is a power of two`);
  t.equal(/quantized/.test(r.note), r.resolutionNs >= 1000, 'the note mentions quantization exactly when timestamps are coarse');

  const table = formatTable(r);
  for (const k of [`${FILE}:spin`, `${FILE}:touch`, 'elementwise.wgsl:unary_forward', 'total', 'GFLOP/s', 'note:']) {
    t.ok(table.includes(k), `table mentions ${k}`);
  }
  [y, y2].forEach((v) => v.dispose());
});

t.test('query chunks are reused: no new GPU objects in a steady-state loop', async (t) => {
  const p = Profiler.start(eng);
  const perRound = CHUNK_DISPATCHES + 50; // needs two chunks per submission
  const created: number[] = [];
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < perRound; i++) touch(buf);
    await eng.sync();
    created.push(p.chunksCreated);
  }
  const r = await p.stop();
  t.same(created, [2, 2, 2]);
  checkReport(t, r);
  t.equal(r.dispatches, 3 * perRound);
  t.equal(row(r, `${FILE}:touch`).calls, 3 * perRound);
  t.equal(r.submissions, 3);
  t.same([0, 1, 2].map((k) => r.events.filter((e) => e.submission === k).length), [perRound, perRound, perRound]);
});

t.test('CPU fallback: submission wall time split over its dispatches, and said so', async (t) => {
  const p = Profiler.start(eng, { timing: 'cpu' });
  t.equal(p.timing, 'cpu');
  for (let i = 0; i < 2; i++) spin(buf);
  for (let i = 0; i < 4; i++) touch(buf);
  await eng.sync();
  touch(buf);
  const r = await p.stop();
  t.equal(p.chunksCreated, 0, 'no query sets in CPU mode');
  checkReport(t, r);
  t.equal(r.timing, 'cpu');
  t.match(r.note, /CPU-side/);
  t.equal(r.submissions, 2);
  t.same([row(r, `${FILE}:spin`).calls, row(r, `${FILE}:touch`).calls], [2, 5]);
  t.equal(row(r, `${FILE}:spin`).flops, 2 * SPIN_COST.flops);
  t.ok(r.kernelMs > 0, 'times positive');
  const first = r.events.filter((e) => e.submission === 0).map((e) => e.durationMs);
  t.equal(first.length, 6);
  t.ok(first.every((d) => Math.abs(d - first[0]!) < 1e-9), 'equal split within a submission');
  t.match(formatTable(r), /cpu timing/);
});

t.test('Chrome trace: structurally valid, one complete event per dispatch', async (t) => {
  const p = Profiler.start(eng);
  spin(buf);
  touch(buf);
  await eng.sync();
  touch(buf);
  const r = await p.stop();
  const trace = JSON.parse(JSON.stringify(toChromeTrace(r))) as { traceEvents: Record<string, unknown>[]; displayTimeUnit: string };
  t.ok(Array.isArray(trace.traceEvents));
  t.equal(trace.displayTimeUnit, 'ms');
  for (const e of trace.traceEvents) {
    const ok =
      typeof e.name === 'string' &&
      (e.ph === 'X' || e.ph === 'M') &&
      Number.isInteger(e.pid) &&
      Number.isInteger(e.tid) &&
      (e.ph === 'M' || (typeof e.ts === 'number' && typeof e.dur === 'number' && (e.ts as number) >= 0 && (e.dur as number) >= 0));
    if (!ok) t.fail(`malformed trace event ${JSON.stringify(e)}`);
  }
  const kernels = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 1);
  t.equal(kernels.length, r.events.length);
  kernels.forEach((e, i) => {
    const ev = r.events[i]!;
    t.equal(e.name, ev.kernel);
    t.same(e.args, { flops: ev.flops, bytes: ev.bytes, seq: ev.seq, submission: ev.submission });
    t.ok(Math.abs((e.ts as number) - ev.startMs * 1000) < 0.01 && Math.abs((e.dur as number) - ev.durationMs * 1000) < 0.01, 'microseconds');
  });
  const subs = trace.traceEvents.filter((e) => e.ph === 'X' && e.tid === 2);
  t.equal(subs.length, r.submissions, 'one span per submission');
  t.ok(trace.traceEvents.some((e) => e.ph === 'M' && e.name === 'thread_name'), 'tracks are named');
});

t.test('convolution modes get their own rows (launch tags)', async (t) => {
  const xin = E.parameter(E.randn([1, 3, 9, 11], 7));
  const w = E.parameter(E.randn([5, 3, 3, 3], 8));
  await eng.sync();
  const p = Profiler.start(eng);
  E.tidy(() => E.backward(E.sum(E.conv2d(xin, w, null, { padding: 1 }))));
  const r = await p.stop();
  const convRows = r.rows.filter((row) => row.kernel.startsWith('conv2d')).map((row) => row.kernel);
  for (const mode of ['fwd', 'dgrad', 'wgrad']) {
    t.ok(convRows.some((k) => k.endsWith(`[${mode}]`)), `a row for ${mode}: ${convRows.join(', ')}`);
  }
  xin.dispose();
  w.dispose();
});

t.test('attach/detach rules', async (t) => {
  t.equal(eng.recorder.timer, null);
  const p = Profiler.start(eng);
  t.throws(() => Profiler.start(eng), /already attached/);
  const r = await p.stop();
  t.equal(r.dispatches, 0);
  t.same(r.rows, []);
  t.equal(eng.recorder.timer, null);
  await t.rejects(p.stop(), /twice/);
  // Work after stop is not seen by the finished profiler and runs unprofiled.
  const before = eng.recorder.dispatches;
  touch(buf);
  await eng.sync();
  t.equal(eng.recorder.dispatches, before + 1);
  t.equal(eng.recorder.timer, null);
  t.equal(r.events.length, 0);
  t.match(formatTable(r), /0 dispatches/);
});

t.test("without 'timestamp-query': CPU timing, and 'gpu' is refused", async (t) => {
  const fake = {
    gpu: { features: new Set<string>(), adapterName: 'no-timestamps adapter' },
    device: eng.device,
    recorder: { timer: null },
    flush() {},
  } as unknown as Engine;
  t.throws(() => Profiler.start(fake, { timing: 'gpu' }), /timestamp-query/);
  const p = Profiler.start(fake);
  t.equal(p.timing, 'cpu');
  t.equal(fake.recorder.timer, p);
});
