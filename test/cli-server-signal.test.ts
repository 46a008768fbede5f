// Ctrl-C on `asyndgan server`: it finishes the round, checkpoints, and writes generator.safetensors
// fresh (its metadata names the round reached), says so, and exits 0. Also: the server's round
// losses go to OUT/scalars.jsonl as they happen.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { makePhantom } from '../src/data/index.js';
import { loadSafetensors } from '../src/io/safetensors.js';

const cli = new URL('../bin/asyndgan.js', import.meta.url).pathname;
const model = ['--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2'];

t.test('SIGINT on the server writes a fresh generator and exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-srv-sig-'));
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify({ nodes: { alpha: 'tok-alpha-0123456789abcdef' } }));
  const d = makePhantom({ size: 16, testSlices: 1 }).test;
  const out = join(dir, 'server');
  const children: ChildProcess[] = [];
  t.teardown(() => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL')));
  const server = spawn(process.execPath, [cli, 'server', '--tokens', tokens, '--port', '0', '--classes', String(d.numClasses),
    '--modalities', d.modalities.join(','), '--size', '16', '--batch-size', '1', '--rounds', '1000', '--out', out,
    '--checkpoint-dir', join(dir, 'ckpt'), '--checkpoint-every', '100000', '--quiet', ...model], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(server);
  let stderr = '';
  server.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    server.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /listening: (\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
  });
  const node = spawn(process.execPath, [cli, 'node', '--server', url, '--id', 'alpha', '--index', '0', '--nodes', '1', '--size', '16',
    '--quiet', '--privacy', 'off', ...model], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ASYNDGAN_TOKEN: 'tok-alpha-0123456789abcdef' } });
  children.push(node);
  const scalarsFile = join(out, 'scalars.jsonl');
  const lines = () => (existsSync(scalarsFile) ? readFileSync(scalarsFile, 'utf8').trimEnd().split('\n').filter(Boolean) : []);
  const end = Date.now() + 180_000;
  while (lines().length < 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  t.ok(lines().length >= 3, 'three rounds logged to scalars.jsonl');
  const first = JSON.parse(lines()[0]!) as Record<string, number>;
  t.ok(first.step >= 1 && Number.isFinite(first['loss/G_L1']) && first.nodes === 1, 'each line: round, losses, nodes that answered');

  const code = await new Promise<number | null>((resolve) => {
    server.once('exit', resolve);
    server.kill('SIGINT');
  });
  t.equal(code, 0, 'exit 0');
  const m = /stopped at round (\d+): generator (\S+), checkpoint in (\S+)/.exec(stderr);
  t.ok(m, `says where it saved (stderr tail: ${stderr.slice(-300)})`);
  const round = Number(m![1]);
  t.ok(round >= 3, `round reached: ${round}`);
  t.equal(m![2], join(out, 'generator.safetensors'));
  const info = JSON.parse((await loadSafetensors(join(out, 'generator.safetensors'))).metadata.asyndgan_generator!) as { federation: { rounds: number; nodeIds: string[] } };
  t.equal(info.federation.rounds, round, 'generator metadata: the round reached at the stop');
  t.same(info.federation.nodeIds, ['alpha']);
  t.ok(existsSync(join(dir, 'ckpt')), 'checkpoint folder written');
  t.notMatch(stderr, /^\s+at /m, 'no stack trace');
});

t.test('--exit-when-done: the node is told training is over and exits 0 with a line saying so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-srv-done-'));
  const tokens = join(dir, 'tokens.json');
  writeFileSync(tokens, JSON.stringify({ nodes: { alpha: 'tok-alpha-0123456789abcdef' } }));
  const d = makePhantom({ size: 16, testSlices: 1 }).test;
  const server = spawn(process.execPath, [cli, 'server', '--tokens', tokens, '--port', '0', '--classes', String(d.numClasses),
    '--modalities', d.modalities.join(','), '--size', '16', '--batch-size', '1', '--rounds', '3', '--out', join(dir, 'out'),
    '--exit-when-done', '--quiet', ...model], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => server.exitCode === null && server.kill('SIGKILL'));
  server.stderr!.resume();
  const url = await new Promise<string>((resolve) => {
    let buf = '';
    server.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /listening: (\S+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
  });
  const node = spawn(process.execPath, [cli, 'node', '--server', url, '--id', 'alpha', '--index', '0', '--nodes', '1', '--size', '16',
    '--quiet', '--privacy', 'off', ...model], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ASYNDGAN_TOKEN: 'tok-alpha-0123456789abcdef' } });
  t.teardown(() => node.exitCode === null && node.kill('SIGKILL'));
  let nodeErr = '';
  node.stderr!.on('data', (b: Buffer) => (nodeErr += b.toString()));
  const [serverCode, nodeCode] = await Promise.all([
    new Promise<number | null>((r) => server.once('exit', r)),
    new Promise<number | null>((r) => node.once('exit', r)),
  ]);
  t.equal(serverCode, 0, 'server exits 0');
  t.equal(nodeCode, 0, 'node exits 0');
  t.match(nodeErr, /asyndgan node alpha: the server says training is over \(training done: 3 rounds\); \d+ replies sent; exiting/);
  t.notMatch(nodeErr, /disconnected 1006/, 'no reconnect loop');
});

t.test('node --give-up-after: an unreachable server ends the node with a clear line and exit 1', async (t) => {
  const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
    // Port 9 (discard) on loopback: nothing listens, every attempt is refused.
    const node = spawn(process.execPath, [cli, 'node', '--server', 'ws://127.0.0.1:9/ws', '--id', 'alpha', '--index', '0', '--nodes', '1',
      '--size', '16', '--privacy', 'off', '--give-up-after', '1', ...model], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ASYNDGAN_TOKEN: 'x' } });
    let err = '';
    node.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    node.once('exit', (code) => resolve({ code, err }));
  });
  t.equal(r.code, 1, 'non-zero exit');
  t.match(r.err, /asyndgan node alpha: .*cannot reach the server at ws:\/\/127\.0\.0\.1:9\/ws for \d+ s \(last cause: .*\); giving up/);
  t.match(r.err, /cannot connect to the server/, 'retries logged with their cause');
});
