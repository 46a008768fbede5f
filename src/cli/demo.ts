/**
 * `npm run demo` / `asyndgan demo`: a whole federation on this machine. A generator server and
 * N node processes run as separate processes talking only over WebSocket on loopback; each node
 * holds one hospital's share of the data. `--algorithm asyndgan` (default): one generator at the
 * server, a discriminator per node. `--algorithm fedavg-gan`: the weight-sharing baseline (every
 * node trains its own G and D, the server averages them every E local steps; docs/FEDAVG.md).
 * Shows progress with an ETA, then writes OUT/demo.png (per node: masks, real and synthetic
 * images) and OUT/demo-report.json (rounds, generator updates, losses, bytes measured on the wire).
 *
 * The run itself is `runLocalFederation` (exported for `asyndgan experiment`), which returns
 * a FederationRunReport; the pictures and the report file are the demo's own.
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
import { DEFAULT_GAN_CONFIG, makeDiscriminator, makeGenerator, type GanConfig } from '../train/pix2pix.js';
import { modalityChannels, modalityNames } from '../train/modalities.js';
import { loadDataSource } from './data-source.js';
import { ganConfigForRounds, GAN_OPTIONS, int, parseOptions, UsageError } from './options.js';
import { AGGREGATION_MODES, type AggregationMode } from '../net/aggregate.js';
import { Progress } from './progress.js';
import { DEFAULT_PRIVACY_PRESET, PRIVACY_PRESETS, describeReportedPrivacy, type ReportedPrivacy } from '../privacy/index.js';
import { writeSampleGrid } from './samples.js';
import { FEDAVG_DEFAULTS } from '../fedavg/defaults.js';

const CLI = fileURLToPath(new URL('../../bin/asyndgan.js', import.meta.url));

/** The two federated designs `runLocalFederation` can run over the same transport. */
export type FederationAlgorithm = 'asyndgan' | 'fedavg-gan';
export const FEDERATION_ALGORITHMS: readonly FederationAlgorithm[] = ['asyndgan', 'fedavg-gan'];

/** What `runLocalFederation` runs. */
export interface LocalFederationOptions {
  /** Default 'asyndgan'. */
  algorithm?: FederationAlgorithm;
  /** Data source spec as the CLI takes it (phantom, mricron, brats:DIR, ...). Default 'phantom'. */
  data?: string;
  /** Hospitals (node processes). Default 3. */
  nodes?: number;
  /** Image size. Default 32. */
  size?: number;
  /** Masks per node per round (AsynDGAN) / per local step (FedAvg). Default 4. */
  batchSize?: number;
  /** Server rounds. */
  rounds: number;
  /** FedAvg only: local steps E between two averagings. Default FEDAVG_DEFAULTS.localSteps (16, docs/FEDAVG.md). */
  localSteps?: number;
  /** Output folder (logs, checkpoints, generator.safetensors, server-report.json). */
  out: string;
  /**
   * Model and optimization; missing fields take the demo's defaults (ngf = ndf = 12, 3 blocks,
   * decay over min(50, rounds) rounds). `iters` is ignored: the schedule spans the run.
   */
  gan?: Partial<GanConfig>;
  /** Server port on loopback; 0 = a free one. Default 0. */
  port?: number;
  /** FedAvg only: zero each site's Adam moments every round ('reset', FEDAVG_DEFAULTS) or keep them ('local'). */
  adam?: 'local' | 'reset';
  /** AsynDGAN only: every node's privacy preset. Default DEFAULT_PRIVACY_PRESET. */
  privacy?: string;
  /** AsynDGAN only: every node's noise multiplier, overriding the preset's (`node --noise`). */
  noise?: number;
  /** AsynDGAN only: the server's `--aggregation` (default: the server's, 'clipped-median'). */
  aggregation?: AggregationMode;
  /** AsynDGAN only: modalities each node holds (one list per node). */
  nodeModalities?: string[][];
  /** AsynDGAN only: one discriminator per held modality. */
  perModalityD?: boolean;
  /** Show a progress line with an ETA on stderr. Default true. */
  progress?: boolean;
  /** Called every poll (about 1 s) with the server's round. */
  onRound?: (round: number, total: number) => void;
}

/** Bytes of one round, as the server counted them: the msgpack frames it received and sent. */
export interface RoundBytes {
  round: number;
  /** Node to server. */
  in: number;
  /** Server to node. */
  out: number;
}

/** What one local federation run produced and cost, measured. */
export interface FederationRunReport {
  algorithm: FederationAlgorithm;
  /** The final generator (same safetensors format for both algorithms: `synth` and `eval` read it). */
  generator: string;
  /** The server's own report (per-round history). */
  serverReport: string;
  out: string;
  nodes: string[];
  rounds: number;
  /** G steps per round along the generator's trajectory: 1 for AsynDGAN, E for FedAvg. */
  localStepsPerRound: number;
  /**
   * Generator updates: rounds x localStepsPerRound. AsynDGAN takes one G step per round on one
   * batch from every node; FedAvg's averaged G advances by E local steps per round, each node's
   * step on one batch of its own, so both consume nodes x batchSize masks per update.
   */
  generatorUpdates: number;
  /** Local G steps summed over nodes (FedAvg: rounds x E x nodes; AsynDGAN: the server's steps). */
  generatorStepsAllNodes: number;
  bytes: {
    /** Bytes the server received and sent per round, counted frame by frame. */
    perRound: RoundBytes[];
    meanPerRound: number;
    totalIn: number;
    totalOut: number;
    /** Everything the server received and sent (handshakes and mask uploads included). */
    total: number;
    /** total / generatorUpdates. */
    perGeneratorUpdate: number;
  };
  /** Wall time of the run (process start to server exit), s. */
  wallSeconds: number;
  config: GanConfig;
  size: number;
  batchSize: number;
  data: string;
}

/** The demo's model defaults (small enough for lavapipe). */
export const DEMO_GAN_DEFAULTS: Partial<GanConfig> = { ngf: 12, ndf: 12, blocks: 3 };

/** The GAN config a run of `rounds` rounds uses: demo defaults, then `gan`, schedule over the rounds. */
export function federationGanConfig(rounds: number, gan: Partial<GanConfig> = {}): GanConfig {
  const cfg: GanConfig = { ...DEFAULT_GAN_CONFIG, ...DEMO_GAN_DEFAULTS, decayIters: Math.min(50, rounds), ...gan, iters: rounds };
  cfg.decayIters = Math.min(cfg.decayIters, rounds);
  return cfg;
}

/** CLI flags describing `cfg` (model, losses, optimizer, schedule). */
function modelFlags(cfg: GanConfig): string[] {
  return ['--ngf', cfg.ngf, '--ndf', cfg.ndf, '--d-layers', cfg.dLayers, '--blocks', cfg.blocks, '--norm', cfg.norm, '--lambda-l1', cfg.lambdaL1,
    '--lr', cfg.lr, '--beta1', cfg.beta1, '--seed', cfg.seed, '--decay-iters', cfg.decayIters,
    // The nodes' learning-rate schedule must span the same rounds as the server's.
    '--iters', cfg.iters, ...(cfg.dropout ? [] : ['--no-dropout'])].map(String);
}

/**
 * The URL an `asyndgan server` child prints (`listening: URL`); its stderr is collected into `log`.
 * Rejects with the last lines of that log when the server exits first.
 */
export function serverUrl(server: ChildProcess, log: string[]): Promise<string> {
  server.stderr!.on('data', (b: Buffer) => log.push(b.toString()));
  return new Promise<string>((resolveUrl, reject) => {
    let buf = '';
    server.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /listening: (\S+)/.exec(buf);
      if (m) resolveUrl(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`server exited with code ${code}: ${log.join('').trim().split('\n').slice(-3).join(' | ')}`)));
  });
}

/**
 * A whole federation on loopback: one server process and `nodes` node processes of the CLI,
 * talking only over WebSocket. Resolves when the server has trained `rounds` rounds and exited;
 * rejects (with the log file to read) when it fails. Bytes are those the server counted on its
 * sockets (the payload of every WebSocket message, both directions).
 */
export async function runLocalFederation(options: LocalFederationOptions): Promise<FederationRunReport> {
  const algorithm = options.algorithm ?? 'asyndgan';
  if (!FEDERATION_ALGORITHMS.includes(algorithm)) throw new UsageError(`--algorithm must be one of ${FEDERATION_ALGORITHMS.join(', ')}, got "${algorithm}"`);
  const fedavg = algorithm === 'fedavg-gan';
  const dataSpec = options.data ?? 'phantom';
  const nodes = options.nodes ?? 3;
  const size = options.size ?? 32;
  const batchSize = options.batchSize ?? 4;
  const rounds = options.rounds;
  const localSteps = fedavg ? options.localSteps ?? FEDAVG_DEFAULTS.localSteps : 1;
  const privacy = options.privacy ?? DEFAULT_PRIVACY_PRESET;
  if (!(PRIVACY_PRESETS as readonly string[]).includes(privacy)) throw new UsageError(`--privacy must be one of ${PRIVACY_PRESETS.join(', ')}, got "${privacy}"`);
  if (fedavg && (options.nodeModalities || options.perModalityD)) throw new UsageError('--node-modalities and --per-modality-d exist only for --algorithm asyndgan');
  if (!Number.isInteger(localSteps) || localSteps < 1) throw new UsageError(`--local-steps must be a positive integer, got ${localSteps}`);
  const out = resolve(options.out);
  mkdirSync(out, { recursive: true });
  const cfg = federationGanConfig(rounds, options.gan);
  const data = await loadDataSource(dataSpec, { size, nodes, seed: cfg.seed });
  const model = modelFlags(cfg);
  const nodeModalities = options.nodeModalities;
  const perModalityD = options.perModalityD ?? false;

  // Per-node tokens, written for the server only.
  const ids = [...Array(nodes).keys()].map((i) => `hospital-${String.fromCharCode(97 + i)}`);
  const tokens = Object.fromEntries(ids.map((id) => [id, randomBytes(16).toString('hex')]));
  const tokenFile = join(out, 'tokens.json');
  writeFileSync(tokenFile, JSON.stringify({ nodes: tokens }, null, 2), { mode: 0o600 });

  const children: ChildProcess[] = [];
  const killAll = (): void => children.forEach((c) => c.exitCode === null && c.kill('SIGTERM'));
  const onSigint = (): void => {
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  const logFile = (name: string): string => join(out, `${name}.log`);
  const started = Date.now();
  const algoFlags = fedavg ? ['--algorithm', 'fedavg-gan'] : [];
  console.error(`asyndgan demo: ${algorithm}, 1 server + ${nodes} nodes on loopback, ${rounds} rounds${fedavg ? ` of ${localSteps} local steps` : ''} at ${size}x${size}${fedavg ? '' : `, node privacy ${privacy}`}; logs in ${out}`);
  if (nodeModalities) {
    console.error(`node modalities: ${ids.map((id, i) => `${id} [${nodeModalities[i]!.join(', ')}]`).join(', ')}${perModalityD ? ', one discriminator per modality' : ''}`);
  }
  try {
    const server = spawn(process.execPath, [CLI, 'server', ...algoFlags, ...(fedavg ? ['--local-steps', String(localSteps)] : []),
      '--tokens', tokenFile, '--port', String(options.port ?? 0), '--classes', String(data.test.numClasses),
      '--class-names', data.test.classNames.join(','), '--modalities', data.test.modalities.join(','), '--size', String(size),
      '--batch-size', String(batchSize), '--rounds', String(rounds), '--out', out, '--checkpoint-dir', join(out, 'checkpoints'),
      // Every round waits for all nodes: both algorithms then average or combine the same sites from round 1.
      '--min-nodes', String(nodes), '--exit-when-done', '--quiet', ...model,
      ...(!fedavg && options.aggregation ? ['--aggregation', options.aggregation] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    const serverLog: string[] = [];
    const url = await serverUrl(server, serverLog);
    const httpUrl = url.replace(/^ws/, 'http').replace(/\/ws$/, '');
    console.error(`asyndgan demo: server ${url} (metrics: ${httpUrl}/metrics${fedavg ? '' : `, Prometheus: ${httpUrl}/metrics?format=prometheus`})`);
    ids.forEach((id, i) => {
      const child = spawn(process.execPath, [CLI, 'node', ...algoFlags, '--server', url, '--id', id, '--index', String(i), '--nodes', String(nodes),
        '--data', dataSpec, '--size', String(size), '--quiet', '--checkpoint-dir', join(out, 'checkpoints'), ...model,
        ...(fedavg ? ['--adam', options.adam ?? FEDAVG_DEFAULTS.adam] : ['--privacy', privacy, ...(options.noise !== undefined ? ['--noise', String(options.noise)] : [])]),
        ...(nodeModalities ? ['--modalities', nodeModalities[i]!.join(',')] : []), ...(perModalityD ? ['--per-modality-d'] : [])],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ASYNDGAN_TOKEN: tokens[id] } });
      const chunks: string[] = [];
      child.stderr!.on('data', (b: Buffer) => chunks.push(b.toString()));
      child.once('exit', () => writeFileSync(logFile(id), chunks.join('')));
      children.push(child);
    });

    // Progress from the server's /metrics endpoint.
    const progress = options.progress === false ? undefined : new Progress({ total: rounds, label: `${algorithm} rounds`, unit: 'round' });
    const serverDone = new Promise<number>((r) => server.once('exit', (code) => r(code ?? 1)));
    let exitCode: number | undefined;
    void serverDone.then((c) => (exitCode = c));
    while (exitCode === undefined) {
      await new Promise((r) => setTimeout(r, 1000));
      try {
        const m = (await (await fetch(`${httpUrl}/metrics`)).json()) as { round: number; nodesConnected: number; lastRound?: { losses?: { gL1: number; gGan: number } } };
        const l = m.lastRound?.losses;
        // Nodes under a privacy preset withhold their losses (they are exact functions of the images).
        progress?.update(m.round, { nodes: m.nodesConnected, ...(l && (fedavg || privacy === 'off') ? { L1: l.gL1.toFixed(3), G: l.gGan.toFixed(3) } : {}) });
        options.onRound?.(m.round, rounds);
      } catch {
        // The server may be finishing; its exit ends the loop.
      }
    }
    writeFileSync(logFile('server'), serverLog.join(''));
    if (exitCode !== 0) throw new Error(`server exited with code ${exitCode}; see ${logFile('server')}`);
    progress?.finish();
  } finally {
    killAll();
    process.removeListener('SIGINT', onSigint);
  }
  const wallSeconds = (Date.now() - started) / 1000;
  const serverReport = join(out, 'server-report.json');
  const sr = JSON.parse(readFileSync(serverReport, 'utf8')) as {
    history: { round: number; bytesIn: number; bytesOut: number }[];
    metrics: { totals: { bytesIn: number; bytesOut: number; steps: number } };
  };
  const perRound = sr.history.map((h) => ({ round: h.round, in: h.bytesIn, out: h.bytesOut }));
  const totalIn = sr.metrics.totals.bytesIn;
  const totalOut = sr.metrics.totals.bytesOut;
  const generatorUpdates = rounds * localSteps;
  return {
    algorithm, generator: join(out, 'generator.safetensors'), serverReport, out, nodes: ids, rounds, localStepsPerRound: localSteps, generatorUpdates,
    generatorStepsAllNodes: fedavg ? generatorUpdates * nodes : sr.metrics.totals.steps,
    bytes: {
      perRound, meanPerRound: perRound.reduce((s, r) => s + r.in + r.out, 0) / Math.max(perRound.length, 1),
      totalIn, totalOut, total: totalIn + totalOut, perGeneratorUpdate: (totalIn + totalOut) / Math.max(generatorUpdates, 1),
    },
    wallSeconds, config: cfg, size, batchSize, data: data.name,
  };
}

export async function demoCommand(argv: string[]): Promise<void> {
  const v = parseOptions('demo', '[options]', {
    algorithm: { type: 'string', default: 'asyndgan', help: 'asyndgan | fedavg-gan (the weight-sharing baseline, docs/FEDAVG.md)' },
    'local-steps': { type: 'string', default: String(FEDAVG_DEFAULTS.localSteps), help: 'fedavg-gan: local steps E between two averagings (docs/FEDAVG.md)' },
    adam: { type: 'string', default: FEDAVG_DEFAULTS.adam, help: 'fedavg-gan: reset | local Adam moments at every averaging' },
    data: { type: 'string', default: 'phantom', help: 'data set split across the nodes' },
    nodes: { type: 'string', default: '3', help: 'number of hospitals (node processes)' },
    size: { type: 'string', default: '32', help: 'image size (use 64..256 on a GPU)' },
    'batch-size': { type: 'string', default: '4', help: 'masks per node per round' },
    rounds: { type: 'string', default: '150', help: 'training rounds (fedavg-gan: averaging rounds of --local-steps generator updates each)' },
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
    aggregation: { type: 'string', default: 'clipped-median', help: `the server's rule: ${AGGREGATION_MODES.join(' | ')} (asyndgan server --help)` },
  }, argv);
  const aggregation = String(v.aggregation) as AggregationMode;
  if (!AGGREGATION_MODES.includes(aggregation)) throw new UsageError(`--aggregation must be one of ${AGGREGATION_MODES.join(', ')}, got "${aggregation}"`);
  const algorithm = String(v.algorithm) as FederationAlgorithm;
  if (!FEDERATION_ALGORITHMS.includes(algorithm)) throw new UsageError(`--algorithm must be one of ${FEDERATION_ALGORITHMS.join(', ')}, got "${algorithm}"`);
  const privacy = String(v.privacy);
  const rounds = int(v, 'rounds');
  const nodes = int(v, 'nodes');
  const size = int(v, 'size');
  const cfg = ganConfigForRounds(v, rounds);
  const allModalities = v['node-modalities'] !== undefined ? (await loadDataSource(String(v.data), { size, nodes, seed: cfg.seed })).test.modalities : [];
  const nodeModalities = v['node-modalities'] !== undefined ? parseNodeModalities(String(v['node-modalities']), nodes, allModalities) : undefined;
  const perModalityD = Boolean(v['per-modality-d']);
  const run = await runLocalFederation({
    algorithm, data: String(v.data), nodes, size, batchSize: int(v, 'batch-size'), rounds, localSteps: int(v, 'local-steps'),
    out: String(v.out), gan: cfg, port: int(v, 'port'), privacy, aggregation, adam: adamPolicy(String(v.adam)), ...(nodeModalities ? { nodeModalities } : {}), perModalityD,
  });
  const out = run.out;

  // Pictures: the final generator on each node's masks (rendered here only because this demo owns
  // all the data; in a real federation each hospital would render its own).
  const data = await loadDataSource(String(v.data), { size, nodes, seed: cfg.seed });
  await init();
  const g = makeGenerator(cfg, data.test.numClasses, data.test.modalities.length);
  await loadModule(run.generator, g);
  g.eval();
  const rows = [];
  for (const [k, ds] of data.nodes.entries()) {
    const slices = ds.slices.slice(0, 2);
    const fake = noGrad(() => tidy(() => g.forward(tensor(conditionTensor(slices, ds.numClasses), [slices.length, ds.numClasses, size, size]))));
    const values = await fake.read();
    fake.dispose();
    const plane = ds.modalities.length * size * size;
    rows.push(...slices.map((slice, i) => ({ label: `${run.nodes[k]}`, slice, fake: values.subarray(i * plane, (i + 1) * plane) })));
  }
  const grid = join(out, 'demo.png');
  const title = algorithm === 'fedavg-gan'
    ? `FedAvg-GAN: ${nodes} hospitals, ${rounds} rounds of ${run.localStepsPerRound} local steps`
    : `AsynDGAN: one generator, ${nodes} hospitals, ${rounds} rounds`;
  await writeSampleGrid(grid, rows, size, size, title, data.test.classNames);

  const serverReport = JSON.parse(readFileSync(run.serverReport, 'utf8')) as {
    history: { round: number; bytesIn: number; bytesOut: number; losses?: Record<string, number>; onTime: string[] }[];
    privacy?: Record<string, ReportedPrivacy>;
  };
  const paramsG = g.numParameters();
  // Each node's discriminator(s): joint on mask + its held channels, or one per held modality.
  const dParams = new Map<number, number>();
  const paramsOf = (inChannels: number): number => {
    if (!dParams.has(inChannels)) {
      const d = makeDiscriminator(cfg, inChannels, 0);
      dParams.set(inChannels, d.numParameters());
      d.dispose();
    }
    return dParams.get(inChannels)!;
  };
  const C = data.test.numClasses;
  const paramsPerNode = run.nodes.map((_, i) => {
    const held = nodeModalities?.[i]?.length ?? data.test.modalities.length;
    return perModalityD ? held * paramsOf(C + 1) : paramsOf(C + held);
  });
  const history = serverReport.history;
  const meanBytes = run.bytes.meanPerRound;
  // What FedAvg would send on the same models (every node down- and uploads G and its D in f32 each
  // round): a computed figure, kept next to the measured one; `--algorithm fedavg-gan` measures it.
  const fedAvgBytes = paramsPerNode.reduce((s, paramsD) => s + 2 * (paramsG + paramsD) * 4, 0);
  const report = join(out, 'demo-report.json');
  await writeJsonAtomic(report, {
    algorithm,
    data: data.name,
    nodes: run.nodes,
    rounds,
    localStepsPerRound: run.localStepsPerRound,
    generatorUpdates: run.generatorUpdates,
    size,
    config: cfg,
    seconds: run.wallSeconds,
    ...(nodeModalities ? { nodeModalities: Object.fromEntries(run.nodes.map((id, i) => [id, nodeModalities[i]!])) } : {}),
    perModalityD,
    parameters: { generator: paramsG, discriminatorPerNode: Math.max(...paramsPerNode), discriminatorsByNode: Object.fromEntries(run.nodes.map((id, i) => [id, paramsPerNode[i]!])) },
    ...(algorithm === 'asyndgan' ? { privacy: { preset: privacy, nodes: serverReport.privacy ?? {} } } : {}),
    bytesMeasured: run.bytes,
    bytesPerRound: { [algorithm === 'asyndgan' ? 'asyndgan' : 'fedavgGan']: meanBytes, fedAvgSameModelsComputed: fedAvgBytes, ratio: fedAvgBytes / Math.max(meanBytes, 1) },
    losses: history.map((h) => ({ round: h.round, ...h.losses, nodes: h.onTime.length })),
    bytes: history.map((h) => ({ round: h.round, in: h.bytesIn, out: h.bytesOut })),
    files: { grid, generator: run.generator, serverReport: run.serverReport },
  });
  console.log(`bytes per round (measured): ${algorithm} ${(meanBytes / 1024).toFixed(1)} KiB; ${(run.bytes.perGeneratorUpdate / 1024).toFixed(1)} KiB per generator update (${run.generatorUpdates} updates)`);
  if (algorithm === 'asyndgan') {
    console.log(`FedAvg on the same models would send ${(fedAvgBytes / 1024).toFixed(1)} KiB per round (computed, ${(fedAvgBytes / Math.max(meanBytes, 1)).toFixed(1)}x)`);
    for (const id of run.nodes) {
      const p = serverReport.privacy?.[id];
      console.log(`privacy ${id}: ${p ? describeReportedPrivacy(p) : 'did not answer'}`);
    }
  }
  console.log(`grid: ${grid}`);
  console.log(`report: ${report}`);
}

function adamPolicy(s: string): 'local' | 'reset' {
  if (s !== 'local' && s !== 'reset') throw new UsageError(`--adam must be reset or local, got "${s}"`);
  return s;
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
