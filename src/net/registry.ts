/**
 * The server's memory of nodes: their masks, sample counts and statistics. It outlives
 * connections (a node that reconnects, or a server resumed from a checkpoint, does not
 * need to upload its masks again) and is part of the server checkpoint.
 */
import { decodeTensor, encodeTensor } from './codec.js';
import type { Losses, WireTensor } from './protocol.js';

/** Running per-node statistics exposed through /metrics. */
export interface NodeStats {
  connects: number;
  repliesOnTime: number;
  repliesLate: number;
  repliesDropped: number;
  /** Replies scaled down to their norm bound (aggregate.ts). */
  repliesClipped: number;
  /** Replies given no weight by 'median-trust' (their gradient pointed away from the median). */
  repliesDistrusted: number;
  framesRejected: number;
  bytesIn: number;
  bytesOut: number;
  /** Request-to-reply time of the last reply (ms). */
  lastLatencyMs: number | undefined;
  /** Exponential moving average of the latency (ms), alpha 0.2. */
  avgLatencyMs: number | undefined;
  lastLosses: Losses | undefined;
  lastRound: number | undefined;
  /** Last metrics the node sent in a status message. */
  reported: Record<string, number>;
}

/** Everything the server knows about one node. */
export interface NodeRecord {
  readonly id: string;
  sampleCount: number;
  /** Mask per key, [maskChannels, H, W] each; insertion order is the sampling order. */
  readonly masks: Map<string, Float32Array>;
  connected: boolean;
  stats: NodeStats;
}

function emptyStats(): NodeStats {
  return {
    connects: 0, repliesOnTime: 0, repliesLate: 0, repliesDropped: 0, repliesClipped: 0, repliesDistrusted: 0, framesRejected: 0, bytesIn: 0, bytesOut: 0,
    lastLatencyMs: undefined, avgLatencyMs: undefined, lastLosses: undefined, lastRound: undefined, reported: {},
  };
}

/** Serialized form of one node inside a checkpoint. */
export interface NodeSnapshot {
  id: string;
  sampleCount: number;
  keys: string[];
  /** f32 [n, C, H, W] */
  masks: WireTensor;
}

export class NodeRegistry {
  private readonly nodes = new Map<string, NodeRecord>();
  private keyCache = new Map<string, string[]>();

  /** @param maskShape [C, H, W] of every mask. */
  constructor(readonly maskShape: readonly [number, number, number]) {}

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  /** The record for `id`, created empty on first use. */
  ensure(id: string): NodeRecord {
    let r = this.nodes.get(id);
    if (!r) {
      r = { id, sampleCount: 0, masks: new Map(), connected: false, stats: emptyStats() };
      this.nodes.set(id, r);
    }
    return r;
  }

  all(): NodeRecord[] {
    return [...this.nodes.values()];
  }

  /** Add or replace masks; `data` is [keys.length, C, H, W]. Returns the node's mask total. */
  addMasks(id: string, keys: readonly string[], data: Float32Array, sampleCount: number): number {
    const r = this.ensure(id);
    const per = this.maskShape[0] * this.maskShape[1] * this.maskShape[2];
    for (let i = 0; i < keys.length; i++) r.masks.set(keys[i]!, data.slice(i * per, (i + 1) * per));
    r.sampleCount = sampleCount;
    this.keyCache.delete(id);
    return r.masks.size;
  }

  /** Keys of a node's masks (cached until the masks change). */
  keys(id: string): string[] {
    let k = this.keyCache.get(id);
    if (!k) {
      k = [...(this.nodes.get(id)?.masks.keys() ?? [])];
      this.keyCache.set(id, k);
    }
    return k;
  }

  /** Serialize all nodes (masks as f32 wire tensors). */
  snapshot(): NodeSnapshot[] {
    const [c, h, w] = this.maskShape;
    const per = c * h * w;
    return this.all().map((r) => {
      const keys = [...r.masks.keys()];
      const data = new Float32Array(keys.length * per);
      keys.forEach((k, i) => data.set(r.masks.get(k)!, i * per));
      return { id: r.id, sampleCount: r.sampleCount, keys, masks: encodeTensor(data, [keys.length, c, h, w], 'f32') };
    });
  }

  /** Replace the registry's content with `snap` (all nodes start disconnected). */
  restore(snap: readonly NodeSnapshot[]): void {
    this.nodes.clear();
    this.keyCache.clear();
    for (const s of snap) {
      const [n, c, h, w] = s.masks.shape;
      if (n !== s.keys.length || c !== this.maskShape[0] || h !== this.maskShape[1] || w !== this.maskShape[2]) {
        throw new RangeError(`checkpoint masks of node ${s.id} have shape [${s.masks.shape.join(', ')}], expected [${s.keys.length}, ${this.maskShape.join(', ')}]`);
      }
      this.addMasks(s.id, s.keys, decodeTensor(s.masks), s.sampleCount);
    }
  }
}
