// What an operator sees while a federation trains. The server: OUT/samples/round-N.png every
// --sample-every rounds and OUT/samples.png at the end (mask and synthetic columns only: it has no
// real images), and OUT/losses.png. The node: a status line every --status-every replies (rounds
// answered, its D losses, its epsilon) and one OUT/scalars.jsonl line per reply.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makePhantom } from '../src/data/index.js';
import { composeGrid, createImage, readPng } from '../src/io/index.js';

const cli = new URL('../bin/asyndgan.js', import.meta.url).pathname;
const model = ['--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2'];
const TOKEN = 'tok-alpha-0123456789abcdef';

/** A command through sh with its output on a real pipe (see engine-native-stderr.test.ts). */
function run(args: string[], env: Record<string, string> = {}): { url: Promise<string>; done: Promise<{ code: number; output: string }>; kill: () => void } {
  const child = spawn('sh', ['-c', '{ "$0" "$@" 2>&1; echo "@@exit=$?"; } | cat', process.execPath, cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  let output = '';
  let gotUrl: (u: string) => void = () => {};
  const url = new Promise<string>((r) => (gotUrl = r));
  child.stdout.on('data', (b: Buffer) => {
    output += b.toString();
    const m = /listening: (\S+)/.exec(output);
    if (m) gotUrl(m[1]!);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
  const done = new Promise<{ code: number; output: string }>((resolve) => child.on('close', () => {
    clearTimeout(timer);
    resolve({ code: Number(/@@exit=(\d+)/.exec(output)?.[1] ?? -1), output });
  }));
  return { url, done, kill: () => child.kill('SIGKILL') };
}

t.test('server sample grids and loss chart; node status lines and scalars', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-output-'));
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify({ nodes: { alpha: TOKEN } }));
  const d = makePhantom({ size: 16, testSlices: 1 }).test;
  const out = join(dir, 'server');
  const nodeOut = join(dir, 'node');
  const server = run(['server', '--tokens', join(dir, 'tokens.json'), '--port', '0', '--classes', String(d.numClasses), '--class-names', d.classNames.join(','),
    '--modalities', d.modalities.join(','), '--size', '16', '--batch-size', '1', '--rounds', '4', '--sample-every', '2', '--out', out, '--exit-when-done', '--quiet', ...model]);
  const url = await server.url;
  const node = run(['node', '--server', url, '--id', 'alpha', '--index', '0', '--nodes', '1', '--size', '16', '--quiet', '--status-every', '2', '--out', nodeOut, ...model], { ASYNDGAN_TOKEN: TOKEN });
  t.teardown(() => [server, node].forEach((c) => c.kill()));
  const [s, n] = await Promise.all([server.done, node.done]);
  t.equal(s.code, 0, `server exits 0 (${s.output.slice(-400)})`);
  t.equal(n.code, 0, `node exits 0 (${n.output.slice(-400)})`);

  // Server pictures.
  t.ok(existsSync(join(out, 'samples', 'round-000002.png')), 'a sample grid at round 2 (--sample-every 2)');
  t.notMatch(s.output, /not written/, 'no picture failed');
  t.match(s.output, new RegExp(`samples ${join(out, 'samples.png').replace(/[/.]/g, '\\$&')}`), 'the server says where the final grid is');
  const grid = await readPng(join(out, 'samples.png'));
  // The layout of mask + one synthetic column per modality for the rows shown; with real columns it would be wider.
  const layout = (cols: string[]) => composeGrid(Array.from({ length: 2 * cols.length }, () => createImage(16, 16)), {
    cols: cols.length, colLabels: cols, rowLabels: ['alpha', 'alpha'], scale: 2,
  }).width;
  const synthetic = ['mask', ...d.modalities.map((m) => `synthetic ${m}`)];
  t.equal(grid.width, layout(synthetic), `columns: ${synthetic.join(', ')}`);
  t.not(layout(['mask', ...d.modalities.flatMap((m) => [`real ${m}`, `synthetic ${m}`])]), grid.width, 'not the layout with real columns');
  const chart = await readPng(join(out, 'losses.png'));
  t.ok(chart.width > 100 && chart.height > 100, 'loss chart written');

  // Node status lines and scalars.
  const status = n.output.split('\n').filter((l) => /^asyndgan node alpha: round \d+, \d+ replies/.test(l));
  t.equal(status.length, 2, `a status line every 2 replies (${status.join(' | ')})`);
  t.match(status[1], /^asyndgan node alpha: round 4, 4 replies, D real \d+\.\d{3} fake \d+\.\d{3}, epsilon \d+\.\d{3} at delta [\d.e-]+/);
  const lines = readFileSync(join(nodeOut, 'scalars.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.same(lines.map((l) => l.step), [1, 2, 3, 4], 'one scalars line per reply, by round');
  t.ok(lines.every((l) => Number.isFinite(l['loss/D_real']) && Number.isFinite(l['loss/D_fake'])), 'D losses');
  const eps = lines.map((l) => l['privacy/epsilon']!);
  t.ok(eps.every((e, i) => e > 0 && (i === 0 || e > eps[i - 1]!)), `epsilon grows with every reply (${eps.map((e) => e.toFixed(3)).join(', ')})`);
});
