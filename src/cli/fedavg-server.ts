/**
 * `asyndgan server --algorithm fedavg-gan`: the weight-sharing baseline's server (docs/FEDAVG.md).
 * Holds the global G and D, sends them to every connected node each round, averages what comes
 * back (weighted by sample count), checkpoints (resuming from --checkpoint-dir), and at the end
 * writes OUT/generator.safetensors in the AsynDGAN server's format (so `synth` and `eval` read it)
 * and OUT/server-report.json with the bytes it counted per round.
 */
import { join } from 'node:path';
import { init } from '../engine/index.js';
import { runScalarLog, writeJsonAtomic } from '../io/index.js';
import { saveModule } from '../models/index.js';
import { consoleLogger, silentLogger } from '../net/index.js';
import { FEDAVG_DEFAULTS, FedAvgServer, modelLayout, readModel, writeModel, type FedRoundSummary } from '../fedavg/index.js';
import { Pix2pixTrainer } from '../train/pix2pix.js';
import { GAN_OPTIONS, ganConfigForRounds, int, makeOutputDir, num, parseOptions, UsageError } from './options.js';
import { Progress } from './progress.js';
import { SERVER_LISTEN_OPTIONS, SERVER_MODEL_OPTIONS, SERVER_OUT_OPTIONS, serverTokens } from './server-options.js';
import type { GeneratorInfo } from './train.js';

export async function fedavgServerCommand(argv: string[]): Promise<void> {
  const v = parseOptions('server --algorithm fedavg-gan', '--tokens FILE --classes N --modalities a,b [options]', {
    ...SERVER_LISTEN_OPTIONS,
    ...SERVER_MODEL_OPTIONS,
    'batch-size': { type: 'string', default: '4', help: 'masks per local step at every node' },
    rounds: { type: 'string', default: '200', help: 'averaging rounds' },
    'local-steps': { type: 'string', default: String(FEDAVG_DEFAULTS.localSteps), help: 'E: local G and D steps at every node between two averagings (docs/FEDAVG.md)' },
    'round-timeout': { type: 'string', default: '300000', help: 'ms a round waits for the nodes\' updates (must cover E local steps)' },
    'norm-bound-factor': { type: 'string', default: '3', help: 'an update\'s change may be this multiple of the round\'s median change (larger: scaled down)' },
    'max-relative-delta': { type: 'string', default: '0.5', help: 'an update\'s change may be this fraction of the global model\'s norm' },
    'max-node-share': { type: 'string', default: '0.5', help: 'largest averaging share of one node (when more than 1/share nodes answer)' },
    'checkpoint-dir': { type: 'string', help: 'checkpoint here every K rounds and on shutdown; resume from it' },
    'checkpoint-every': { type: 'string', default: '10', help: 'rounds between checkpoints' },
    ...SERVER_OUT_OPTIONS,
    'min-nodes': { type: 'string', default: '1', help: 'rounds start only when this many nodes are connected' },
    quiet: { type: 'boolean', default: false, help: 'no per-event log lines' },
    tensorboard: { type: 'boolean', default: false, help: 'also write the round losses as TensorBoard events' },
    'max-connections': { type: 'string', default: '256', help: 'WebSocket connections open at once' },
    'max-login-failures': { type: 'string', default: '10', help: 'failed logins per address and minute before a lockout' },
    ...GAN_OPTIONS,
  }, argv);
  const tokens = await serverTokens(v);
  if (!v.classes) throw new UsageError('server needs --classes N (mask channels)');
  const rounds = int(v, 'rounds');
  const E = int(v, 'local-steps');
  if (E < 1) throw new UsageError(`--local-steps must be at least 1, got ${E}`);
  const cfg = ganConfigForRounds(v, rounds);
  const classes = int(v, 'classes');
  const modalities = String(v.modalities).split(',').map((m) => m.trim());
  if (modalities.some((m) => !m) || new Set(modalities.map((m) => m.toLowerCase())).size !== modalities.length) {
    throw new UsageError(`--modalities: names must be non-empty and distinct, got "${v.modalities}"`);
  }
  const size = int(v, 'size');
  const out = String(v.out);
  makeOutputDir(out);

  const engine = await init();
  // The server's own G and D give the round-0 global model (seeded) and the layout every update must match.
  const init0 = new Pix2pixTrainer(cfg, classes, modalities.length);
  const lg = await modelLayout(init0.generator);
  const ld = await modelLayout(init0.discriminator);
  const initial = { G: await readModel(init0.generator, lg.names), D: await readModel(init0.discriminator, ld.names) };
  const history: FedRoundSummary[] = [];
  const progress = new Progress({ total: rounds, label: 'fedavg rounds', unit: 'round' });
  const scalars = runScalarLog(out, v.tensorboard === true);
  let finished: () => void = () => {};
  const done = new Promise<void>((resolve) => (finished = resolve));
  const tls = v['tls-cert'] ? { certFile: String(v['tls-cert']), keyFile: String(v['tls-key'] ?? '') } : undefined;
  const server = await FedAvgServer.start({
    tokens, host: String(v.host), port: int(v, 'port'), ...(tls ? { tls } : {}),
    maxConnections: int(v, 'max-connections'), maxLoginFailures: int(v, 'max-login-failures'),
    initial, layouts: { G: lg.layout, D: ld.layout },
    session: {
      localSteps: E, batchSize: int(v, 'batch-size'), lambdaL1: cfg.lambdaL1, lr: cfg.lr, beta1: cfg.beta1,
      // The schedule of AsynDGAN's server over rounds, stretched over E local steps per round.
      totalSteps: rounds * E, decaySteps: cfg.decayIters * E,
    },
    roundTimeoutMs: num(v, 'round-timeout'),
    policy: { normBoundFactor: num(v, 'norm-bound-factor'), maxRelativeDelta: num(v, 'max-relative-delta'), maxNodeShare: num(v, 'max-node-share') },
    ...(v['checkpoint-dir'] ? { checkpointDir: String(v['checkpoint-dir']) } : {}),
    checkpointEvery: int(v, 'checkpoint-every'),
    maxRounds: rounds,
    minNodes: int(v, 'min-nodes'),
    log: v.quiet ? silentLogger : consoleLogger,
    onRound: (s) => {
      history.push(s);
      const l = s.losses;
      if (l) scalars.write(s.round, { 'loss/G_L1': l.gL1, 'loss/G_GAN': l.gGan, 'loss/D_real': l.dReal, 'loss/D_fake': l.dFake, nodes: s.onTime.length, 'round/seconds': s.durationMs / 1000, 'round/bytes': s.bytesIn + s.bytesOut });
      progress.update(s.round, l ? { L1: l.gL1.toFixed(3), G: l.gGan.toFixed(3), nodes: s.onTime.length, KiB: ((s.bytesIn + s.bytesOut) / 1024).toFixed(0) } : { nodes: 0 });
      if (s.round >= rounds) finished();
    },
  });
  console.error(`asyndgan server (fedavg-gan, E=${E}): ${server.url} (health: ${server.httpUrl}/health), adapter ${engine.gpu.adapterName}`);
  console.log(`listening: ${server.url}`);
  const writeGenerator = async (): Promise<string> => {
    const m = server.metrics();
    const ids = m.nodes.filter((n) => n.stats.updatesOnTime > 0).map((n) => n.id).sort();
    writeModel(init0.generator, lg.names, lg.layout, server.coordinator.weights().G);
    const info: GeneratorInfo & { algorithm: string; localSteps: number } = {
      config: cfg, conditionChannels: classes, imageChannels: modalities.length, size,
      classNames: v['class-names'] ? String(v['class-names']).split(',') : [...Array(classes).keys()].map(String),
      modalities, trainer: 'federated', federation: { rounds: m.round, nodes: ids.length, nodeIds: ids }, algorithm: 'fedavg-gan', localSteps: E,
    };
    const path = join(out, 'generator.safetensors');
    await saveModule(path, init0.generator, { asyndgan_generator: JSON.stringify(info) });
    return path;
  };
  const onSignal = (sig: NodeJS.Signals): void => void (async () => {
    progress.log(`asyndgan server: ${sig}: finishing the round, checkpointing and writing the generator`);
    await server.stop();
    const path = await writeGenerator();
    progress.log(`asyndgan server: stopped at round ${server.round}: generator ${path}`);
    process.exit(0);
  })().catch((err: unknown) => {
    console.error(`asyndgan server: ${sig}: saving failed: ${(err as Error).message}`);
    process.exit(1);
  });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (server.round >= rounds) finished();
  await done;
  progress.finish();
  if (v['exit-when-done']) await server.stop();
  await writeGenerator();
  const report = join(out, 'server-report.json');
  await writeJsonAtomic(report, { algorithm: 'fedavg-gan', rounds, localSteps: E, config: cfg, metrics: server.metrics(), history });
  console.log(`server report: ${report}`);
  if (v['exit-when-done']) process.exit(0);
}
