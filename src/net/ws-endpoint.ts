/**
 * The uWebSockets.js plumbing both servers share (GeneratorServer in server.ts and the FedAvg-GAN
 * server in src/fedavg): admission in the HTTP upgrade, the WebSocket handlers that hand frames to
 * a coordinator, exclusive binding of an explicit port, and the small JSON routes.
 */
import { createServer } from 'node:net';
import uWS from 'uWebSockets.js';
import { AUTHORIZATION_HEADER, NODE_ID_HEADER, REFUSAL_HEADER, statusLine, type Admission, type AdmissionResult } from './admission.js';
import { StartupError, oneLine } from './errors.js';
import { safeLog, type Logger } from './log.js';
import type { ConnHandle, Connection } from './sessions.js';
import { TokenTable } from './tokens.js';

/** uSockets listen option (exported by the binary, missing from its typings): no SO_REUSEPORT. */
const LIBUS_LISTEN_EXCLUSIVE_PORT: number = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: number }).LIBUS_LISTEN_EXCLUSIVE_PORT ?? 1;

/** Per-connection state kept on the uWS socket. */
export interface EndpointUserData {
  h: ConnHandle | undefined;
  /** False once closed: a uWS socket must not be touched after its close event. */
  open: boolean;
  /** Identity authenticated in the upgrade. */
  nodeId: string;
  /** Admission bucket of the peer's address; remote: the address itself. */
  address: string;
  remote: string;
}

/** What the endpoint needs of a coordinator: connections in, frames in, connections out. */
export interface EndpointCoordinator {
  attach(conn: Connection, remote: string, identity: string): ConnHandle;
  receive(h: ConnHandle, bytes: Uint8Array, isBinary: boolean): unknown;
  detach(h: ConnHandle): void;
}

/**
 * Check a WebSocket upgrade's credentials with `admission` and either upgrade it or refuse it
 * (status, code header, JSON body). Synchronous on purpose: `req` is only valid until this returns.
 * `certName`: with mutual TLS, the client certificate's CN, which must be the token's node id.
 */
export function admitUpgrade(
  res: uWS.HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t,
  admission: Admission, log: Logger, remote: string, certName?: string,
): void {
  const checked = admission.check(remote, req.getHeader(NODE_ID_HEADER), req.getHeader(AUTHORIZATION_HEADER), Date.now());
  // A certificate is one site's: its common name must be the node id the token is for.
  const verdict: AdmissionResult = checked.ok && certName !== undefined && certName !== checked.nodeId
    ? { ok: false, status: 401, code: 'auth_failed', message: `the client certificate is for "${certName}", not for node "${checked.nodeId}"` }
    : checked;
  if (!verdict.ok) {
    if (verdict.code !== 'rate_limited') safeLog(log, 'warn', 'connection refused', { remote, status: verdict.status, code: verdict.code, message: verdict.message });
    res.writeStatus(statusLine(verdict.status)).writeHeader(REFUSAL_HEADER, verdict.code).writeHeader('Content-Type', 'application/json');
    if (verdict.retryAfterSec !== undefined) res.writeHeader('Retry-After', String(verdict.retryAfterSec));
    res.end(JSON.stringify({ error: verdict.code, message: verdict.message }), true);
    return;
  }
  const ud: EndpointUserData = { h: undefined, open: true, nodeId: verdict.nodeId, address: verdict.address, remote };
  res.upgrade<EndpointUserData>(ud, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
}

/** The open/message/close handlers of an admitted WebSocket: admission counts, frames to `coord`. */
export function connectionHandlers(admission: Admission, coord: EndpointCoordinator): Pick<uWS.WebSocketBehavior<EndpointUserData>, 'open' | 'message' | 'close'> {
  return {
    open: (ws) => {
      const ud = ws.getUserData();
      admission.opened(ud.address, ud.nodeId);
      ud.h = coord.attach({
        // uWS throws on a closed socket, hence the flag; 2 means dropped at the backpressure limit.
        send: (bytes) => ud.open && ws.send(bytes, true) !== 2,
        close: (code, reason) => {
          if (!ud.open) return;
          ud.open = false;
          ws.end(code, reason.slice(0, 120)); // runs the close handler synchronously
        },
      }, ud.remote, ud.nodeId);
    },
    message: (ws, message, isBinary) => {
      const h = ws.getUserData().h;
      // Decoding copies what it keeps: `message` is neutered when this callback returns.
      if (h) coord.receive(h, new Uint8Array(message), isBinary);
    },
    close: (ws) => {
      const ud = ws.getUserData();
      ud.open = false;
      admission.closed(ud.address, ud.nodeId);
      if (ud.h) coord.detach(ud.h);
    },
  };
}

/**
 * Bind `app` to host:port. An explicit port is bound exclusively: without it uSockets sets
 * SO_REUSEPORT and a second server on the same port would silently share the traffic.
 */
export function listenExclusive(app: uWS.TemplatedApp, host: string, port: number): Promise<uWS.us_listen_socket | false> {
  return new Promise((resolve) => {
    if (port === 0) app.listen(host, 0, resolve);
    else (app.listen as unknown as (h: string, p: number, o: number, cb: (s: uWS.us_listen_socket | false) => void) => void)(host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, resolve);
  });
}

/**
 * Build an app and bind it exclusively to host:port, retrying for `retryMs` (e.g. while a previous
 * server leaves the port); a one-line StartupError says why it could not.
 */
export async function listenRetrying(build: () => uWS.TemplatedApp, host: string, port: number, retryMs: number): Promise<uWS.us_listen_socket> {
  const deadline = Date.now() + retryMs;
  for (;;) {
    const ls = await listenExclusive(build(), host, port);
    if (ls) return ls;
    if (Date.now() >= deadline) throw new StartupError(`cannot listen on ${host}:${port}: ${await whyCannotListen(host, port)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Ask the OS why a port cannot be bound (uWS only reports failure). */
export async function whyCannotListen(host: string, port: number): Promise<string> {
  if (port === 0) return 'no ephemeral port available';
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => {
      resolve(e.code === 'EADDRINUSE' ? 'the port is in use (another server running?)' : e.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : oneLine(e));
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve('the port was busy and is free now; retry')));
  });
}

/** 200 with a JSON body, never cached. */
export function sendJson(res: uWS.HttpResponse, body: unknown): void {
  res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json').writeHeader('Cache-Control', 'no-store').end(JSON.stringify(body));
}

/** Every other path: 404 with a JSON body. */
export function notFoundRoute(app: uWS.TemplatedApp): void {
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').writeHeader('Content-Type', 'application/json').end('{"error":"not found"}');
  });
}

/** A server's token table from a path, a table or a plain record; one that lists nobody is a StartupError. */
export async function serverTokenTable(tokens: TokenTable | Record<string, string> | string): Promise<TokenTable> {
  const table = typeof tokens === 'string' ? await TokenTable.load(tokens) : tokens instanceof TokenTable ? tokens : new TokenTable(tokens);
  if (table.size === 0) throw new StartupError('the token table lists no nodes: nobody could ever connect');
  return table;
}
