// `asyndgan provision`, then a mutual-TLS federation started with exactly the commands it printed
// (their placeholders N, LIST and DATA filled in, tiny model and run options appended): the nodes
// finish (told training is over, exit 0) and the server writes its generator.
import { spawn } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makePhantom } from '../src/data/index.js';
import { loadSafetensors } from '../src/io/safetensors.js';

const cli = new URL('../bin/asyndgan.js', import.meta.url).pathname;
const model = ['--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2'];

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as AddressInfo).port;
    s.close(() => resolve(p));
  });
});

/**
 * Run one printed command line through sh, `asyndgan` standing for this checkout's CLI. Output
 * goes through a real pipe (| cat), as a user's shell would have it (see engine-native-stderr).
 */
function runLine(line: string, timeoutMs: number): { done: Promise<{ code: number; output: string }>; kill: () => void } {
  const script = `asyndgan() { "$ASYNDGAN_NODE" "$ASYNDGAN_CLI" "$@"; }\n{ ${line} 2>&1; echo "@@exit=$?"; } | cat`;
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ASYNDGAN_NODE: process.execPath, ASYNDGAN_CLI: cli } });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number; output: string }>((resolve) => child.on('close', () => {
    clearTimeout(timer);
    const m = /@@exit=(\d+)/.exec(output);
    resolve({ code: m ? Number(m[1]) : -1, output });
  }));
  return { done, kill: () => child.kill('SIGKILL') };
}

t.test('a mutual-TLS federation from the commands provision printed', async (t) => {
  if (spawnSync('openssl', ['version']).error) {
    t.comment('skipped: no openssl command here');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-tlsfed-'));
  const port = await freePort();
  const p = spawnSync(process.execPath, [cli, 'provision', '--sites', 'hospital-a,hospital-b', '--server-host', '127.0.0.1', '--port', String(port), '--out', join(dir, 'fed')], { encoding: 'utf8' });
  t.equal(p.status, 0, p.stderr);
  const lines = p.stdout.split('\n').filter((l) => /(^| )asyndgan (server|node) /.test(l));
  const serverLine = lines.find((l) => l.startsWith('asyndgan server'))!;
  const nodeLines = lines.filter((l) => l.includes(' asyndgan node '));
  t.ok(serverLine.includes('--client-ca') && nodeLines.every((l) => l.includes('--cert') && l.includes('--key')), 'mutual TLS by default');

  const d = makePhantom({ size: 32, testSlices: 1 }).test;
  const out = join(dir, 'server-out');
  const server = runLine(`${serverLine.replace('--classes N', `--classes ${d.numClasses}`).replace('--modalities LIST', `--modalities ${d.modalities.join(',')}`)} `
    + `--size 32 --batch-size 1 --rounds 3 --round-timeout 60000 --exit-when-done --quiet --out ${out} ${model.join(' ')}`, 120_000);
  const nodes = nodeLines.map((l, i) => runLine(`${l.replace('--data DATA', '--data phantom')} --size 32 --privacy off --quiet --give-up-after 90 --out ${join(dir, `node-${i}`)} ${model.join(' ')}`, 120_000));
  t.teardown(() => [server, ...nodes].forEach((c) => c.kill()));

  const [s, ...n] = await Promise.all([server.done, ...nodes.map((c) => c.done)]);
  t.equal(s!.code, 0, `server exits 0 (output tail: ${s!.output.slice(-600)})`);
  n.forEach((r, i) => {
    t.equal(r.code, 0, `node ${i} exits 0 (output tail: ${r.output.slice(-600)})`);
    t.match(r.output, /the server says training is over \(training done: 3 rounds\)/, `node ${i} finished`);
  });
  t.match(s!.output, /wss:\/\/0\.0\.0\.0:\d+\/ws.*mutual TLS/, 'the server says it runs mutual TLS');
  const gen = join(out, 'generator.safetensors');
  t.ok(existsSync(gen), 'generator written');
  const info = JSON.parse((await loadSafetensors(gen)).metadata.asyndgan_generator!) as { federation: { rounds: number; nodeIds: string[] } };
  t.equal(info.federation.rounds, 3);
  t.same(info.federation.nodeIds, ['hospital-a', 'hospital-b'], 'both sites contributed');
});

t.test('node --cert / --key: a missing file or a lone --cert is one line naming it, exit 2', async (t) => {
  const base = [cli, 'node', '--server', 'wss://127.0.0.1:9/ws', '--id', 'a', '--token', 'x', '--index', '0'];
  const missing = spawnSync(process.execPath, [...base, '--cert', '/nonexistent/client.crt', '--key', '/nonexistent/client.key'], { encoding: 'utf8' });
  t.match(missing.stderr.trim(), /^--cert \/nonexistent\/client\.crt: cannot read it \(ENOENT\)$/);
  t.equal(missing.status, 2);
  const lone = spawnSync(process.execPath, [...base, '--cert', '/nonexistent/client.crt'], { encoding: 'utf8' });
  t.match(lone.stderr.trim(), /^--cert and --key go together/);
  t.equal(lone.status, 2);
});
