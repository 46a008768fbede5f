/**
 * `node --import tsx tools/hostile-connections.ts [--connections 2000] [--part-mib 1] [--seconds 60]`
 * `node --import tsx tools/hostile-connections.ts --guess 10`
 *
 * Memory and login-guessing under hostile, unauthenticated peers, against a real server started
 * in a child process (loopback only, default 64 MiB frames, a stand-in generator).
 *
 * Flood (default): opens N connections that each send a WebSocket upgrade with a wrong token,
 * then, on the server's answer, the header of a 120 MiB binary frame and `--part-mib` MiB of its payload,
 * and keeps them open until all N have been tried. Prints one line with the server's RSS before,
 * after and at peak (VmHWM), and how the upgrades were answered. The process raises its open-file
 * limit itself when it can (it re-executes under `ulimit -n`).
 *
 * `--hold`: each connection instead sends an upgrade request whose headers never end plus 1 MiB
 * of header-like bytes, and stays open (slowloris), so all N are open at once when RSS is read.
 *
 * Guess (`--guess S`): for S seconds, one address tries wrong tokens as fast as it can. Prints
 * how many tokens the server actually checked per second (401) and how many it refused unchecked
 * because of the lockout (429).
 *
 * Bounded: at most `--connections` sockets (<= 20000), `--seconds` wall time (<= 600).
 */
import { execFileSync, fork, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values: v } = parseArgs({
  options: {
    connections: { type: 'string', default: '2000' },
    'part-mib': { type: 'string', default: '1' },
    seconds: { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '200' },
    guess: { type: 'string' },
    child: { type: 'boolean', default: false },
    'no-raise': { type: 'boolean', default: false },
    hold: { type: 'boolean', default: false },
  },
});

const GiB = 2 ** 30;

/** Child: a real server with a stand-in generator; reports its port over IPC. */
async function runServer(): Promise<void> {
  const { startServer } = await import('../src/net/server.js');
  const n = 4 * 8 * 8;
  const server = await startServer({
    generator: {
      generate: async (b) => new Float32Array(b.shape[0] * n),
      applyGradients: async () => {},
      saveState: async () => new Uint8Array(0),
      loadState: async () => {},
    },
    tokens: { alpha: 'the-real-token-of-alpha-0123456789' },
    session: { maskChannels: 1, imageChannels: 4, height: 8, width: 8, batchSize: 1 },
    host: '127.0.0.1',
    port: 0,
    checkpointEvery: 0,
  });
  process.send!({ port: server.port });
  process.on('message', () => void server.stop().then(() => process.exit(0)));
}

async function main(): Promise<void> {
  const want = Math.min(20000, Number(v.connections));
  const seconds = Math.min(600, Number(v.seconds));
  if (v.guess === undefined && !v['no-raise']) raiseFileLimit(want + 256);
  const child = fork(process.argv[1]!, ['--child'], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port));
    child.once('exit', (c) => reject(new Error(`server exited (${c})`)));
  });
  try {
    if (v.guess !== undefined) await guess(port, Math.min(600, Number(v.guess)));
    else await flood(child, port, want, Number(v['part-mib']), seconds, Number(v.concurrency));
  } finally {
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
  }
}

/** Re-execute under a higher `ulimit -n` when the current one is too low for `need` sockets. */
function raiseFileLimit(need: number): void {
  const soft = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim());
  if (!(soft < need)) return;
  const hard = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
  const target = hard === 'unlimited' ? need : Math.min(need, Number(hard));
  if (target <= soft) {
    console.error(`open-file limit ${soft} (hard ${hard}) is below ${need}: fewer connections will open`);
    return;
  }
  const args = [...process.execArgv, ...process.argv.slice(1), '--no-raise'].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('sh', ['-c', `ulimit -n ${target} && exec '${process.execPath}' ${args}`], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

function rssOf(pid: number): { rss: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}


async function flood(child: ChildProcess, port: number, n: number, partMiB: number, seconds: number, concurrency: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 500));
  const before = rssOf(child.pid!);
  const deadline = Date.now() + seconds * 1000;
  const answers = new Map<string, number>();
  const sockets: Socket[] = [];
  const frameLen = 120 * 2 ** 20;
  // Client-to-server frames are masked: FIN + binary, mask bit + 127, 64-bit length, mask key.
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(frameLen), 2);
  const part = Buffer.alloc(Math.round(partMiB * 2 ** 20), 0x5a);
  let started = 0;
  const one = (): Promise<void> => new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    sockets.push(s);
    let got = '';
    const done = (what: string): void => {
      if (got) return;
      got = what;
      answers.set(what, (answers.get(what) ?? 0) + 1);
      resolve();
    };
    // The server answers and closes while we are still sending: the answer may come with a reset.
    let status: string | undefined;
    let error: string | undefined;
    s.on('error', (e: NodeJS.ErrnoException) => (error ??= `error ${e.code ?? e.message}`));
    s.on('data', (d: Buffer) => {
      if (status) return;
      status = `HTTP ${/^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1] ?? 'other'}`;
      // Whatever the answer, try to send the frame (admitted: it goes on the WebSocket; refused:
      // it meets a closed connection).
      s.write(Buffer.concat([header, part]), () => done(status!));
    });
    s.on('close', () => done(status ?? error ?? 'closed without answer'));
    s.setTimeout(Math.max(1000, deadline - Date.now()), () => done(status ? `${status}, still open` : 'no answer (timeout)'));
    s.on('connect', () => {
      if (v.hold) {
        s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nX-Pad: `);
        s.write(part);
        resolve(); // counted at the end: open or closed by the server
        return;
      }
      s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${Buffer.alloc(16, started % 251).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
        `X-Asyndgan-Node: alpha\r\nAuthorization: Bearer guess-${started}\r\n\r\n`);
    });
  });
  const running = new Set<Promise<void>>();
  while (started < n && Date.now() < deadline) {
    started++;
    const p = one().finally(() => running.delete(p));
    running.add(p);
    if (running.size >= concurrency) await Promise.race(running);
  }
  await Promise.all(running);
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssOf(child.pid!);
  const open = sockets.filter((s) => !s.destroyed && !s.readableEnded).length;
  for (const s of sockets) s.destroy();
  const tally = [...answers].sort().map(([k, c]) => `${k}: ${c}`).join(', ');
  const what = v.hold ? `an unfinished upgrade request + ${partMiB} MiB of header bytes, held open` : `an upgrade with a wrong token + ${partMiB} MiB of a 120 MiB frame`;
  console.log(`hostile-connections: ${started} unauthenticated connections, each ${what}; ` +
    `server RSS before ${(before.rss / GiB).toFixed(3)} GiB, after ${(after.rss / GiB).toFixed(3)} GiB, peak ${(after.peak / GiB).toFixed(3)} GiB; ` +
    `answers {${tally}}; ${open} still open at the end`);
}

/** One address trying wrong tokens back to back. */
async function guess(port: number, seconds: number): Promise<void> {
  const { upgradeHeaders } = await import('../src/net/admission.js');
  const end = Date.now() + seconds * 1000;
  const counts = new Map<number, number>();
  let i = 0;
  while (Date.now() < end) {
    const status = await new Promise<number>((resolve) => {
      const h = upgradeHeaders('alpha', `guess-${i++}`);
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
          `Sec-WebSocket-Version: 13\r\nX-Asyndgan-Node: ${h['x-asyndgan-node']}\r\nAuthorization: ${h.authorization}\r\n\r\n`);
      });
      s.once('data', (d: Buffer) => {
        resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1] ?? 0));
        s.destroy();
      });
      s.once('error', () => resolve(-1));
    });
    counts.set(status, (counts.get(status) ?? 0) + 1);
  }
  const checked = counts.get(401) ?? 0;
  console.log(`hostile-connections --guess: ${i} wrong-token attempts in ${seconds} s from one address; ` +
    `${checked} checked by the server (${(checked / seconds).toFixed(2)} guesses/s), ${counts.get(429) ?? 0} refused unchecked (429, locked out); ` +
    `statuses ${JSON.stringify(Object.fromEntries(counts))}`);
}

if (v.child) await runServer();
else await main();
