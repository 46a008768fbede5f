/**
 * `asyndgan server`: the federation's generator server. Holds only the generator, its Adam state
 * and the nodes' masks; trains for --rounds rounds, checkpointing as it goes (and resuming from
 * --checkpoint-dir when a checkpoint is there), then writes OUT/generator.safetensors (for synth
 * and eval) and OUT/server-report.json, and keeps serving until stopped unless --exit-when-done.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Adam, init } from '../engine/index.js';
import { runScalarLog, writeJsonAtomic } from '../io/index.js';
import { saveModule } from '../models/index.js';
import {
  DTYPES, GeneratorServer, consoleLogger, silentLogger, type AggregationMode, type Dtype, type MaskEncoding, type RoundSummary, type ServerMetrics,
} from '../net/index.js';
import { EngineGenerator } from '../federation/generator-backend.js';
import { makeGenerator } from '../train/pix2pix.js';
import { privacyFromStatus, type ReportedPrivacy } from '../privacy/index.js';
import { GAN_OPTIONS, ganConfigForRounds, int, num, parseOptions, UsageError } from './options.js';
import { splitAlgorithm } from './algorithm.js';
import { SERVER_LISTEN_OPTIONS, SERVER_MODEL_OPTIONS, SERVER_OUT_OPTIONS, serverTokens } from './server-options.js';
import { Progress } from './progress.js';
import { ServerPictures, type LossPoint } from './server-pictures.js';
import type { FederationInfo, GeneratorInfo } from './train.js';

/** What each node that answered reported about its privacy (epsilon, delta, preset). */
function nodePrivacy(m: ServerMetrics): Record<string, ReportedPrivacy> {
  const answered = new Set(federationInfo(m).nodeIds);
  return Object.fromEntries(m.nodes.filter((n) => answered.has(n.id)).map((n) => [n.id, privacyFromStatus(n.stats.reported)]));
}

/** Rounds finished and the nodes that answered at least one of them. */
function federationInfo(m: ServerMetrics): FederationInfo {
  const ids = m.nodes.filter((n) => n.stats.repliesOnTime + n.stats.repliesLate > 0).map((n) => n.id).sort();
  return { rounds: m.round, nodes: ids.length, nodeIds: ids };
}

export async function serverCommand(argv: string[]): Promise<void> {
  // --algorithm fedavg-gan: the weight-sharing baseline (docs/FEDAVG.md), its own options.
  const { algorithm, rest } = splitAlgorithm(argv);
  if (algorithm === 'fedavg-gan') return (await import('./fedavg-server.js')).fedavgServerCommand(rest);
  argv = rest;
  const v = parseOptions('server', '--tokens FILE --classes N --modalities a,b [options]', {
    ...SERVER_LISTEN_OPTIONS,
    'client-ca': { type: 'string', help: 'mutual TLS: PEM CA file; a node must also present a certificate it signed, whose CN is its id (with --tls-cert)' },
    ...SERVER_MODEL_OPTIONS,
    'batch-size': { type: 'string', default: '4', help: 'masks per node per round' },
    rounds: { type: 'string', default: '200', help: 'training rounds' },
    sampling: { type: 'string', default: 'balance', help: 'balance (one batch per node) | uniform (from the union)' },
    weighting: { type: 'string', default: 'samples', help: 'samples (n_j from the masks held / sum n) | equal' },
    aggregation: { type: 'string', default: 'clipped-median', help: 'clipped-median (every reply clipped to the median norm, then the weighted mean) | coordinate-median (clipped replies as votes: the coordinate-wise median of their generator gradients, one backward pass per reply; resists a node that flips its gradients) | median-trust (the same votes weighted by their alignment with that median; also resists flips) | mean (bounded at --norm-bound-factor x the median)' },
    'max-reply-norm': { type: 'string', default: '1000', help: 'absolute cap on the L2 norm of one reply' },
    'norm-bound-factor': { type: 'string', default: '3', help: 'with --aggregation mean: a reply may be this multiple of the median norm' },
    'max-node-share': { type: 'string', default: '0.5', help: 'largest weight of one node in a step (when more than 1/share nodes answer)' },
    'mask-encoding': { type: 'string', help: 'one-hot | binary: what mask values are accepted (default one-hot for --classes >= 2)' },
    'round-timeout': { type: 'string', default: '30000', help: 'ms a round waits for replies' },
    'max-staleness': { type: 'string', default: '1', help: 'late replies up to this many rounds old are applied' },
    'wire-dtype': { type: 'string', default: 'f32', help: 'f32 | f16s (scaled f16 fakes and gradients: half the bytes) | f16 (fakes only)' },
    'checkpoint-dir': { type: 'string', help: 'checkpoint here every K rounds and on shutdown; resume from it' },
    'checkpoint-every': { type: 'string', default: '50', help: 'rounds between checkpoints' },
    ...SERVER_OUT_OPTIONS,
    'min-nodes': { type: 'string', default: '1', help: 'rounds start only when this many nodes are connected with their masks' },
    quiet: { type: 'boolean', default: false, help: 'no per-event log lines' },
    'sample-every': { type: 'string', default: '25', help: 'every this many rounds OUT/samples/round-N.png (masks the nodes uploaded and synthetic images; the server has no real ones) and OUT/losses.png; at the end OUT/samples.png. 0: only at the end' },
    tensorboard: { type: 'boolean', default: false, help: 'also write the round losses as TensorBoard events in OUT/tensorboard/ (they always go to OUT/scalars.jsonl)' },
    'max-connections': { type: 'string', default: '256', help: 'WebSocket connections open at once (beyond: HTTP 503)' },
    'max-connections-per-address': { type: 'string', default: '32', help: 'connections open at once from one address (IPv6: one /64)' },
    'max-login-failures': { type: 'string', default: '10', help: 'failed logins per address and minute before a lockout (HTTP 429)' },
    lockout: { type: 'string', default: '60', help: 'seconds a locked-out address is refused unchecked' },
    'on-duplicate-id': { type: 'string', default: 'refuse', help: 'refuse | replace: a second connection for a connected node id' },
    'max-mask-mib-per-node': { type: 'string', default: '256', help: 'MiB of masks held per node (beyond: quota_exceeded)' },
    'max-mask-mib-total': { type: 'string', default: '1024', help: 'MiB of masks held for all nodes together' },
    ...GAN_OPTIONS,
  }, argv);
  if (!v.tokens) throw new UsageError('server needs --tokens FILE (see --help)');
  const onDuplicateId = String(v['on-duplicate-id']);
  if (onDuplicateId !== 'refuse' && onDuplicateId !== 'replace') throw new UsageError(`--on-duplicate-id must be refuse or replace, got "${onDuplicateId}"`);
  // Before the engine starts: a bad token file is reported at once.
  const tokens = await serverTokens(v);
  if (!v.classes) throw new UsageError('server needs --classes N (mask channels)');
  const rounds = int(v, 'rounds');
  // The learning-rate schedule runs over rounds (--iters is ignored); a decay longer than the run is clamped.
  const cfg = ganConfigForRounds(v, rounds);
  const classes = int(v, 'classes');
  const modalities = String(v.modalities).split(',').map((m) => m.trim());
  if (modalities.some((m) => !m) || new Set(modalities.map((m) => m.toLowerCase())).size !== modalities.length) {
    throw new UsageError(`--modalities: names must be non-empty and distinct, got "${v.modalities}"`);
  }
  const size = int(v, 'size');
  const out = String(v.out);
  mkdirSync(out, { recursive: true });
  const sampleEvery = int(v, 'sample-every');
  const classNames = v['class-names'] ? String(v['class-names']).split(',') : undefined;

  const engine = await init();
  const g = makeGenerator(cfg, classes, modalities.length);
  const optimizer = new Adam(g.namedParameters().map(([name, tensor]) => ({ name, tensor })), {
    lr: cfg.lr,
    betas: [cfg.beta1, 0.999],
  });
  const backend = new EngineGenerator(g, optimizer, cfg);
  const history: (RoundSummary & { losses: NonNullable<RoundSummary['losses']> })[] = [];
  let pictures: ServerPictures | undefined; // set once the server (which holds the masks) is up
  const lossPoints = (): LossPoint[] => history.map((h) => ({ round: h.round, ...h.losses }));
  const progress = new Progress({ total: rounds, label: 'rounds', unit: 'round' });
  const scalars = runScalarLog(out, v.tensorboard === true);
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  if (v['client-ca'] && !v['tls-cert']) throw new UsageError('--client-ca needs --tls-cert and --tls-key (mutual TLS runs over TLS)');
  const tls = v['tls-cert'] ? { certFile: String(v['tls-cert']), keyFile: String(v['tls-key'] ?? ''), ...(v['client-ca'] ? { clientCaFile: String(v['client-ca']) } : {}) } : undefined;
  const server = await GeneratorServer.start({
    generator: backend,
    tokens,
    host: String(v.host),
    maxConnections: int(v, 'max-connections'),
    maxConnectionsPerAddress: int(v, 'max-connections-per-address'),
    maxLoginFailures: int(v, 'max-login-failures'),
    lockoutMs: num(v, 'lockout') * 1000,
    onDuplicateId,
    maxMaskBytesPerNode: num(v, 'max-mask-mib-per-node') * 2 ** 20,
    maxMaskBytesTotal: num(v, 'max-mask-mib-total') * 2 ** 20,
    port: int(v, 'port'),
    ...(tls ? { tls } : {}),
    session: {
      maskChannels: classes, imageChannels: modalities.length, modalities, height: size, width: size, batchSize: int(v, 'batch-size'), lambdaL1: cfg.lambdaL1,
      ...(v['mask-encoding'] ? { maskEncoding: String(v['mask-encoding']) as MaskEncoding } : {}),
    },
    sampling: String(v.sampling) as 'balance' | 'uniform',
    weighting: String(v.weighting) as 'samples' | 'equal',
    replyBounds: {
      aggregation: String(v.aggregation) as AggregationMode, maxReplyNorm: num(v, 'max-reply-norm'),
      normBoundFactor: num(v, 'norm-bound-factor'), maxNodeShare: num(v, 'max-node-share'),
    },
    wireDtype: wireDtypeOption(String(v['wire-dtype'])),
    roundTimeoutMs: num(v, 'round-timeout'),
    maxStaleness: int(v, 'max-staleness'),
    ...(v['checkpoint-dir'] ? { checkpointDir: String(v['checkpoint-dir']) } : {}),
    checkpointEvery: int(v, 'checkpoint-every'),
    seed: cfg.seed,
    maxRounds: rounds,
    minNodes: int(v, 'min-nodes'),
    log: v.quiet ? silentLogger : consoleLogger,
    onRound: (s) => {
      if (s.losses) history.push({ ...s, losses: s.losses });
      const l = s.losses;
      if (l) {
        scalars.write(s.round, { 'loss/G_L1': l.gL1, 'loss/G_GAN': l.gGan, 'loss/D_real': l.dReal, 'loss/D_fake': l.dFake, nodes: s.onTime.length, 'round/seconds': s.durationMs / 1000 });
      }
      progress.update(s.round, l ? { L1: l.gL1.toFixed(3), G: l.gGan.toFixed(3), D: ((l.dReal + l.dFake) / 2).toFixed(3), nodes: s.onTime.length } : { nodes: 0 });
      if (sampleEvery > 0 && s.round % sampleEvery === 0 && s.round < rounds) {
        pictures?.schedule(s.round, lossPoints(), (e) => progress.log(`asyndgan server: samples at round ${s.round} not written: ${e.message}`));
      }
      if (s.round >= rounds) finished();
    },
  });
  pictures = new ServerPictures({
    out, generator: g, registry: server.coordinator.registry, modalities, classes, size, ...(classNames ? { classNames } : {}),
  });
  const writePictures = async (): Promise<void> => {
    try {
      const path = await pictures!.final(server.metrics().round, lossPoints());
      if (path) progress.log(`asyndgan server: samples ${path} (masks the nodes uploaded, synthetic images), losses ${join(out, 'losses.png')}`);
    } catch (e) {
      progress.log(`asyndgan server: final samples not written: ${(e as Error).message}`);
    }
  };
  console.error(`asyndgan server: ${server.url} (health: ${server.httpUrl}/health)${tls?.clientCaFile ? ', mutual TLS (nodes need a client certificate from ' + tls.clientCaFile + ')' : ''}, adapter ${engine.gpu.adapterName}`);
  console.log(`listening: ${server.url}`);
  const writeGenerator = async (): Promise<string> => {
    const info: GeneratorInfo = {
      config: cfg,
      conditionChannels: classes,
      imageChannels: modalities.length,
      size,
      classNames: v['class-names'] ? String(v['class-names']).split(',') : [...Array(classes).keys()].map(String),
      modalities,
      trainer: 'federated',
      federation: federationInfo(server.metrics()),
    };
    // Each contributing node's own account of its privacy (its status.metrics), for whoever gets the generator.
    const path = join(out, 'generator.safetensors');
    await saveModule(path, g, { asyndgan_generator: JSON.stringify({ ...info, privacy: nodePrivacy(server.metrics()) }) });
    return path;
  };
  // Ctrl-C / SIGTERM: finish the round, checkpoint, say goodbye, then write the generator as it is
  // now (its metadata names the round reached), so generator.safetensors is never older than the stop.
  const onSignal = (sig: NodeJS.Signals) => void (async () => {
    progress.log(`asyndgan server: ${sig}: finishing the round, checkpointing and writing the generator`);
    await server.stop();
    const path = await writeGenerator();
    await writePictures();
    progress.log(`asyndgan server: stopped at round ${server.metrics().round}: generator ${path}${v['checkpoint-dir'] ? `, checkpoint in ${v['checkpoint-dir']}` : ''}`);
    process.exit(0);
  })().catch((err: unknown) => {
    console.error(`asyndgan server: ${sig}: saving failed: ${(err as Error).message}`);
    process.exit(1);
  });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (server.metrics().round >= rounds) finished();
  await done;
  progress.finish();
  await writeGenerator();
  await writePictures();
  const privacy = nodePrivacy(server.metrics());
  const report = join(out, 'server-report.json');
  await writeJsonAtomic(report, { rounds, config: cfg, metrics: server.metrics(), privacy, history });
  console.log(`server report: ${report}`);
  if (v['exit-when-done']) {
    await server.stop();
    process.exit(0);
  }
}

/** --wire-dtype, checked (one line naming the value when it is not a wire dtype). */
function wireDtypeOption(v: string): Dtype {
  if (!(DTYPES as readonly string[]).includes(v)) throw new UsageError(`--wire-dtype must be one of ${DTYPES.join(', ')}, got "${v}"`);
  return v as Dtype;
}
