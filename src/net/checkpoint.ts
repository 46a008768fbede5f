/**
 * Where server and node checkpoints go. A store holds one blob; saving replaces it
 * atomically, so a crash mid-save leaves the previous checkpoint intact.
 *
 * File format: the 16 bytes `ASYNDGAN-CKPT-1\n`, the SHA-256 of the payload (32 bytes), then
 * the payload. A file whose checksum does not match is refused with a one-line error naming
 * it. Files without the header (written before checksums existed) still load, with a warning;
 * the next save rewrites them with one.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StartupError, oneLine } from './errors.js';
import { safeLog, silentLogger, type Logger } from './log.js';

/** One-blob checkpoint storage. */
export interface CheckpointStore {
  /** Replace the stored checkpoint with `data`; on return it is durable. */
  save(data: Uint8Array): Promise<void>;
  /** The last saved checkpoint, or undefined when there is none. */
  load(): Promise<Uint8Array | undefined>;
  /** Where it is, for error messages (a file path). */
  readonly location?: string;
}

/** Keeps the checkpoint in memory (tests, or a caller that persists it elsewhere). */
export class MemoryCheckpointStore implements CheckpointStore {
  private data: Uint8Array | undefined;
  readonly location = 'memory';
  /** Number of completed saves. */
  saves = 0;
  async save(data: Uint8Array): Promise<void> {
    this.data = new Uint8Array(data);
    this.saves++;
  }
  async load(): Promise<Uint8Array | undefined> {
    return this.data ? new Uint8Array(this.data) : undefined;
  }
}

export const CHECKPOINT_MAGIC = new TextEncoder().encode('ASYNDGAN-CKPT-1\n');
const HEADER_BYTES = CHECKPOINT_MAGIC.length + 32;

/** The bytes written to a checkpoint file for `payload`: magic, SHA-256, payload. */
export function sealCheckpoint(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out.set(CHECKPOINT_MAGIC, 0);
  out.set(createHash('sha256').update(payload).digest(), CHECKPOINT_MAGIC.length);
  out.set(payload, HEADER_BYTES);
  return out;
}

/**
 * The payload of checkpoint file bytes, checked. `legacy` when the file predates the header.
 * Throws a StartupError naming `where` on a checksum mismatch or a truncated header.
 */
export function openCheckpoint(bytes: Uint8Array, where: string): { payload: Uint8Array; legacy: boolean } {
  const m = CHECKPOINT_MAGIC;
  const hasMagic = bytes.length >= m.length && m.every((b, i) => bytes[i] === b);
  if (!hasMagic) {
    if (bytes.length === 0) throw new StartupError(`checkpoint ${where}: the file is empty (a crash of an older version?); move it away to start fresh`);
    return { payload: bytes, legacy: true };
  }
  if (bytes.length < HEADER_BYTES) throw new StartupError(`checkpoint ${where}: truncated (${bytes.length} bytes, the header alone is ${HEADER_BYTES})`);
  const want = bytes.subarray(m.length, HEADER_BYTES);
  const payload = bytes.subarray(HEADER_BYTES);
  const got = createHash('sha256').update(payload).digest();
  if (!got.equals(want)) {
    throw new StartupError(`checkpoint ${where}: checksum mismatch (the file is corrupt or was modified: sha256 ${got.toString('hex').slice(0, 16)}..., header says ${Buffer.from(want).toString('hex').slice(0, 16)}...); restore a backup or move it away to start fresh`);
  }
  return { payload, legacy: false };
}

export interface FileCheckpointOptions {
  /** Warnings (a checkpoint without checksum, leftovers removed). */
  log?: Logger;
  /** Older names of the same checkpoint, read when `name` is absent (then removed after the first save). */
  legacyNames?: readonly string[];
}

/**
 * File `<dir>/<name>`, written atomically: temp file in the same directory, fsync, rename
 * over the target, fsync the directory (so the rename itself survives a power loss).
 * The first load() (at startup) removes temp files left by a crashed writer of this store.
 */
export class FileCheckpointStore implements CheckpointStore {
  readonly path: string;
  private seq = 0;
  private cleaned = false;
  private readonly log: Logger;
  private migrateFrom: string | undefined;
  constructor(readonly dir: string, readonly name = 'checkpoint.msgpack', private readonly opts: FileCheckpointOptions = {}) {
    this.path = join(dir, name);
    this.log = opts.log ?? silentLogger;
  }

  get location(): string {
    return this.path;
  }

  async save(data: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${this.name}.${process.pid}.${++this.seq}.tmp`);
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(sealCheckpoint(data));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await syncDir(this.dir);
    if (this.migrateFrom) {
      await rm(join(this.dir, this.migrateFrom), { force: true });
      this.migrateFrom = undefined;
    }
  }

  async load(): Promise<Uint8Array | undefined> {
    await this.removeLeftovers();
    let path = this.path;
    let bytes = await readIfExists(path);
    for (const old of this.opts.legacyNames ?? []) {
      if (bytes) break;
      path = join(this.dir, old);
      bytes = await readIfExists(path);
      if (bytes) {
        this.migrateFrom = old;
        safeLog(this.log, 'info', 'checkpoint found under its older name; it moves on the next save', { from: path, to: this.path });
      }
    }
    if (!bytes) return undefined;
    const { payload, legacy } = openCheckpoint(bytes, path);
    if (legacy) safeLog(this.log, 'warn', 'checkpoint has no checksum (written by an older version); the next save adds one', { path });
    return payload;
  }

  /** Delete `.<name>.<pid>.<seq>.tmp` files of crashed writers (not of a live other process). */
  private async removeLeftovers(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return; // no directory yet: nothing left over
    }
    const prefix = `.${this.name}.`;
    for (const n of names) {
      if (!n.startsWith(prefix) || !n.endsWith('.tmp')) continue;
      const m = /^(\d+)\.\d+\.tmp$/.exec(n.slice(prefix.length));
      if (!m) continue;
      const pid = Number(m[1]);
      // Our own pid: left by an earlier process that had it (we have not saved yet).
      if (pid !== process.pid && processAlive(pid)) continue;
      try {
        await rm(join(this.dir, n), { force: true });
        safeLog(this.log, 'info', 'removed a temp file left by an interrupted checkpoint', { file: join(this.dir, n) });
      } catch (e) {
        safeLog(this.log, 'warn', 'cannot remove a leftover checkpoint temp file', { file: join(this.dir, n), error: oneLine(e) });
      }
    }
  }
}

/**
 * File name of a node's file of one `kind` ('checkpoint', 'privacy'): a readable prefix of the
 * id plus a hash of all of it, so any allowed id (256 characters, or non-ASCII) fits the usual
 * 255-byte limit, with room for the temp-file suffix.
 */
export function nodeFileName(nodeId: string, kind: string): string {
  const readable = nodeId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(nodeId, 'utf8').digest('hex').slice(0, 16);
  return `node-${readable}-${hash}-${kind}.msgpack`;
}

/** The node's discriminator checkpoint file name. */
export function nodeCheckpointName(nodeId: string): string {
  return nodeFileName(nodeId, 'checkpoint');
}

/** The names used before nodeFileName (percent-encoded id; still read, when they fit). */
export function legacyNodeFileNames(nodeId: string, kind = 'checkpoint'): string[] {
  const old = `node-${encodeURIComponent(nodeId)}-${kind}.msgpack`;
  return Buffer.byteLength(old) <= 200 ? [old] : [];
}

/** legacyNodeFileNames for the discriminator checkpoint. */
export function legacyNodeCheckpointNames(nodeId: string): string[] {
  return legacyNodeFileNames(nodeId, 'checkpoint');
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StartupError(`checkpoint ${path}: cannot read it (${oneLine(e)})`);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDir(dir: string): Promise<void> {
  // Directory fsync is unsupported on some platforms/filesystems; the rename is still atomic there.
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}
