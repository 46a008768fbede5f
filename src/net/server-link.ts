/**
 * A node's connection to the server, apart from the protocol: dials the WebSocket with the
 * upgrade credentials, reports why an attempt ended (socket or TLS error, HTTP refusal of the
 * upgrade), and redials with capped, jittered exponential backoff. DiscriminatorNode (node.ts)
 * speaks the protocol over the transport each open connection hands it, and decides whether to
 * redial, when, or to give up.
 */
import WebSocket from 'ws';
import { REFUSAL_HEADER, upgradeHeaders } from './admission.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { oneLine } from './errors.js';

/** A transport under one node session (a WebSocket, or a test double). */
export interface NodeTransport {
  send(bytes: Uint8Array): boolean;
  /** Close this connection; the node reconnects unless stopped. */
  close(code: number, reason: string): void;
  /** Drop the connection at once, closing our TCP side first (optional). */
  terminate?(): void;
}

export interface ServerLinkOptions {
  /** Server WebSocket URL; a function is re-read on every dial. */
  url: string | (() => string);
  nodeId: string;
  token: string;
  /** Frames above this make `ws` close the connection (1009). */
  maxPayload: number;
  reconnect?: BackoffOptions;
  /** Extra `ws` client options (TLS: ca, cert, key, ...). */
  wsOptions?: WebSocket.ClientOptions;
}

/** The server refused the WebSocket upgrade (401 credentials, 409 id in use, 429 locked out, 503 full). */
export interface UpgradeRefusal {
  status: number;
  retryAfterMs: number;
}

/** How one connection attempt ended. */
export interface LinkClosed {
  code: number;
  /** A WebSocket connection was open (the node had a session on it). */
  opened: boolean;
  /** Why it failed, when known: e.g. "connect ECONNREFUSED 10.0.0.5:8787", "HTTP 429 rate_limited". */
  cause: string | undefined;
  refusal: UpgradeRefusal | undefined;
}

export interface LinkHandlers {
  /** A connection opened: the node starts a protocol session on `transport`. */
  open(transport: NodeTransport): void;
  frame(bytes: Uint8Array, isBinary: boolean): void;
  /** A socket or TLS error on an open connection (a close follows). */
  error(cause: string): void;
  /** The connection (or the attempt) ended. */
  closed(info: LinkClosed): void;
  /** The URL or options cannot be dialed at all. */
  invalid(why: string): void;
}

export class ServerLink {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ServerLinkOptions, private readonly on: LinkHandlers) {}

  /** Open one connection now. */
  dial(): void {
    const o = this.opts;
    const url = typeof o.url === 'function' ? o.url() : o.url;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, {
        perMessageDeflate: false,
        maxPayload: o.maxPayload,
        handshakeTimeout: 10000,
        ...o.wsOptions,
        // Credentials travel in the upgrade request: the server refuses a wrong one before any frame.
        headers: { ...o.wsOptions?.headers, ...upgradeHeaders(o.nodeId, o.token) },
      });
    } catch (e) {
      this.on.invalid(String(e));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'nodebuffer';
    let opened = false;
    let cause: string | undefined;
    let refusal: UpgradeRefusal | undefined;
    ws.on('unexpected-response', (_req, res) => {
      const code = String(res.headers[REFUSAL_HEADER] ?? '');
      const retryAfter = Number(res.headers['retry-after']);
      refusal = { status: res.statusCode ?? 0, retryAfterMs: Number.isFinite(retryAfter) ? Math.min(retryAfter, 600) * 1000 : 0 };
      cause = `HTTP ${res.statusCode}${code ? ` ${code}` : ''}`;
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      opened = true;
      this.on.open({
        send: (bytes) => {
          if (ws.readyState !== WebSocket.OPEN) return false;
          ws.send(bytes, { binary: true });
          return true;
        },
        close: (code, reason) => {
          if (ws.readyState === WebSocket.OPEN) ws.close(code, reason.slice(0, 120));
          else ws.terminate();
        },
        terminate: () => ws.terminate(),
      });
    });
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
      this.on.frame(bytes, isBinary);
    });
    ws.on('error', (e: Error) => {
      if (refusal) return; // the refusal is the cause, not the abort that followed it
      cause = oneLine(e); // e.g. "unable to verify the first certificate"
      if (opened) this.on.error(cause);
    });
    ws.on('close', (code: number) => {
      if (this.ws === ws) this.ws = undefined;
      this.on.closed({ code, opened, cause, refusal });
    });
  }

  /** Dial again after max(the backoff's next delay, `minDelayMs`); returns the delay. */
  redial(minDelayMs = 0): number {
    const delay = Math.max(minDelayMs, backoffDelay(this.attempt++, this.opts.reconnect));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.dial(), delay);
    return delay;
  }

  /** A session was welcomed: the next failure starts the backoff afresh. */
  resetBackoff(): void {
    this.attempt = 0;
  }

  /** Cancel a pending redial. */
  cancelRedial(): void {
    clearTimeout(this.timer);
  }

  /** Drop the current connection at once, our TCP side first (so the server's port is not left in TIME_WAIT). */
  drop(): void {
    this.ws?.terminate();
  }
}
