// Shared by the CLI tests: run one `asyndgan <command>` to its end, or signal it once it is under way.
import { spawn, spawnSync } from 'node:child_process';
import { loadSafetensors } from '../../src/io/safetensors.js';

const cli = new URL('../../bin/asyndgan.js', import.meta.url).pathname;

/**
 * Runs `asyndgan ...args` as an operator's shell does, its output through a real pipe (Node's own
 * 'pipe' stdio is a socket pair, where the CLI cannot drop Dawn's native adapter warnings: see
 * engine/native-stderr.ts). Returns the exit code and the non-empty lines of stdout and stderr.
 */
export function runCli(args: string[], timeoutMs = 120_000): { code: number | null; lines: string[] } {
  const r = spawnSync('sh', ['-c', '{ "$0" "$@" 2>&1; echo "@@exit=$?"; } | cat', process.execPath, cli, ...args], {
    encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ASYNDGAN_DEBUG: '' },
  });
  const all = r.stdout.split('\n').filter((l) => l.trim() !== '');
  const exit = all.pop() ?? '';
  return { code: /^@@exit=(\d+)$/.test(exit) ? Number(exit.slice(7)) : null, lines: all };
}

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
