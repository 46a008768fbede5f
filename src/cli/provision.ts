/**
 * `asyndgan provision --sites a,b,c --server-host HOST --out DIR`: everything a federation across
 * machines needs, in one folder:
 *   DIR/tokens.json            the server's token file (crypto-random tokens), mode 0600
 *   DIR/ca.crt, DIR/ca.key     a private certificate authority (keep ca.key off the servers)
 *   DIR/server.crt/.key        the server's certificate, SAN = HOST, signed by the CA
 *   DIR/sites/<id>/            per site: token, client.crt/.key (signed by the CA), ca.crt
 * and prints, for the server and every site, the exact command that starts it: by default with
 * mutual TLS (the server also checks each node's certificate, whose CN is the site id, against the
 * CA: a leaked token alone does not get in); --tls-only prints commands with server TLS and tokens
 * only. Certificates are made with the `openssl` command (OpenSSL 1.1.1 or 3.x).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { StartupError } from '../net/errors.js';
import { int, makeOutputDir, parseOptions, UsageError } from './options.js';

const SITE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export async function provisionCommand(argv: string[]): Promise<void> {
  const v = parseOptions('provision', '--sites a,b,c --server-host HOST --out DIR [options]', {
    sites: { type: 'string', help: 'comma-separated node ids, one per hospital' },
    'server-host': { type: 'string', help: "the server's host name or IP address as the nodes will dial it" },
    out: { type: 'string', default: 'federation', help: 'output folder' },
    port: { type: 'string', default: '8787', help: 'the port the server will listen on (for the printed commands)' },
    days: { type: 'string', default: '365', help: 'certificate validity in days' },
    'tls-only': { type: 'boolean', default: false, help: 'print commands without mutual TLS (server certificate and tokens only; the client certificates are still made)' },
  }, argv);
  if (!v.sites) throw new UsageError('provision needs --sites a,b,c (the node ids)');
  if (!v['server-host']) throw new UsageError('provision needs --server-host HOST (the name or IP the nodes dial)');
  const sites = String(v.sites).split(',').map((s) => s.trim());
  const bad = sites.find((s) => !SITE_ID.test(s));
  if (bad !== undefined) throw new UsageError(`--sites: "${bad}" is not a valid node id (letters, digits, . _ -; up to 64)`);
  if (new Set(sites).size !== sites.length) throw new UsageError(`--sites: ids must be distinct, got "${v.sites}"`);
  const host = String(v['server-host']);
  const port = int(v, 'port');
  const days = String(int(v, 'days'));
  const out = resolve(String(v.out));
  makeOutputDir(out);
  requireOpenssl();

  const tokens = Object.fromEntries(sites.map((s) => [s, randomBytes(32).toString('base64url')]));
  writeFileSync(join(out, 'tokens.json'), JSON.stringify({ nodes: tokens }, null, 2) + '\n', { mode: 0o600 });

  const ca = { crt: join(out, 'ca.crt'), key: join(out, 'ca.key') };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', ca.key, '-out', ca.crt,
    '-days', days, '-subj', '/CN=asyndgan federation CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const san = isIP(host) ? `IP:${host}` : `DNS:${host}`;
  issue(out, ca, 'server', host, [`subjectAltName=${san}`, 'extendedKeyUsage=serverAuth'], days);
  for (const s of sites) {
    const dir = join(out, 'sites', s);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'token'), tokens[s]! + '\n', { mode: 0o600 });
    issue(dir, ca, 'client', s, ['extendedKeyUsage=clientAuth'], days);
    copyFileSync(ca.crt, join(dir, 'ca.crt'));
  }

  const urlHost = isIP(host) === 6 ? `[${host}]` : host;
  const mutual = v['tls-only'] !== true;
  console.log(`provisioned ${sites.length} sites in ${out} (server ${host}:${port}, ${mutual ? 'mutual TLS: certificate and token' : 'TLS: token only'}); copy sites/<id>/ to each hospital, keep ca.key offline`);
  console.log(`\n# on the server (${host}):`);
  console.log(`asyndgan server --host 0.0.0.0 --port ${port} --tokens ${join(out, 'tokens.json')} --tls-cert ${join(out, 'server.crt')} --tls-key ${join(out, 'server.key')}${mutual ? ` --client-ca ${ca.crt}` : ''} --classes N --modalities LIST --min-nodes ${sites.length}`);
  sites.forEach((s, i) => {
    const dir = join(out, 'sites', s);
    const certs = mutual ? ` --cert ${join(dir, 'client.crt')} --key ${join(dir, 'client.key')}` : '';
    console.log(`\n# at ${s}:`);
    console.log(`ASYNDGAN_TOKEN=$(cat ${join(dir, 'token')}) asyndgan node --server wss://${urlHost}:${port}/ws --id ${s} --ca-file ${join(dir, 'ca.crt')}${certs} --data DATA --index ${i} --nodes ${sites.length}`);
  });
}

/** A key and a certificate signed by the CA: DIR/<name>.key, DIR/<name>.crt. */
function issue(dir: string, ca: { crt: string; key: string }, name: string, cn: string, extensions: string[], days: string): void {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  writeFileSync(ext, ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', ...extensions].join('\n') + '\n');
  openssl(['x509', '-req', '-in', csr, '-CA', ca.crt, '-CAkey', ca.key, '-CAcreateserial', '-out', join(dir, `${name}.crt`), '-days', days, '-extfile', ext]);
}

function requireOpenssl(): void {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new StartupError('the openssl command is needed to make the certificates and was not found (install it: apt-get install openssl)');
  }
}

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = (r.stderr || String(r.error ?? '')).trim().split('\n').pop();
    throw new StartupError(`openssl ${args[0]} failed: ${why}`);
  }
}
