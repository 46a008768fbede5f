/**
 * Who may open a WebSocket to the server, decided at the HTTP upgrade, before any frame is
 * read: a locked-out address (too many failed logins) gets 429, missing or wrong credentials
 * 401, a full server or address 503, an id that is already connected 409. Only connections
 * that pass become WebSockets, so an unauthenticated peer never gets a frame buffered.
 * Pure apart from the clock it is given; server.ts feeds it the upgrade's headers.
 */
import type { ErrorCode } from './protocol.js';
import type { TokenTable } from './tokens.js';

/** Upgrade request headers carrying the credentials (protocol version 2). */
export const NODE_ID_HEADER = 'x-asyndgan-node';
export const AUTHORIZATION_HEADER = 'authorization';
/** Response header naming the refusal code (one of ERROR_CODES). */
export const REFUSAL_HEADER = 'x-asyndgan-error';

/** What to do when a node id that is already connected authenticates again. */
export type DuplicateIdPolicy = 'refuse' | 'replace';

export interface AdmissionOptions {
  /** WebSocket connections open at once, all addresses together. Default 256. */
  maxConnections?: number;
  /** WebSocket connections open at once from one address (IPv6: one /64). Default 32. */
  maxConnectionsPerAddress?: number;
  /** Failed logins from one address within `loginWindowMs` that trigger a lockout. Default 10. */
  maxLoginFailures?: number;
  /** Window over which failures are counted (ms). Default 60000. */
  loginWindowMs?: number;
  /** How long a locked-out address is refused without checking its credentials (ms). Default 60000. */
  lockoutMs?: number;
  /** Default 'refuse'. */
  onDuplicateId?: DuplicateIdPolicy;
  /** Addresses whose failures are remembered at once (oldest forgotten first). Default 10000. */
  maxTrackedAddresses?: number;
}

export const ADMISSION_DEFAULTS: Required<AdmissionOptions> = {
  maxConnections: 256,
  maxConnectionsPerAddress: 32,
  maxLoginFailures: 10,
  loginWindowMs: 60_000,
  lockoutMs: 60_000,
  onDuplicateId: 'refuse',
  maxTrackedAddresses: 10_000,
};

export type AdmissionResult =
  | { ok: true; nodeId: string; address: string }
  | { ok: false; status: 401 | 409 | 429 | 503; code: ErrorCode; message: string; retryAfterSec?: number };

interface Failures {
  windowStart: number;
  count: number;
  lockedUntil: number;
}

/** HTTP status line for a refusal. */
export function statusLine(status: number): string {
  return { 401: '401 Unauthorized', 409: '409 Conflict', 429: '429 Too Many Requests', 503: '503 Service Unavailable' }[status] ?? `${status} Error`;
}

/**
 * The bucket an address counts in: IPv4 as is (also when IPv4-mapped), IPv6 by its /64 prefix
 * (one subscriber usually holds a whole /64, so per-address limits on full IPv6 addresses
 * would be void).
 */
export function addressBucket(remote: string): string {
  const r = remote.toLowerCase();
  const mapped = /^(?:0{1,4}:){5}ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(r) ?? /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(r);
  if (mapped) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(r);
  if (v4) return v4[1]!;
  if (!r.includes(':')) return r;
  return `${expandIpv6(r).slice(0, 4).join(':')}::/64`;
}

function expandIpv6(a: string): string[] {
  const [head, tail] = a.includes('::') ? a.split('::', 2) as [string, string] : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail !== undefined ? Array(Math.max(0, 8 - h.length - t.length)).fill('0') : [];
  return [...h, ...fill, ...t].map((g) => (parseInt(g, 16) || 0).toString(16));
}

/** Percent-decoded header value (UTF-8), or undefined when absent or malformed. */
function decodeHeader(v: string): string | undefined {
  if (v === '') return undefined;
  try {
    return decodeURIComponent(v);
  } catch {
    return undefined;
  }
}

export class Admission {
  private readonly o: Required<AdmissionOptions>;
  private readonly failures = new Map<string, Failures>();
  private readonly perAddress = new Map<string, number>();
  private readonly perNode = new Map<string, number>();
  private open = 0;
  /** Refusals by code since start (for /metrics). */
  readonly refused: Partial<Record<ErrorCode, number>> = {};

  constructor(private readonly tokens: TokenTable, opts: AdmissionOptions = {}) {
    this.o = { ...ADMISSION_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
  }

  get policy(): DuplicateIdPolicy {
    return this.o.onDuplicateId;
  }
  get connections(): number {
    return this.open;
  }

  /**
   * Decide on one upgrade. `nodeHeader` and `authHeader` are the raw header values ('' when
   * absent). A success must be followed by opened() once the socket is open.
   */
  check(remote: string, nodeHeader: string, authHeader: string, now: number): AdmissionResult {
    const address = addressBucket(remote);
    const f = this.failures.get(address);
    if (f && f.lockedUntil > now) {
      return this.refuse(429, 'rate_limited', `too many failed logins from ${address}; retry later`, Math.ceil((f.lockedUntil - now) / 1000));
    }
    const nodeId = decodeHeader(nodeHeader);
    const bearer = /^Bearer ([^\s]+)$/i.exec(authHeader)?.[1];
    const token = bearer === undefined ? undefined : decodeHeader(bearer);
    // Unknown id and wrong token are one answer, and the token is compared either way (tokens.ts).
    if (nodeId === undefined || token === undefined || !this.tokens.verify(nodeId, token)) {
      this.fail(address, now);
      const why = nodeId === undefined || token === undefined
        ? `send the node id in ${NODE_ID_HEADER} and the token as "${AUTHORIZATION_HEADER}: Bearer <token>" (both percent-encoded UTF-8)`
        : 'unknown node id or wrong token';
      return this.refuse(401, 'auth_failed', why);
    }
    if (this.open >= this.o.maxConnections) return this.refuse(503, 'quota_exceeded', `server holds its maximum of ${this.o.maxConnections} connections`, 5);
    if ((this.perAddress.get(address) ?? 0) >= this.o.maxConnectionsPerAddress) {
      return this.refuse(503, 'quota_exceeded', `${address} holds its maximum of ${this.o.maxConnectionsPerAddress} connections`, 5);
    }
    // 'refuse': one connection per id. 'replace': the newcomer may open; hello evicts the old one.
    const limit = this.o.onDuplicateId === 'refuse' ? 1 : 2;
    if ((this.perNode.get(nodeId) ?? 0) >= limit) {
      // Retry soon: usually the node's own previous connection, whose close the server has not seen yet.
      return this.refuse(409, 'identity_in_use', `a connection is already open as node ${JSON.stringify(nodeId)}`, 1);
    }
    return { ok: true, nodeId, address };
  }

  /** A connection admitted by check() opened. */
  opened(address: string, nodeId: string): void {
    this.open++;
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.perNode.set(nodeId, (this.perNode.get(nodeId) ?? 0) + 1);
  }

  /** A connection passed to opened() closed. */
  closed(address: string, nodeId: string): void {
    this.open--;
    dec(this.perAddress, address);
    dec(this.perNode, nodeId);
  }

  private refuse(status: 401 | 409 | 429 | 503, code: ErrorCode, message: string, retryAfterSec?: number): AdmissionResult {
    this.refused[code] = (this.refused[code] ?? 0) + 1;
    return { ok: false, status, code, message, ...(retryAfterSec !== undefined ? { retryAfterSec } : {}) };
  }

  private fail(address: string, now: number): void {
    let f = this.failures.get(address);
    if (!f || now - f.windowStart > this.o.loginWindowMs) {
      if (f) this.failures.delete(address);
      f = { windowStart: now, count: 0, lockedUntil: 0 };
      this.failures.set(address, f);
      this.forgetOld(now);
    }
    f.count++;
    if (f.count >= this.o.maxLoginFailures) {
      f.lockedUntil = now + this.o.lockoutMs;
      // The lockout starts a new window: after it, the address gets maxLoginFailures tries again.
      f.windowStart = f.lockedUntil;
      f.count = 0;
    }
  }

  /** Bound the failure table: drop expired entries, then the oldest. */
  private forgetOld(now: number): void {
    if (this.failures.size <= this.o.maxTrackedAddresses) return;
    for (const [a, f] of this.failures) {
      if (f.lockedUntil <= now && now - f.windowStart > this.o.loginWindowMs) this.failures.delete(a);
    }
    for (const a of this.failures.keys()) {
      if (this.failures.size <= this.o.maxTrackedAddresses) break;
      this.failures.delete(a);
    }
  }
}

function dec(m: Map<string, number>, k: string): void {
  const n = (m.get(k) ?? 0) - 1;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

/** The upgrade request headers a node sends (values percent-encoded, so any UTF-8 id or token fits). */
export function upgradeHeaders(nodeId: string, token: string): Record<string, string> {
  return { [AUTHORIZATION_HEADER]: `Bearer ${encodeURIComponent(token)}`, [NODE_ID_HEADER]: encodeURIComponent(nodeId) };
}
