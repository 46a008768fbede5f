import t from 'tap';
import { formatDuration, formatRate, Progress, type ProgressOptions } from '../src/cli/progress.js';

/** A fake stream and clock: every write is recorded, time moves only when the test says so. */
function harness(opts: ProgressOptions & { isTTY?: boolean; columns?: number } = {}) {
  const writes: string[] = [];
  const stream = { isTTY: opts.isTTY ?? false, columns: opts.columns, write: (s: string) => writes.push(s) };
  const clock = { now: 0 };
  const bar = new Progress({ ...opts, stream, now: () => clock.now });
  return { bar, writes, clock, text: () => writes.join('') };
}

t.test('non-TTY: one plain line per 10%, then a final line with the total time', async (t) => {
  const { bar, writes, clock } = harness({ total: 100, label: 'train' });
  for (let i = 0; i < 100; i++) {
    clock.now += 100; // 10 steps per second
    bar.tick(1, { loss: 1 / (i + 1) });
  }
  bar.finish();
  t.equal(writes.length, 10, '9 progress lines (10%..90%) + 1 final line');
  t.ok(writes.every((w) => w.endsWith('\n') && !w.includes('\r') && !w.includes('\x1b')), 'plain lines only');
  t.match(writes[0]!, /^train +10% 10\/100 \[1\.0s, eta 9\.0s, 10 it\/s\] loss=0\.1\n$/);
  t.match(writes[4]!, /^train +50% 50\/100 \[5\.0s, eta 5\.0s, 10 it\/s\] loss=0\.02\n$/);
  t.match(writes[9]!, /^train 100% 100\/100 \[done in 10\.0s, 10 it\/s\] loss=0\.01\n$/);
  bar.finish();
  bar.tick();
  t.equal(writes.length, 10, 'finish is idempotent and later ticks are ignored');
});

t.test('non-TTY: slow work also prints every logIntervalMs', async (t) => {
  const { bar, writes, clock } = harness({ total: 1000, logIntervalMs: 5000 });
  for (let i = 0; i < 30; i++) {
    clock.now += 1000; // 1 step per second: 30 steps = 3%, never reaching a 10% step
    bar.tick();
  }
  t.equal(writes.length, 6, 'one line per 5 s');
  t.match(writes[0]!, /^  0% 5\/1000 \[5\.0s, eta 16m35s, 1 it\/s\]/);
});

t.test('unknown total: counts and rate, no percentage or ETA', async (t) => {
  const { bar, writes, clock } = harness({ unit: 'img', logIntervalMs: 1000 });
  for (let i = 0; i < 10; i++) {
    clock.now += 250;
    bar.tick(4);
  }
  bar.finish({ note: 'ok' });
  t.equal(writes.length, 3);
  t.match(writes[0]!, /^16 img \[1\.0s, 16 img\/s\]\n$/);
  t.match(writes[2]!, /^40 img \[done in 2\.5s, 16 img\/s\] note=ok\n$/);
  t.notMatch(writes.join(''), /%|eta/);
});

t.test('TTY: redraws in place, throttled to minIntervalMs, newline only at finish', async (t) => {
  const { bar, writes, clock } = harness({ total: 1000, isTTY: true, columns: 120, label: 'epoch 1' });
  for (let i = 0; i < 1000; i++) {
    clock.now += 1; // 1000 ticks in 1 s
    bar.tick();
  }
  const redraws = writes.length;
  t.ok(redraws >= 9 && redraws <= 11, `about 10 redraws in 1 s at 10 Hz (got ${redraws})`);
  t.ok(writes.every((w) => w.startsWith('\r') && w.endsWith('\x1b[K') && !w.includes('\n')), 'in-place redraws');
  t.match(writes[5]!, /^\repoch 1 +50% \|█{15}░{15}\| 501\/1000 \[0\.5s, eta 0\.5s, 1000 it\/s\]/);
  bar.finish({ loss: 0.5 });
  const last = writes[writes.length - 1]!;
  t.match(last, /^\repoch 1 100% \|█{30}\| 1000\/1000 \[done in 1\.0s, 1000 it\/s\] loss=0\.5\x1b\[K\n$/);
});

t.test('TTY: lines never exceed the terminal width; log() keeps the bar intact', async (t) => {
  const { bar, writes, clock } = harness({ total: 10, isTTY: true, columns: 40, label: 'a rather long label for a narrow terminal' });
  clock.now += 200;
  bar.tick(3, { loss: 0.123456, acc: 'good' });
  for (const w of writes) {
    const visible = w.replace(/\r|\x1b\[K/g, '');
    t.ok(visible.length <= 39, `${visible.length} columns`);
  }
  bar.log('checkpoint saved');
  t.equal(writes[writes.length - 2], '\r\x1b[Kcheckpoint saved\n', 'clears the bar, prints the message');
  t.match(writes[writes.length - 1]!, /^\r.*\x1b\[K$/, 'then redraws the bar');
});

t.test('rate follows recent speed; slow steps show seconds per step', async (t) => {
  const { bar, clock } = harness({ total: 1000, isTTY: true });
  for (let i = 0; i < 100; i++) {
    clock.now += 10; // fast phase: 100 it/s for 1 s
    bar.tick();
  }
  t.ok(Math.abs(bar.rate - 100) < 1, `fast phase: ${bar.rate}`);
  for (let i = 0; i < 30; i++) {
    clock.now += 1000; // slow phase: 1 it/s for 30 s, longer than the 10 s window
    bar.tick();
  }
  t.ok(bar.rate > 0.9 && bar.rate < 1.2, `rate adapted to the slow phase: ${bar.rate}`);
  t.equal(bar.current, 130);
  t.equal(bar.elapsedMs, 31_000);
});

t.test('formatting helpers', async (t) => {
  t.equal(formatDuration(950), '0.9s');
  t.equal(formatDuration(12_340), '12.3s');
  t.equal(formatDuration(125_000), '2m05s');
  t.equal(formatDuration(3_725_000), '1h02m');
  t.equal(formatDuration(NaN), '?');
  t.equal(formatRate(8.123), '8.123 it/s');
  t.equal(formatRate(0.25, 'round'), '4 s/round');
});

t.test('defaults to stderr when no stream is given', async (t) => {
  const bar = new Progress({ total: 1, tty: false });
  const orig = process.stderr.write;
  const seen: string[] = [];
  process.stderr.write = ((s: string) => (seen.push(s), true)) as typeof process.stderr.write;
  try {
    bar.finish();
  } finally {
    process.stderr.write = orig;
  }
  t.equal(seen.length, 1);
  t.match(seen[0]!, /0\/1 \[done in/);
});

t.test('a resumed run: the rate counts only the steps run in this process', async (t) => {
  // A run resumed at 100/200 reports its starting point first, then 1 step per second.
  const { bar, writes, clock } = harness({ total: 200, logIntervalMs: 5000 });
  clock.now = 27_000; // start-up (model build, shader compilation) before the first update
  bar.update(100);
  for (let i = 0; i < 10; i++) {
    clock.now += 1000;
    bar.tick();
  }
  t.match(writes[0]!, /^ 50% 100\/200 \[27\.0s\]\n$/, 'the resume point is shown, with no rate yet');
  t.match(writes[1]!, /105\/200 \[32\.0s, eta 1m35s, 1 it\/s\]/, 'rate 1 it/s, not 100 it/s; ETA from it');
  t.notMatch(writes.join(''), /\d{2,} it\/s/, 'never the resume point divided by the elapsed time');
  bar.finish();
  t.match(writes[writes.length - 1]!, /110\/200 \[done in 37\.0s, 1 it\/s\]/, 'the final average starts at the first update too');
});

t.test('a slow first step (start-up) does not set the ETA', async (t) => {
  const { bar, writes, clock } = harness({ total: 100, logIntervalMs: 1000 });
  clock.now = 27_000; // the first step carried a 27 s start-up
  bar.tick();
  t.notMatch(writes.join(''), /eta/, 'no ETA from one step');
  clock.now += 500;
  bar.tick(); // then 2 steps per second
  clock.now += 500;
  bar.tick();
  t.match(writes[writes.length - 1]!, /3\/100 \[28\.0s, eta 48\.5s, 2 it\/s\]/, 'ETA = 97 steps at 2 it/s');
});
