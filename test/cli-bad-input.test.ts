/**
 * Bad input on the command line: every case prints exactly one line that names the problem, with
 * no stack trace, and exits non-zero (issue: operator experience). The cases are the ones an
 * operator met: run options, data paths, files and folders, masks given to synth, server set-up.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writePng } from '../src/io/index.js';

const cli = new URL('../bin/asyndgan.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'asyndgan-bad-input-'));

/**
 * Runs the CLI as an operator's shell does, its output through a real pipe (Node's own 'pipe'
 * stdio is a socket pair, where the CLI cannot drop Dawn's native adapter warnings: see
 * engine/native-stderr.ts). Returns the exit code and the non-empty lines of stdout and stderr.
 */
function run(args: string[]): { code: number | null; lines: string[]; stderr: string } {
  const r = spawnSync('sh', ['-c', '{ "$0" "$@" 2>&1; echo "@@exit=$?"; } | cat', process.execPath, cli, ...args], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, ASYNDGAN_DEBUG: '' },
  });
  const all = r.stdout.split('\n').filter((l) => l.trim() !== '');
  const exit = all.pop() ?? '';
  const code = /^@@exit=(\d+)$/.test(exit) ? Number(exit.slice(7)) : null;
  return { code, lines: all, stderr: all.join('\n') };
}

const tokens = join(dir, 'tokens.json');
writeFileSync(tokens, JSON.stringify({ nodes: { a: 'secret-a-0123456789' } }));
const badJson = join(dir, 'bad-tokens.json');
writeFileSync(badJson, '{"nodes": {"a": "x",}}');
const masks = join(dir, 'masks');
mkdirSync(masks);

const tiny = ['--ngf', '4', '--ndf', '4', '--blocks', '1', '--iters', '1'];
const cases: [string, string[], RegExp][] = [
  ['--size not a multiple of 4', ['train', '--size', '30', ...tiny], /--size 30: .*multiple of 4/],
  ['negative --size', ['train', '--size', '-5', ...tiny], /--size must be a non-negative integer, got "-5"/],
  ['unknown command', ['frobnicate'], /unknown command "frobnicate"/],
  ['unknown option', ['train', '--frobnicate'], /unknown option '--frobnicate'/],
  ['missing BraTS folder', ['train', '--data', 'brats:/nonexistent', ...tiny], /\/nonexistent/],
  ['missing png: folder', ['train', '--data', `png:${join(dir, 'none')},${join(dir, 'none2')}`, ...tiny], /none/],
  ['misspelt data set', ['train', '--data', 'mricro', ...tiny], /unknown --data "mricro"/],
  ['--iters below the default decay', ['train', '--iters', '50', '--decay-iters', '60'], /--decay-iters 60 cannot exceed --iters 50/],
  ['unwritable output folder', ['train', '--out', '/dev/null/x', '--size', '32', ...tiny], /--out \/dev\/null\/x: cannot write there/],
  ['missing checkpoint', ['synth', '--checkpoint', join(dir, 'nope.safetensors'), '--masks', masks, '--out', join(dir, 's')], /--checkpoint .*nope\.safetensors: no such file/],
  ['missing masks folder', ['synth', '--checkpoint', tokens, '--masks', join(dir, 'nomasks'), '--out', join(dir, 's')], /--masks .*nomasks: no such folder/],
  ['missing tokens file', ['server', '--tokens', join(dir, 'missing.json'), '--classes', '4', '--port', '0'], /missing\.json/],
  ['bad tokens file', ['server', '--tokens', badJson, '--classes', '4', '--port', '0'], /bad-tokens\.json/],
  ['missing TLS key', ['server', '--tokens', tokens, '--classes', '4', '--port', '0', '--tls-cert', join(dir, 'c.pem'), '--tls-key', join(dir, 'k.pem')], /c\.pem|k\.pem/],
];

for (const [name, args, expected] of cases) {
  t.test(name, async (t) => {
    const r = run(args);
    t.not(r.code, 0, `exits non-zero (${r.code})`);
    t.equal(r.lines.length, 1, `one line: ${JSON.stringify(r.lines.slice(0, 4))}`);
    t.match(r.lines[0] ?? '', expected, 'that names the problem');
    t.notMatch(r.stderr, /^\s+at /m, 'no stack frame');
  });
}

t.test('a port in use', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const r = run(['server', '--tokens', tokens, '--classes', '4', '--port', String(port), '--size', '32', '--ngf', '4', '--blocks', '1']);
  t.not(r.code, 0);
  t.equal(r.lines.length, 1, `one line: ${JSON.stringify(r.lines.slice(0, 4))}`);
  t.match(r.lines[0] ?? '', new RegExp(String(port)), 'names the port');
});

t.test('synth: masks outside the classes, and masks of another size', async (t) => {
  // A generator file comes from a 1-iteration train (the smallest one these networks take).
  const out = join(dir, 'train');
  const trained = run(['train', '--size', '16', '--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2', '--iters', '1', '--batch-size', '1', '--out', out]);
  t.equal(trained.code, 0, 'the generator is trained');
  const g = join(out, 'generator.safetensors');
  const bad = join(dir, 'bad-masks');
  mkdirSync(bad);
  await writePng(join(bad, 'm.png'), { width: 16, height: 16, channels: 1, data: new Uint8Array(256).fill(200) });
  let r = run(['synth', '--checkpoint', g, '--masks', bad, '--out', join(dir, 's1')]);
  t.not(r.code, 0);
  t.equal(r.lines.filter((l) => !l.startsWith('synth')).length, 1, `one line: ${JSON.stringify(r.lines)}`);
  t.match(r.stderr, /m\.png: label 200 .* outside the generator's classes/, 'names the file and the label');
  const big = join(dir, 'big-masks');
  mkdirSync(big);
  await writePng(join(big, 'b.png'), { width: 24, height: 24, channels: 1, data: new Uint8Array(576) });
  r = run(['synth', '--checkpoint', g, '--masks', big, '--out', join(dir, 's2')]);
  t.not(r.code, 0, 'a mask of another size is refused');
  t.match(r.stderr, /b\.png: the mask is 24x24, the generator makes 16x16 images/);
  t.notMatch(r.stderr, /^\s+at /m);
});
