/**
 * `npm run demo` / `asyndgan demo`: a whole federation on this machine. A generator server and
 * three discriminator nodes run as separate processes talking only over WebSocket on loopback;
 * each node holds one hospital's share of the embedded phantom data. Shows progress with an ETA,
 * then writes OUT/demo.png (per node: masks, real and synthetic images) and OUT/demo-report.json
 * (rounds, losses, bytes per round, and what FedAvg would have sent for the same models).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, noGrad, tensor, tidy } from '../engine/index.js';
import { conditionTensor } from '../data/index.js';
import { writeJsonAtomic } from '../io/index.js';
import { loadModule } from '../models/index.js';
import { makeDiscriminator, makeGenerator } from '../train/pix2pix.js';
import { modalityChannels, modalityNames } from '../train/modalities.js';
import { loadDataSource } from './data-source.js';
import { ganConfigForRounds, GAN_OPTIONS, int, parseOptions, UsageError } from './options.js';
import { Progress } from './progress.js';
import { DEFAULT_PRIVACY_PRESET, PRIVACY_PRESETS, describeReportedPrivacy, type ReportedPrivacy } from '../privacy/index.js';
import { writeSampleGrid } from './samples.js';

const CLI = fileURLToPath(new URL('../../bin/asyndgan.js', import.meta.url));

export async function demoCommand(argv: string[]): Promise<void> {
  const v = parseOptions('demo', '[options]', {
    data: { type: 'string', default: 'phantom', help: 'data set split across the nodes' },
    nodes: { type: 'string', default: '3', help: 'number of hospitals (node processes)' },
    size: { type: 'string', default: '32', help: 'image size (use 64..256 on a GPU)' },
    'batch-size': { type: 'string', default: '4', help: 'masks per node per round' },
    rounds: { type: 'string', default: '150', help: 'training rounds' },
    out: { type: 'string', default: 'runs/demo', help: 'output folder' },
    port: { type: 'string', default: '0', help: "the server's port on loopback (0 = a free one; the demo prints the /metrics URL)" },
    ...GAN_OPTIONS,
    ngf: { type: 'string', default: '12', help: 'generator filters (reference 64)' },
    ndf: { type: 'string', default: '12', help: 'discriminator filters (reference 64)' },
    blocks: { type: 'string', default: '3', help: 'generator residual blocks (reference 9)' },
    'decay-iters': { type: 'string', default: '50', help: 'final rounds with linear lr decay' },
    'node-modalities': { type: 'string', help: 'modalities each node holds, \';\' between nodes, e.g. "t1,t2;t1;flair,t2" (default: all)' },
    'per-modality-d': { type: 'boolean', default: false, help: 'nodes use one discriminator per held modality (with --node-modalities)' },
    privacy: { type: 'string', default: DEFAULT_PRIVACY_PRESET, help: `every node's privacy preset: ${PRIVACY_PRESETS.join(' | ')} (docs/PRIVACY.md)` },
  }, argv);
  const privacy = String(v.privacy);
  if (!(PRIVACY_PRESETS as readonly string[]).includes(privacy)) throw new UsageError(`--privacy must be one of ${PRIVACY_PRESETS.join(', ')}, got "${privacy}"`);
  const out = resolve(String(v.out));
  mkdirSync(out, { recursive: true });
  const cfg = ganConfigForRounds(v, int(v, 'rounds'));
  const nodes = int(v, 'nodes');
  const rounds = int(v, 'rounds');
  const size = int(v, 'size');
  const data = await loadDataSource(String(v.data), { size, nodes, seed: cfg.seed });
  const nodeModalities = v['node-modalities'] !== undefined ? parseNodeModalities(String(v['node-modalities']), nodes, data.test.modalities) : undefined;
  const perModalityD = Boolean(v['per-modality-d']);
  const model = ['--ngf', v.ngf, '--ndf', v.ndf, '--d-layers', v['d-layers'], '--blocks', v.blocks, '--norm', v.norm, '--lambda-l1', v['lambda-l1'],
    '--lr', v.lr, '--beta1', v.beta1, '--seed', v.seed, '--decay-iters', v['decay-iters'],
    // The nodes' discriminator learning-rate schedule must span the same rounds as the server's.
    '--iters', rounds, ...(v['no-dropout'] ? ['--no-dropout'] : [])].map(String);

  // Per-node tokens, written for the server only.
  const ids = [...Array(nodes).keys()].map((i) => `hospital-${String.fromCharCode(97 + i)}`);
  const tokens = Object.fromEntries(ids.map((id) => [id, randomBytes(16).toString('hex')]));
  const tokenFile = join(out, 'tokens.json');
  writeFileSync(tokenFile, JSON.stringify({ nodes: tokens }, null, 2), { mode: 0o600 });

  const children: ChildProcess[] = [];
  const killAll = () => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  process.once('SIGINT', () => {
    killAll();
    process.exit(130);
  });
  const logFile = (name: string) => join(out, `${name}.log`);
  const started = Date.now();
  console.error(`asyndgan demo: 1 server + ${nodes} nodes on loopback, ${rounds} rounds at ${size}x${size}, node privacy ${privacy}; logs in ${out}`);
  if (nodeModalities) {
    console.error(`node modalities: ${ids.map((id, i) => `${id} [${nodeModalities[i]!.join(', ')}]`).join(', ')}${perModalityD ? ', one discriminator per modality' : ''}`);
  }
  try {
    const server = spawn(process.execPath, [CLI, 'server', '--tokens', tokenFile, '--port', String(int(v, 'port')), '--classes', String(data.test.numClasses),
      '--class-names', data.test.classNames.join(','), '--modalities', data.test.modalities.join(','), '--size', String(size),
      '--batch-size', String(v['batch-size']), '--rounds', String(rounds), '--out', out, '--checkpoint-dir', join(out, 'checkpoints'),
      '--exit-when-done', '--quiet', ...model], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    const serverLog: string[] = [];
    server.stderr!.on('data', (b: Buffer) => serverLog.push(b.toString()));
    const url = await new Promise<string>((resolveUrl, reject) => {
      let buf = '';
      server.stdout!.on('data', (b: Buffer) => {
        buf += b.toString();
        const m = /listening: (\S+)/.exec(buf);
        if (m) resolveUrl(m[1]!);
      });
      server.once('exit', (code) => reject(new Error(`server exited with code ${code}:\n${serverLog.join('').slice(-2000)}`)));
    });
    const httpUrl = url.replace(/^ws/, 'http').replace(/\/ws$/, '');
    console.error(`asyndgan demo: server ${url} (metrics: ${httpUrl}/metrics, Prometheus: ${httpUrl}/metrics?format=prometheus)`);
    ids.forEach((id, i) => {
      const child = spawn(process.execPath, [CLI, 'node', '--server', url, '--id', id, '--index', String(i), '--nodes', String(nodes),
        '--data', String(v.data), '--size', String(size), '--quiet', '--checkpoint-dir', join(out, 'checkpoints'), '--privacy', privacy, ...model,
        ...(nodeModalities ? ['--modalities', nodeModalities[i]!.join(',')] : []), ...(perModalityD ? ['--per-modality-d'] : [])],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ASYNDGAN_TOKEN: tokens[id] } });
      const chunks: string[] = [];
      child.stderr!.on('data', (b: Buffer) => chunks.push(b.toString()));
      child.once('exit', () => writeFileSync(logFile(id), chunks.join('')));
      children.push(child);
    });

    // Progress from the server's /metrics endpoint.
    const progress = new Progress({ total: rounds, label: 'federated rounds', unit: 'round' });
    const serverDone = new Promise<number>((r) => server.once('exit', (code) => r(code ?? 1)));
    let exitCode: number | undefined;
    void serverDone.then((c) => (exitCode = c));
    while (exitCode === undefined) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        const m = (await (await fetch(`${httpUrl}/metrics`)).json()) as { round: number; nodesConnected: number; lastRound?: { losses?: { gL1: number; gGan: number } } };
        const l = m.lastRound?.losses;
        // Nodes under a privacy preset withhold their losses (they are exact functions of the images).
        progress.update(m.round, { nodes: m.nodesConnected, ...(l && privacy === 'off' ? { L1: l.gL1.toFixed(3), G: l.gGan.toFixed(3) } : {}) });
      } catch {
        // The server may be finishing; its exit ends the loop.
      }
    }
    writeFileSync(logFile('server'), serverLog.join(''));
    if (exitCode !== 0) throw new Error(`server exited with code ${exitCode}; see ${logFile('server')}`);
    progress.finish();
  } finally {
    killAll();
  }

  // Pictures: the final generator on each node's masks (rendered here only because this demo owns
  // all the data; in a real federation each hospital would render its own).
  await init();
  const g = makeGenerator(cfg, data.test.numClasses, data.test.modalities.length);
  await loadModule(join(out, 'generator.safetensors'), g);
  g.eval();
  const rows = [];
  for (const [k, ds] of data.nodes.entries()) {
    const slices = ds.slices.slice(0, 2);
    const fake = noGrad(() => tidy(() => g.forward(tensor(conditionTensor(slices, ds.numClasses), [slices.length, ds.numClasses, size, size]))));
    const values = await fake.read();
    fake.dispose();
    const plane = ds.modalities.length * size * size;
    rows.push(...slices.map((slice, i) => ({ label: `${ids[k]}`, slice, fake: values.subarray(i * plane, (i + 1) * plane) })));
  }
  const grid = join(out, 'demo.png');
  await writeSampleGrid(grid, rows, size, size, `AsynDGAN: one generator, ${nodes} hospitals, ${rounds} rounds`);

  const serverReport = JSON.parse(readFileSync(join(out, 'server-report.json'), 'utf8')) as {
    history: { round: number; bytesIn: number; bytesOut: number; losses: Record<string, number>; onTime: string[] }[];
    privacy?: Record<string, ReportedPrivacy>;
  };
  const paramsG = g.numParameters();
  // Each node's discriminator(s): joint on mask + its held channels, or one per held modality.
  const dParams = new Map<number, number>();
  const paramsOf = (inChannels: number) => {
    if (!dParams.has(inChannels)) {
      const d = makeDiscriminator(cfg, inChannels, 0);
      dParams.set(inChannels, d.numParameters());
      d.dispose();
    }
    return dParams.get(inChannels)!;
  };
  const C = data.test.numClasses;
  const paramsPerNode = ids.map((_, i) => {
    const held = nodeModalities?.[i]?.length ?? data.test.modalities.length;
    return perModalityD ? held * paramsOf(C + 1) : paramsOf(C + held);
  });
  const history = serverReport.history;
  const meanBytes = history.reduce((s, h) => s + h.bytesIn + h.bytesOut, 0) / Math.max(history.length, 1);
  // FedAvg on the same models: every node downloads and uploads G and its D (f32) every round.
  const fedAvgBytes = paramsPerNode.reduce((s, paramsD) => s + 2 * (paramsG + paramsD) * 4, 0);
  const report = join(out, 'demo-report.json');
  await writeJsonAtomic(report, {
    data: data.name,
    nodes: ids,
    rounds,
    size,
    config: cfg,
    seconds: (Date.now() - started) / 1000,
    ...(nodeModalities ? { nodeModalities: Object.fromEntries(ids.map((id, i) => [id, nodeModalities[i]!])) } : {}),
    perModalityD,
    parameters: { generator: paramsG, discriminatorPerNode: Math.max(...paramsPerNode), discriminatorsByNode: Object.fromEntries(ids.map((id, i) => [id, paramsPerNode[i]!])) },
    privacy: { preset: privacy, nodes: serverReport.privacy ?? {} },
    bytesPerRound: { asyndgan: meanBytes, fedAvgSameModels: fedAvgBytes, ratio: fedAvgBytes / Math.max(meanBytes, 1) },
    losses: history.map((h) => ({ round: h.round, ...h.losses, nodes: h.onTime.length })),
    bytes: history.map((h) => ({ round: h.round, in: h.bytesIn, out: h.bytesOut })),
    files: { grid, generator: join(out, 'generator.safetensors'), serverReport: join(out, 'server-report.json') },
  });
  console.log(`bytes per round: AsynDGAN ${(meanBytes / 1024).toFixed(1)} KiB, FedAvg on the same models ${(fedAvgBytes / 1024).toFixed(1)} KiB (${(fedAvgBytes / Math.max(meanBytes, 1)).toFixed(1)}x)`);
  for (const id of ids) {
    const p = serverReport.privacy?.[id];
    console.log(`privacy ${id}: ${p ? describeReportedPrivacy(p) : 'did not answer'}`);
  }
  console.log(`grid: ${grid}`);
  console.log(`report: ${report}`);
}

/**
 * `--node-modalities "t1,t2;t1;flair,t2"`: the modalities each node holds, one comma list per node
 * and ';' between nodes, checked against the data set's modalities (case-insensitive, each
 * returned in the data set's spelling and order). An empty entry means every modality.
 */
export function parseNodeModalities(spec: string, nodes: number, all: readonly string[]): string[][] {
  const parts = spec.split(';').map((p) => p.trim());
  if (parts.length !== nodes) {
    throw new UsageError(`--node-modalities: ${parts.length} subset(s) for ${nodes} nodes ("${spec}"; one comma list per node, ';' between nodes)`);
  }
  return parts.map((p, i) => {
    if (p === '') return [...all];
    try {
      return modalityNames(all, modalityChannels(all, p));
    } catch (e) {
      throw new UsageError(`--node-modalities: node ${i}: ${(e as Error).message}`);
    }
  });
}
