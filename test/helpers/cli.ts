// Shared by the CLI signal tests: run one `asyndgan <command>`, signal it once it is under way.
import { spawn } from 'node:child_process';
import { loadSafetensors } from '../../src/io/safetensors.js';

const cli = new URL('../../bin/asyndgan.js', import.meta.url).pathname;

/**
 * Start `asyndgan <command> ...args`, send `signal` once stderr matches `ready`, and collect the
 * rest of stderr. SIGKILLs the child after `timeoutMs` so a hung run fails the test instead of tap.
 */
export function runUntilSignal(
  command: string,
  args: string[],
  signal: NodeJS.Signals,
  ready: RegExp,
  timeoutMs: number,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && ready.test(stderr)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.stdout.resume();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** The training iteration recorded in a saved state file's `asyndgan` metadata. */
export async function savedIteration(path: string): Promise<number> {
  const meta = JSON.parse((await loadSafetensors(path)).metadata.asyndgan!) as { info: { iter: number } };
  return meta.info.iter;
}
