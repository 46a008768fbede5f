// Mutual TLS (ServerOptions.tls.clientCaFile): the server checks the node's certificate as well as its
// token. Certificates come from `asyndgan provision`. A node without a client certificate, with one
// from another CA, or with another site's certificate is refused; the provisioned one trains. The
// control shows why the server does not leave this to uSockets: given only a CA file it would let a
// client without any certificate in (and so would this server with mutual TLS switched off).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import uWS from 'uWebSockets.js';
import WebSocket from 'ws';
import { provisionCommand } from '../src/cli/provision.js';
import { REFUSAL_HEADER, upgradeHeaders } from '../src/net/admission.js';
import { PEER_ADDRESS_HEADER, PEER_CERT_HEADER } from '../src/net/tls-relay.js';
import { LinearGenerator } from './helpers/net-backends.js';
import { TOKENS, makeTestNode, startTestServer, waitFor } from './helpers/net-harness.js';

if (spawnSync('openssl', ['version']).error) {
  t.comment('skipped: no openssl command here');
  process.exit(0);
}

async function provision(sites: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'asyndgan-mtls-'));
  const log = console.log;
  console.log = () => {};
  try {
    await provisionCommand(['--sites', sites, '--server-host', '127.0.0.1', '--out', dir]);
  } finally {
    console.log = log;
  }
  return dir;
}

const fed = await provision('alpha,beta');
const other = await provision('alpha'); // another federation: another CA
const ca = readFileSync(join(fed, 'ca.crt'));
const clientCert = (dir: string, site: string) => ({ cert: readFileSync(join(dir, 'sites', site, 'client.crt')), key: readFileSync(join(dir, 'sites', site, 'client.key')) });
const serverTls = { certFile: join(fed, 'server.crt'), keyFile: join(fed, 'server.key') };

/**
 * A node that tries with these TLS client options; resolves with why it gave up, or 'trained' after
 * three discriminator steps: the server sent round 3, so it had finished two rounds (after only two
 * steps the server may still be applying the second reply: seen once under CI load, round 1).
 */
async function attempt(url: string, id: string, tls: WebSocket.ClientOptions): Promise<string> {
  let failed: string | undefined;
  const n = makeTestNode(url, id, { wsOptions: { ca, ...tls }, giveUpAfterMs: 1500, onFailed: (why) => (failed = why) });
  n.node.start().catch(() => {});
  await waitFor(() => failed !== undefined || n.disc.steps >= 3, 20_000, `${id} refused or trained`);
  await n.node.stop();
  return failed ?? 'trained';
}

t.test('mutual TLS: no certificate, a foreign CA and another site\'s certificate are refused; the provisioned one trains', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { tls: { ...serverTls, clientCaFile: join(fed, 'ca.crt') } });
  t.teardown(() => server.stop());
  t.match(server.url, /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);

  const none = await attempt(server.url, 'alpha', {});
  t.match(none, /cannot reach the server .*certificate/i, `no client certificate: refused in the TLS handshake (${none})`);
  const foreign = await attempt(server.url, 'alpha', clientCert(other, 'alpha'));
  // The cause the node sees varies (an alert, or a reset before it arrives); the server logs why.
  t.match(foreign, /cannot reach the server .*giving up/, `a certificate from another CA: refused (${foreign})`);
  t.equal(server.round, 0, 'no round ran for the refused nodes');
  t.equal(server.metrics().nodesConnected, 0);

  const swapped = await attempt(server.url, 'alpha', clientCert(fed, 'beta'));
  t.match(swapped, /auth_failed|certificate is for "beta"/, `beta's certificate with alpha's token: refused (${swapped})`);

  const good = await attempt(server.url, 'alpha', clientCert(fed, 'alpha'));
  t.equal(good, 'trained', 'the provisioned certificate and token get in and train');
  t.ok(server.round >= 2, `rounds ran: ${server.round}`);

  // /health over the same TLS front, with a client certificate.
  const health = await new Promise<string>((resolve, reject) => {
    void import('node:https').then(({ get }) => get(`${server.httpUrl}/health`, { ca, ...clientCert(fed, 'alpha') }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject));
  });
  t.match(health, /"ok":true/);
});

t.test('control: with mutual TLS off, a node without a client certificate gets in', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { tls: serverTls });
  t.teardown(() => server.stop());
  t.equal(await attempt(server.url, 'alpha', {}), 'trained');
});

t.test('why: uSockets with ca_file_name refuses a foreign certificate but admits a client with none', async (t) => {
  const app = uWS.SSLApp({ cert_file_name: serverTls.certFile, key_file_name: serverTls.keyFile, ca_file_name: join(fed, 'ca.crt') });
  app.get('/*', (res) => void res.end('ok'));
  const ls = await new Promise<uWS.us_listen_socket | false>((resolve) => app.listen('127.0.0.1', 0, resolve));
  if (!ls) throw new Error('listen failed');
  t.teardown(() => uWS.us_listen_socket_close(ls));
  const port = uWS.us_socket_local_port(ls as unknown as uWS.us_socket);
  const get = (tls: object) => import('node:https').then(({ get }) => new Promise<string>((resolve) => {
    get(`https://127.0.0.1:${port}/`, { ca, ...tls, agent: false }, (res) => {
      res.resume();
      resolve(String(res.statusCode));
    }).on('error', (e) => resolve(`error: ${e.message}`));
  }));
  t.equal(await get({}), '200', 'no certificate: let in (not mutual TLS)');
  t.match(await get(clientCert(other, 'alpha')), /^error/, 'another CA: refused');
});

t.test('a missing or wrong client CA file: one line naming it, before anything listens', async (t) => {
  await t.rejects(startTestServer(new LinearGenerator(), { tls: { ...serverTls, clientCaFile: '/nonexistent/ca.crt' } }),
    { name: 'StartupError', message: /^TLS client CA \/nonexistent\/ca\.crt: cannot read it \(ENOENT/ });
  await t.rejects(startTestServer(new LinearGenerator(), { tls: { ...serverTls, clientCaFile: join(fed, 'ca.key') } }),
    { name: 'StartupError', message: /^TLS client CA \S+ca\.key: not a PEM certificate/ }, 'a key given as the CA');
});

t.test('mutual TLS on a port in use: one line saying so', async (t) => {
  const { createServer } = await import('node:net');
  const holder = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const port = (holder.address() as { port: number }).port;
  await t.rejects(startTestServer(new LinearGenerator(), { port, tls: { ...serverTls, clientCaFile: join(fed, 'ca.crt') } }),
    { name: 'StartupError', message: new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`) });
});

t.test('forged relay headers from a client are dropped: alpha\'s certificate cannot pose as beta', async (t) => {
  const server = await startTestServer(new LinearGenerator(), { tls: { ...serverTls, clientCaFile: join(fed, 'ca.crt') } });
  t.teardown(() => server.stop());
  // Forged names go first (where uWS getHeader would find them) and in odd spellings the relay must still strip.
  const status = (forged: Record<string, string>, site = 'alpha') => new Promise<string>((resolve) => {
    const ws = new WebSocket(server.url, { ca, ...clientCert(fed, site), headers: { ...forged, ...upgradeHeaders('beta', TOKENS.beta!) } });
    ws.on('unexpected-response', (_req, res) => {
      resolve(`${res.statusCode} ${String(res.headers[REFUSAL_HEADER])}`);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve('open');
      ws.close();
    });
    ws.on('error', (e) => resolve(`error: ${e.message}`));
  });
  t.equal(await status({ [PEER_CERT_HEADER]: 'beta', [PEER_ADDRESS_HEADER]: '10.9.9.9' }), '401 auth_failed', 'a forged certificate name is not believed');
  t.equal(await status({ 'X-Asyndgan-Peer-CN': 'beta' }), '401 auth_failed', 'nor in another case');
  t.equal(server.metrics().nodesConnected, 0);
  t.equal(await status({ [PEER_CERT_HEADER]: 'beta' }, 'beta'), 'open', 'control: this client gets in with beta\'s own certificate');
});
