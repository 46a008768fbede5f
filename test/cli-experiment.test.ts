/**
 * `asyndgan experiment` on the command line: its help and the bad options an operator can give
 * (one line naming the problem, exit 2, before any training starts). The study itself is tested
 * in eval-study.test.ts; a real run is `asyndgan experiment --quick` (a few minutes here).
 */
import t from 'tap';
import { runCli as run } from './helpers/cli.js';

t.test('help lists the options', async (t) => {
  const r = run(['experiment', '--help']);
  t.equal(r.code, 0);
  const text = r.lines.join('\n');
  for (const o of ['--data', '--quick', '--out', '--updates', '--gen-seeds', '--seg-seeds', '--local-steps']) t.match(text, o);
});

t.test('bad options: one line, exit 2', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--data', 'png:a,b'], /--data must be phantom, mricron or brats:DIR/],
    [['--kinds', 'asyndgan,flgan'], /unknown generator "flgan"/],
    [['--updates', '100', '--local-steps', '16'], /multiple of --local-steps 16/],
    [['--augment-centre', '5'], /--augment-centre 5: there are 3 centres/],
  ];
  for (const [args, re] of cases) {
    const r = run(['experiment', '--out', '/dev/null/x', ...args]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.equal(r.lines.length, 1, `${args.join(' ')}: one line (${r.lines.join(' | ')})`);
    t.match(r.lines[0] ?? '', re);
  }
});

t.test('a folder holding a run with other settings is refused, not resumed', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-exp-'));
  writeFileSync(join(dir, 'settings.json'), JSON.stringify({ data: 'phantom', size: 64 }));
  const r = run(['experiment', '--out', dir, '--quick']);
  t.equal(r.code, 2);
  t.match(r.lines.at(-1) ?? '', /holds a run with other settings/);
});
