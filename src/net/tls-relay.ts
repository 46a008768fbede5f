/**
 * Mutual TLS in front of the uWebSockets.js app. Given a CA file, uSockets asks the client for a
 * certificate and refuses one from another CA, but lets a client that sends none straight through
 * (SSL_VERIFY_PEER without SSL_VERIFY_FAIL_IF_NO_PEER_CERT; test/net-mtls.test.ts shows it). So for
 * mutual TLS the server terminates TLS here, in Node (requestCert + rejectUnauthorized: no
 * certificate chaining to the client CA, no connection), and relays each connection to the uWS app,
 * which then listens in plain text on a loopback port.
 *
 * The relay writes three headers into the first request's head (dropping any the client sent under
 * those names): a per-process random secret, the peer's real address, and the common name of its
 * verified certificate. The app admits a WebSocket upgrade only with the secret, so a local process
 * that dials the loopback port directly is refused, and it binds the certificate's name to the node id.
 */
import { X509Certificate, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { createServer, createSecureContext, type Server, type TLSSocket } from 'node:tls';
import { StartupError, oneLine } from './errors.js';
import { safeLog, silentLogger, type Logger } from './log.js';

/** Headers the relay adds (and strips from what clients send). */
export const RELAY_SECRET_HEADER = 'x-asyndgan-relay';
export const PEER_ADDRESS_HEADER = 'x-asyndgan-peer-address';
export const PEER_CERT_HEADER = 'x-asyndgan-peer-cn';
const RELAY_HEADERS = new Set([RELAY_SECRET_HEADER, PEER_ADDRESS_HEADER, PEER_CERT_HEADER]);
/** A request head longer than this is not a WebSocket upgrade: the connection is dropped. */
const MAX_HEAD_BYTES = 16 * 1024;
/** A client that does not finish its request head in this time is dropped (ms). */
const HEAD_TIMEOUT_MS = 10_000;

export interface TlsRelayOptions {
  certFile: string;
  keyFile: string;
  /** PEM file with the CA(s) a client certificate must chain to. */
  clientCaFile: string;
  passphrase?: string;
  host: string;
  /** Public port (0: ephemeral). */
  port: number;
  /** The plain-text uWS app on 127.0.0.1. */
  backendPort: number;
  log?: Logger;
}

/** What the relay vouches for about one upgrade request. */
export interface RelayedPeer {
  address: string;
  /** Subject CN of the client certificate (verified against the client CA). */
  certName: string;
}

export class TlsRelay {
  private readonly secret = randomBytes(32).toString('base64url');
  private readonly sockets = new Set<Socket>();
  private portValue = 0;

  private constructor(private readonly server: Server, private readonly opts: TlsRelayOptions) {}

  /** Read the PEM files, listen on host:port; a one-line StartupError names what went wrong. */
  static async listen(opts: TlsRelayOptions): Promise<TlsRelay> {
    const read = (what: string, file: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (e) {
        throw new StartupError(`TLS ${what} ${file}: cannot read it (${oneLine(e)})`);
      }
    };
    const secure = {
      cert: read('certificate', opts.certFile), key: read('private key', opts.keyFile), ca: read('client CA', opts.clientCaFile),
      ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
    };
    // A CA file without a certificate (a key, say) would make Node trust nobody, silently.
    try {
      new X509Certificate(secure.ca);
    } catch (e) {
      throw new StartupError(`TLS client CA ${opts.clientCaFile}: not a PEM certificate (${oneLine(e)})`);
    }
    try {
      createSecureContext(secure);
    } catch (e) {
      throw new StartupError(`TLS: cannot use certificate ${opts.certFile} with key ${opts.keyFile} and client CA ${opts.clientCaFile} (${oneLine(e)})`);
    }
    const server = createServer({ ...secure, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
    const relay = new TlsRelay(server, opts);
    const log = opts.log ?? silentLogger;
    server.on('secureConnection', (s) => relay.relay(s));
    server.on('tlsClientError', (e, s) => {
      safeLog(log, 'warn', 'TLS connection refused (mutual TLS: a client certificate from the federation CA is required)', { remote: s.remoteAddress, cause: oneLine(e) });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    relay.portValue = (server.address() as { port: number }).port;
    return relay;
  }

  get port(): number {
    return this.portValue;
  }

  /** The peer an upgrade request came from, if the relay wrote its headers (undefined: not relayed). */
  peer(secret: string, address: string, certName: string): RelayedPeer | undefined {
    const a = Buffer.from(secret);
    const b = Buffer.from(this.secret);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    return { address: decodeURIComponent(address), certName: decodeURIComponent(certName) };
  }

  /** Stop accepting connections; open ones go on. */
  stopAccepting(): void {
    if (this.server.listening) this.server.close();
  }

  /** Stop accepting and drop every relayed connection. */
  close(): void {
    this.stopAccepting();
    for (const s of this.sockets) s.destroy();
  }

  private relay(client: TLSSocket): void {
    const cert = client.getPeerCertificate();
    const cn = cert?.subject?.CN;
    const certName = Array.isArray(cn) ? cn.join(',') : (cn ?? '');
    const address = client.remoteAddress ?? '';
    this.sockets.add(client);
    client.once('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    client.setTimeout(HEAD_TIMEOUT_MS, () => client.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES) client.destroy();
        return;
      }
      client.off('data', onData);
      client.pause();
      client.setTimeout(0);
      const first = this.rewriteHead(head.subarray(0, end).toString('latin1'), address, certName);
      this.forward(client, Buffer.concat([Buffer.from(first, 'latin1'), head.subarray(end)]));
    };
    client.on('data', onData);
  }

  /** The request line, our headers, then the client's headers without any of ours. */
  private rewriteHead(head: string, address: string, certName: string): string {
    const [requestLine, ...headers] = head.split('\r\n');
    const kept = headers.filter((h) => !RELAY_HEADERS.has(h.slice(0, h.indexOf(':')).trim().toLowerCase()));
    return [
      requestLine, `${RELAY_SECRET_HEADER}: ${this.secret}`, `${PEER_ADDRESS_HEADER}: ${encodeURIComponent(address)}`,
      `${PEER_CERT_HEADER}: ${encodeURIComponent(certName)}`, ...kept,
    ].join('\r\n');
  }

  private forward(client: TLSSocket, first: Buffer): void {
    const backend = connect(this.opts.backendPort, '127.0.0.1');
    this.sockets.add(backend);
    backend.once('close', () => {
      this.sockets.delete(backend);
      client.destroySoon();
    });
    client.once('close', () => backend.destroy());
    backend.on('error', () => client.destroy());
    backend.once('connect', () => {
      backend.setNoDelay(true);
      backend.write(first);
      client.pipe(backend);
      backend.pipe(client);
    });
  }
}
