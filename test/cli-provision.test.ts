// `asyndgan provision`: tokens, a CA, server and client certificates that chain to it, the server's
// SAN, client certificates named after their site, and a start command per site, with mutual TLS by
// default and without it under --tls-only. The federation run from these commands is
// test/cli-tls-federation.test.ts; mutual TLS itself is test/net-mtls.test.ts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

const cli = new URL('../bin/asyndgan.js', import.meta.url).pathname;

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as AddressInfo).port;
    s.close(() => resolve(p));
  });
});

t.test('provision: files, certificates and the printed commands', async (t) => {
  const openssl = spawnSync('openssl', ['version']);
  if (openssl.error) {
    t.comment('skipped: no openssl command here');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-prov-'));
  const port = await freePort();
  const r = spawnSync(process.execPath, [cli, 'provision', '--sites', 'hospital-a,hospital-b', '--server-host', '127.0.0.1', '--port', String(port), '--out', dir], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const tokens = JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8')) as { nodes: Record<string, string> };
  t.same(Object.keys(tokens.nodes), ['hospital-a', 'hospital-b']);
  t.ok(Object.values(tokens.nodes).every((k) => /^[A-Za-z0-9_-]{43}$/.test(k)), '256-bit random tokens');
  t.not(tokens.nodes['hospital-a'], tokens.nodes['hospital-b']);
  t.equal(statSync(join(dir, 'tokens.json')).mode & 0o077, 0, 'tokens file readable by its owner only');
  const verify = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), join(dir, 'server.crt'), join(dir, 'sites', 'hospital-a', 'client.crt')], { encoding: 'utf8' });
  t.match(verify.stdout, /server\.crt: OK[\s\S]*client\.crt: OK/, 'certificates chain to the CA');
  const text = spawnSync('openssl', ['x509', '-in', join(dir, 'server.crt'), '-noout', '-text'], { encoding: 'utf8' }).stdout;
  t.match(text, /IP Address:127\.0\.0\.1/, 'server SAN = the host');

  const lines = r.stdout.split('\n').filter((l) => l.includes('asyndgan '));
  t.ok(lines.some((l) => l.startsWith('asyndgan server') && l.includes('--tls-cert') && l.includes('--tls-key') && l.includes('tokens.json')), 'the server command');
  const nodeLines = lines.filter((l) => l.includes(' asyndgan node '));
  t.equal(nodeLines.length, 2, 'one command per site');
  t.ok(nodeLines.every((l) => /--server wss:\/\/127\.0\.0\.1:\d+\/ws/.test(l) && l.includes('--ca-file')), 'nodes dial wss:// and trust the CA');
  t.ok(lines[0]!.includes(`--client-ca ${join(dir, 'ca.crt')}`), 'mutual TLS by default: the server checks client certificates against the CA');
  t.ok(nodeLines.every((l, i) => {
    const site = ['hospital-a', 'hospital-b'][i]!;
    return l.includes(`--cert ${join(dir, 'sites', site, 'client.crt')}`) && l.includes(`--key ${join(dir, 'sites', site, 'client.key')}`);
  }), 'each node presents its own certificate');
  const subject = spawnSync('openssl', ['x509', '-in', join(dir, 'sites', 'hospital-b', 'client.crt'), '-noout', '-subject'], { encoding: 'utf8' }).stdout;
  t.match(subject, /CN ?= ?hospital-b/, 'a client certificate names its site (the server binds it to the node id)');

  const plain = spawnSync(process.execPath, [cli, 'provision', '--sites', 'a', '--server-host', 'fed.example.org', '--out', join(dir, 'plain'), '--tls-only'], { encoding: 'utf8' });
  t.equal(plain.status, 0, plain.stderr);
  t.notMatch(plain.stdout, /--client-ca|--cert |--key /, '--tls-only: no client certificates in the commands');
  t.match(plain.stdout, /--server wss:\/\/fed\.example\.org:8787\/ws/);
});
