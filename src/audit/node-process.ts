/**
 * Starts a real `asyndgan node` (bin/asyndgan.js) as a child process for the audits: the victim
 * runs the shipped node code in its own process and talks to the server only over its socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../bin/asyndgan.js', import.meta.url));

export interface NodeProcessOptions {
  url: string;
  id: string;
  token: string;
  /** Everything else: --data, --index, --nodes, --size, model and privacy flags. */
  args: readonly string[];
}

export interface NodeProcess {
  child: ChildProcess;
  /** The node's stderr so far (its log). */
  log(): string;
  /** Resolves with the exit code once the process exited. */
  exited: Promise<number>;
  /** SIGTERM, then wait for the exit. */
  stop(): Promise<number>;
}

export function startNodeProcess(o: NodeProcessOptions): NodeProcess {
  const child = spawn(process.execPath, [CLI, 'node', '--server', o.url, '--id', o.id, ...o.args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ASYNDGAN_TOKEN: o.token },
  });
  const chunks: string[] = [];
  child.stderr!.on('data', (b: Buffer) => chunks.push(b.toString()));
  child.stdout!.on('data', (b: Buffer) => chunks.push(b.toString()));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  return {
    child,
    log: () => chunks.join(''),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
