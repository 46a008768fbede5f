/**
 * Where server and node checkpoints go. A store holds one blob; saving replaces it
 * atomically, so a crash mid-save leaves the previous checkpoint intact.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** One-blob checkpoint storage. */
export interface CheckpointStore {
  /** Replace the stored checkpoint with `data`; on return it is durable. */
  save(data: Uint8Array): Promise<void>;
  /** The last saved checkpoint, or undefined when there is none. */
  load(): Promise<Uint8Array | undefined>;
}

/** Keeps the checkpoint in memory (tests, or a caller that persists it elsewhere). */
export class MemoryCheckpointStore implements CheckpointStore {
  private data: Uint8Array | undefined;
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

/**
 * File `<dir>/<name>`, written atomically: temp file in the same directory, fsync, rename
 * over the target, fsync the directory (so the rename itself survives a power loss).
 */
export class FileCheckpointStore implements CheckpointStore {
  readonly path: string;
  private seq = 0;
  constructor(readonly dir: string, readonly name = 'checkpoint.msgpack') {
    this.path = join(dir, name);
  }

  async save(data: Uint8Array): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${this.name}.${process.pid}.${++this.seq}.tmp`);
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(data);
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
  }

  async load(): Promise<Uint8Array | undefined> {
    try {
      return new Uint8Array(await readFile(this.path));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
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
