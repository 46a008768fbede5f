/**
 * The server's connections and which node each one speaks for: authentication of a hello
 * (token, the transport's identity, the duplicate-id policy, the node's modalities) and the
 * one live connection per node id. The coordinator asks it who is connected; it never sends a
 * frame itself.
 */
import type { Logger } from './log.js';
import { safeLog } from './log.js';
import { modalityChannelsOnWire } from './modalities.js';
import { ProtocolError, type Dtype, type HelloMsg } from './protocol.js';
import type { TokenTable } from './tokens.js';

/** A transport connection as the coordinator sees it. */
export interface Connection {
  /** Send one binary frame; false when it could not be queued (closed, backpressure limit). */
  send(bytes: Uint8Array): boolean;
  /** Close (after flushing what was sent). May call Coordinator.detach synchronously. */
  close(code: number, reason: string): void;
}

/** Per-connection state. Opaque to transports. */
export class ConnHandle {
  nodeId: string | undefined;
  authed = false;
  closed = false;
  errors = 0;
  dtype: Dtype = 'f32';
  helloTimer: NodeJS.Timeout | undefined;
  /** `identity`: the node id the transport already authenticated (server.ts: in the HTTP upgrade). */
  constructor(readonly conn: Connection, readonly remote: string, readonly identity?: string) {}
}

export interface SessionsOptions {
  tokens: TokenTable;
  /** What a hello for an already connected id does. */
  onDuplicateId: 'refuse' | 'replace';
  /** The generator's image channel names, when it has them (config.modalities). */
  modalities: readonly string[] | undefined;
  imageChannels: number;
  log: Logger;
}

export class Sessions {
  /** Every open connection, authenticated or not. */
  readonly handles = new Set<ConnHandle>();
  private readonly byNode = new Map<string, ConnHandle>();
  /** Channels each node said it holds (hello), for nodes holding a subset. */
  private readonly heldChannels = new Map<string, number[]>();

  constructor(private readonly o: SessionsOptions) {}

  /** The live connection of `nodeId`, if any. */
  connectionOf(nodeId: string): ConnHandle | undefined {
    return this.byNode.get(nodeId);
  }

  /** Authenticated, open connections by node id. */
  *connected(): IterableIterator<[string, ConnHandle]> {
    for (const [id, h] of this.byNode) if (!h.closed) yield [id, h];
  }

  /** Image channels `nodeId` holds; undefined: all of them. */
  channelsOf(nodeId: string): readonly number[] | undefined {
    return this.heldChannels.get(nodeId);
  }

  /** Forget a closed connection. Returns the node id it was the live connection of, if it was. */
  remove(h: ConnHandle): string | undefined {
    if (!this.handles.delete(h)) return undefined;
    const id = h.nodeId;
    if (id === undefined || this.byNode.get(id) !== h) return undefined;
    this.byNode.delete(id);
    return id;
  }

  /**
   * Check `msg` on connection `h`. Throws a fatal ProtocolError (auth_failed, identity_in_use,
   * invalid_field on modalities). Returns the connection it would displace under 'replace': the
   * caller tells it `replaced` and detaches it, then calls bind().
   */
  authenticate(h: ConnHandle, msg: HelloMsg): ConnHandle | undefined {
    const log = this.o.log;
    if (h.identity !== undefined && msg.nodeId !== h.identity) {
      safeLog(log, 'warn', 'hello names another node than the connection authenticated', { nodeId: h.identity, hello: msg.nodeId, remote: h.remote });
      throw new ProtocolError('auth_failed', 'hello nodeId differs from the node id this connection authenticated as', { field: 'nodeId', offendingType: 'hello', fatal: true });
    }
    if (!this.o.tokens.verify(msg.nodeId, msg.token)) {
      safeLog(log, 'warn', 'authentication failed', { nodeId: msg.nodeId, remote: h.remote });
      throw new ProtocolError('auth_failed', 'unknown node id or wrong token', { offendingType: 'hello', fatal: true });
    }
    const previous = this.byNode.get(msg.nodeId);
    const replacing = previous !== undefined && previous !== h && !previous.closed;
    if (replacing && this.o.onDuplicateId === 'refuse') {
      // A leaked token must not evict the real node; the newcomer may retry once the id is free.
      safeLog(log, 'warn', 'second connection for a connected node refused', { nodeId: msg.nodeId, remote: h.remote, connected: previous.remote });
      throw new ProtocolError('identity_in_use', `node ${JSON.stringify(msg.nodeId)} is already connected; retry once that connection has closed`, { offendingType: 'hello', fatal: true });
    }
    // The node's modalities decide where its gradient counts: unknown names cannot be weighted.
    const names = msg.capabilities.modalities;
    let held: number[] | undefined;
    if (names && this.o.modalities) {
      try {
        held = modalityChannelsOnWire(this.o.modalities, names).sort((a, b) => a - b);
      } catch (e) {
        safeLog(log, 'warn', 'modalities refused', { nodeId: msg.nodeId, error: (e as Error).message });
        throw new ProtocolError('invalid_field', `capabilities.modalities: ${(e as Error).message}`, { field: 'capabilities.modalities', offendingType: 'hello', fatal: true });
      }
    }
    if (held && held.length < this.o.imageChannels) this.heldChannels.set(msg.nodeId, held);
    else this.heldChannels.delete(msg.nodeId);
    if (replacing) safeLog(log, 'warn', 'node replaced by a new connection (onDuplicateId: replace)', { nodeId: msg.nodeId, remote: h.remote, old: previous.remote });
    return replacing ? previous : undefined;
  }

  /** Make `h` the live connection of the node its (authenticated) hello named. */
  bind(h: ConnHandle, msg: HelloMsg, wireDtype: Dtype): void {
    clearTimeout(h.helloTimer);
    h.authed = true;
    h.nodeId = msg.nodeId;
    h.dtype = msg.capabilities.dtypes.includes(wireDtype) ? wireDtype : 'f32';
    this.byNode.set(msg.nodeId, h);
  }
}
