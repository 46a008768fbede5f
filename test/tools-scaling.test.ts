// `npm run bench:scaling` (tools/scaling.ts): usage on --help; bad arguments are one line and exit 2
// before any process is started. (The measurements themselves are minutes of real federations:
// they live in docs/BENCHMARKS.md, never in a test.)
import { spawnSync } from 'node:child_process';
import t from 'tap';

const root = new URL('..', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'tools/scaling.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60000 });

t.test('--help prints the usage', async (t) => {
  const r = run('--help');
  t.equal(r.status, 0);
  t.match(r.stdout, /usage: npm run bench:scaling -- \[options\]/);
  t.match(r.stdout, /--part LIST/);
});

for (const [args, why] of [
  [['--part', 'speed'], /--part: unknown part "speed"/],
  [['--nodes', '1,x'], /--nodes must be a positive integer, got "x"/],
  [['--rounds', '0'], /--rounds must be a positive integer, got "0"/],
  [['--frobnicate'], /Unknown option '--frobnicate'/],
] as const) {
  t.test(`refuses ${args.join(' ')}`, async (t) => {
    const r = run(...args, '--out', '/dev/null/x.json');
    t.equal(r.status, 2, 'exit 2');
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
    t.match(r.stderr, why);
  });
}
