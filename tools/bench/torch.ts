/**
 * PyTorch on the CPU as a peer of `npm run bench`: one long-lived `python3 torch_step.py --serve
 * --device cpu` child that builds the same G/D steps (and convolutions) and runs one of them per
 * request, so that tools/bench/harness.ts can interleave its runs with ours in the same minutes.
 * A run is timed here, around the request and its reply (the pipe adds about 0.1 ms), like the
 * other peers: the harness reads the clock, not the peer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Runner } from './harness.js';
import type { Workload } from './workloads.js';

const SCRIPT = fileURLToPath(new URL('./torch_step.py', import.meta.url));
/** What to run when python3 has no torch (scripts/setup-torch.sh does the same, idempotently). */
export const TORCH_INSTALL = "python3 -m pip install 'torch==2.13.0+cpu' numpy (or: bash scripts/setup-torch.sh)";

export interface TorchPeer {
  readonly version: string;
  readonly threads: number;
  /** Send one request, wait for its reply. */
  request(req: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): void;
}

/** Starts the PyTorch peer, or returns one line saying why there is none (with the install command). */
export async function startTorch(opts: { python?: string; threads?: number } = {}): Promise<TorchPeer | string> {
  const python = opts.python ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.error) return `no ${python} (${probe.error.message.split('\n')[0]}); PyTorch not measured`;
  if (probe.status !== 0) return `${python} has no torch; install a CPU build: ${TORCH_INSTALL}`;
  const env = { ...process.env, ...(opts.threads ? { OMP_NUM_THREADS: String(opts.threads), MKL_NUM_THREADS: String(opts.threads) } : {}) };
  const child: ChildProcess = spawn(python, [SCRIPT, '--serve', '--device', 'cpu'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const stderr: string[] = [];
  child.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  const lines: Interface = createInterface({ input: child.stdout! });
  const waiting: ((line: string | null) => void)[] = [];
  lines.on('line', (l) => waiting.shift()?.(l));
  child.once('exit', () => {
    for (const w of waiting.splice(0)) w(null);
  });
  const next = () => new Promise<string | null>((r) => waiting.push(r));
  const parse = (line: string | null): Record<string, unknown> => {
    if (line === null) throw new Error(`torch peer exited: ${stderr.join('').trim().split('\n').slice(-1)[0] ?? 'no output'}`);
    const r = JSON.parse(line) as Record<string, unknown>;
    if (r.ok !== true) throw new Error(`torch peer: ${String(r.error)}`);
    return r;
  };
  let hello: Record<string, unknown>;
  try {
    hello = parse(await next());
  } catch (e) {
    child.kill();
    return (e as Error).message;
  }
  let queue: Promise<unknown> = Promise.resolve();
  return {
    version: String(hello.torch),
    threads: Number(hello.threads),
    request(req) {
      const p = queue.then(async () => {
        child.stdin!.write(JSON.stringify(req) + '\n');
        return parse(await next());
      });
      queue = p.catch(() => undefined);
      return p;
    },
    close() {
      child.stdin!.end();
      child.kill();
    },
  };
}

/** A runner for `w` in PyTorch, or why there is none (the peer implements the G/D steps and convolutions). */
export async function torchRunner(peer: TorchPeer, w: Workload, mode: string): Promise<Runner | string> {
  switch (w.kind) {
    case 'gan':
      await peer.request({ op: 'gan', part: w.part, shape: w.gan });
      break;
    case 'conv':
      await peer.request({ op: 'conv', mode, spec: w.spec });
      break;
    default:
      return 'not implemented in the PyTorch peer';
  }
  return {
    run: async () => {
      await peer.request({ op: 'run' });
    },
    dispose: () => undefined,
  };
}
