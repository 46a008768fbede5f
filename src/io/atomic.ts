/**
 * Crash-safe file replacement.
 *
 * A checkpoint or result file must never be seen half-written: a crash (or a full disk) during
 * `fs.writeFile` leaves a truncated file where a good one used to be. Instead we write a temporary
 * file next to the target, flush it to disk, and `rename` it over the target: on POSIX file systems
 * rename within one directory is atomic, so readers see either the whole old file or the whole new
 * one. The directory is fsynced afterwards so the rename itself survives a power cut.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Atomically replace `path` with `data` (a string is written as UTF-8).
 *
 * Steps: write `.<name>.<random>.tmp` in the same directory (same file system, so rename is
 * atomic), fsync it, rename it over `path`, fsync the directory. On any failure the temporary file
 * is removed, the previous content of `path` (if any) is left untouched, and the error is rethrown.
 * An existing target's permission bits are carried over to the new file.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let mode: number | undefined;
  try {
    mode = (await stat(path)).mode & 0o7777;
  } catch {
    mode = undefined; // no previous file: default mode (0o666 minus umask)
  }
  let created = false;
  try {
    // 'wx': fail rather than clobber if the random name somehow exists.
    const fh = await open(tmp, 'wx', mode ?? 0o666);
    created = true;
    try {
      // FileHandle.write may write less than asked: loop until everything is out.
      let off = 0;
      while (off < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, off, bytes.byteLength - off);
        if (bytesWritten <= 0) throw new Error(`writeFileAtomic: write to ${tmp} made no progress`);
        off += bytesWritten;
      }
      // open()'s mode is masked by umask; chmod restores the old file's exact bits.
      if (mode !== undefined) await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    created = false;
  } catch (err) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

/**
 * Atomically write `value` as JSON (2-space indented, trailing newline) to `path`.
 * Throws before touching the disk if `value` cannot be serialised (e.g. a BigInt or a cycle).
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`writeJsonAtomic: value for ${path} is not JSON-serialisable`);
  await writeFileAtomic(path, text + '\n');
}

/** fsync a directory so a rename in it is durable. Some platforms/file systems refuse this: ignore. */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Directory fsync is unsupported on Windows and on some network/FUSE file systems.
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}
