/**
 * Dawn's adapter-limit warnings come from native code on fd 2. With quietDawnWarnings the engine
 * drops exactly those lines and nothing else: stderr written before, during (by native code) and
 * after init still arrives, through a pipe (as in `asyndgan ... 2>&1 | tee log`) and through a
 * file. (Node's own 'pipe' stdio is a socket pair, which cannot be reopened; there fd 2 is left
 * alone, so the pipe case goes through sh.)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const dir = mkdtempSync(join(tmpdir(), 'native-stderr-'));
const script = join(dir, 'probe.mts');
writeFileSync(script, `import { init, tensor, relu } from ${JSON.stringify(new URL('../src/engine/index.ts', import.meta.url).pathname)};
console.error('before init');
await init({ quietDawnWarnings: process.argv[2] === 'quiet' });
console.error('after init');
console.log([...(await relu(tensor([-1, 2], [2])).read())].join(','));
for (let i = 0; i < 500; i++) process.stderr.write('bulk ' + i + '\\n');
console.error('end');`);
const WARNING = /artificially reduced/;

/** stdout, and stderr as written through a real pipe or to a file. */
function probe(mode: 'quiet' | 'loud', stderrTo: 'pipe' | 'file'): { stdout: string; stderr: string } {
  const env = { ...process.env, ASYNDGAN_QUIET_DAWN: '' };
  if (stderrTo === 'pipe') {
    const out = join(dir, `out-${mode}.txt`);
    const r = spawnSync('sh', ['-c', `"$0" --import tsx "$1" "$2" 2>&1 >"$3" | cat`, process.execPath, script, mode, out], { encoding: 'utf8', timeout: 60_000, env });
    return { stdout: readFileSync(out, 'utf8'), stderr: r.stdout };
  }
  const file = join(dir, `err-${mode}.log`);
  const fd = openSync(file, 'w');
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, mode], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', fd], env });
  closeSync(fd);
  return { stdout: r.stdout, stderr: readFileSync(file, 'utf8') };
}

t.test('without the option Dawn prints its warnings (so the check below can fail)', async (t) => {
  const r = probe('loud', 'pipe');
  t.match(r.stderr, WARNING);
});

for (const to of ['pipe', 'file'] as const) {
  t.test(`quietDawnWarnings drops only Dawn's lines (stderr to a ${to})`, async (t) => {
    const r = probe('quiet', to);
    t.notMatch(r.stderr, WARNING, 'no limit warning');
    t.equal(r.stdout.trim(), '0,2', 'the engine works');
    t.match(r.stderr, /^before init\nafter init\n/, 'lines written around init arrive, in order');
    t.equal((r.stderr.match(/^bulk \d+$/gm) ?? []).length, 500, 'all later stderr writes arrive');
    t.match(r.stderr, /end\n$/);
  });
}
