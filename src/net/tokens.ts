/**
 * Per-node shared secrets. The token file is JSON: {"nodes": {"<nodeId>": "<token>", ...}}.
 * Comparison is constant-time on SHA-256 digests, so neither length nor content leaks
 * through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { StartupError, oneLine } from './errors.js';

export class TokenTable {
  private readonly digests = new Map<string, Buffer>();

  /** `nodes` maps node id to token; empty tokens are refused. */
  constructor(nodes: Record<string, string>) {
    for (const [id, token] of Object.entries(nodes)) {
      if (typeof token !== 'string' || token.length === 0) throw new TypeError(`token for node ${JSON.stringify(id)} must be a non-empty string`);
      this.digests.set(id, digest(token));
    }
  }

  /** Parse the JSON text of a token file. */
  static parse(json: string): TokenTable {
    const v: unknown = JSON.parse(json);
    const nodes = (v as { nodes?: unknown } | null)?.nodes;
    if (nodes === null || typeof nodes !== 'object' || Array.isArray(nodes)) throw new TypeError('token file must be {"nodes": {"<id>": "<token>"}}');
    return new TokenTable(nodes as Record<string, string>);
  }

  /**
   * Read and parse a token file. Every problem (unreadable, not JSON, wrong shape, no nodes) is a
   * StartupError whose one-line message names the file.
   */
  static async load(path: string): Promise<TokenTable> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new StartupError(`token file ${path}: cannot read it (${oneLine(e)})`);
    }
    let table: TokenTable;
    try {
      table = TokenTable.parse(text);
    } catch (e) {
      const what = e instanceof SyntaxError ? `not valid JSON (${oneLine(e)})` : oneLine(e);
      throw new StartupError(`token file ${path}: ${what}`);
    }
    if (table.size === 0) throw new StartupError(`token file ${path}: lists no nodes; add them as {"nodes": {"<id>": "<token>"}}`);
    return table;
  }

  /** Number of known node ids. */
  get size(): number {
    return this.digests.size;
  }

  /** True when `nodeId` is known and `token` is its token. */
  verify(nodeId: string, token: string): boolean {
    const want = this.digests.get(nodeId);
    const got = digest(token);
    // Compare even for unknown ids so the timing does not reveal which ids exist.
    return timingSafeEqual(want ?? got.map((b) => b ^ 0xff), got) && want !== undefined;
  }

  /** Known node ids. */
  ids(): string[] {
    return [...this.digests.keys()];
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
