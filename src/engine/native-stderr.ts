/**
 * Dawn prints two lines from native code whenever it enumerates adapters on drivers that report
 * huge dynamic-buffer limits (lavapipe: 1000000, NVIDIA: 500000):
 *
 *     Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 ...
 *
 * They are harmless but open every command's output. Native code writes straight to file
 * descriptor 2, beyond process.stderr's reach, so `filterNativeStderr` points fd 2 at a temporary
 * file for the duration of `work` (Linux: fd 2 is closed and the lowest free descriptor, 2, is
 * reopened, then restored through /proc/self/fd), and afterwards writes back every captured line
 * except those two. Opt-in (Engine option `quietDawnWarnings`, env ASYNDGAN_QUIET_DAWN=1; the CLI
 * sets it): a library should not touch its host's descriptors unasked. Anything that keeps it from
 * working safely (not Linux, fd 2 a socket, another descriptor taking number 2) leaves fd 2 alone.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const DAWN_LIMIT_WARNING = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/** Whether the process asked for Dawn's limit warnings to be dropped. */
export function quietDawnRequested(option: boolean | undefined): boolean {
  return option ?? process.env.ASYNDGAN_QUIET_DAWN === '1';
}

/** Runs `work` with native writes to fd 2 captured, then re-emits all but Dawn's limit warnings. */
export async function filterNativeStderr<T>(work: () => Promise<T>): Promise<T> {
  if (process.platform !== 'linux') return work();
  let saved: number;
  try {
    saved = openSync('/proc/self/fd/2', 'a'); // the same tty, pipe or file (sockets refuse: ENXIO)
  } catch {
    return work();
  }
  const capture = join(tmpdir(), `asyndgan-stderr-${process.pid}-${Date.now()}.log`);
  let swapped = false;
  try {
    closeSync(2);
    const fd = openSync(capture, 'w+', 0o600);
    swapped = fd === 2;
    if (!swapped) {
      // Something else holds a lower descriptor free (0 or 1 closed): undo at once.
      closeSync(fd);
      reopenAs2(saved);
    }
  } catch {
    reopenAs2(saved);
    closeSync(saved);
    return work();
  }
  try {
    return await work();
  } finally {
    if (swapped) {
      closeSync(2);
      reopenAs2(saved);
    }
    closeSync(saved);
    let text = '';
    try {
      text = readFileSync(capture, 'utf8');
    } catch {
      /* nothing captured */
    }
    rmSync(capture, { force: true });
    const kept = text.split('\n').filter((l) => l !== '' && !DAWN_LIMIT_WARNING.test(l));
    if (kept.length > 0) writeSync(2, `${kept.join('\n')}\n`);
  }
}

function reopenAs2(saved: number): void {
  const fd = openSync(`/proc/self/fd/${saved}`, 'a');
  if (fd !== 2) {
    // Cannot happen unless a descriptor below 2 was closed; keep what we have rather than guess.
    closeSync(fd);
  }
}
