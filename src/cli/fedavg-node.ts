/**
 * `asyndgan node --algorithm fedavg-gan`: one hospital of the weight-sharing baseline. Loads ITS
 * data only, trains its own G and D E local steps per round from the server's global model, and
 * sends both models' weights back (docs/FEDAVG.md). Adam moments are zeroed after every averaging
 * (--adam local keeps them); local state is checkpointed to --checkpoint-dir.
 */
import { init } from '../engine/index.js';
import { consoleLogger, silentLogger } from '../net/index.js';
import { EngineLocalGan, FEDAVG_DEFAULTS, FedAvgNode, type AdamPolicy } from '../fedavg/index.js';
import { NODE_OPTIONS, loadNodeShare, nodeToken, readPemOption } from './server-options.js';
import { GAN_OPTIONS, ganConfig, int, num, parseOptions, UsageError } from './options.js';

export async function fedavgNodeCommand(argv: string[]): Promise<void> {
  const v = parseOptions('node --algorithm fedavg-gan', '--server URL --id ID --token TOKEN --index K [options]', {
    ...NODE_OPTIONS,
    'batch-size': { type: 'string', help: 'ignored: the server\'s session sets the batch size' },
    adam: { type: 'string', default: FEDAVG_DEFAULTS.adam, help: 'reset (zero the Adam moments after every averaging) | local (keep them); docs/FEDAVG.md' },
    'checkpoint-dir': { type: 'string', help: 'checkpoint the local state here; resume from it' },
    'checkpoint-every': { type: 'string', default: '10', help: 'updates between local checkpoints' },
    'ca-file': { type: 'string', help: 'PEM CA certificate for a wss:// server' },
    quiet: { type: 'boolean', default: false, help: 'no per-event log lines' },
    'give-up-after': { type: 'string', default: '600', help: 'seconds without reaching the server before exiting with an error' },
    ...GAN_OPTIONS,
  }, argv);
  const token = nodeToken(v);
  const adam = String(v.adam);
  if (adam !== 'local' && adam !== 'reset') throw new UsageError(`--adam must be local or reset, got "${adam}"`);
  const cfg = ganConfig(v);
  const { data, own, index } = await loadNodeShare(v, cfg.seed);
  const ca = readPemOption(v, 'ca-file');
  const engine = await init();
  const gan = await EngineLocalGan.create(engine, cfg, own, { adam: adam as AdamPolicy, seed: cfg.seed * 7919 + index });
  const node = new FedAvgNode({
    url: String(v.server), nodeId: String(v.id), token, gan,
    ...(v['checkpoint-dir'] ? { checkpointDir: String(v['checkpoint-dir']) } : {}),
    checkpointEvery: int(v, 'checkpoint-every'),
    giveUpAfterMs: num(v, 'give-up-after') * 1000,
    log: v.quiet ? silentLogger : consoleLogger,
    ...(ca ? { wsOptions: { ca } } : {}),
    onFailed: (why) => {
      console.error(`asyndgan node ${v.id}: refused: ${why}`);
      setTimeout(() => process.exit(1), 200);
    },
    onTrainingDone: (why) => {
      console.error(`asyndgan node ${v.id}: the server says training is over (${why}); ${node.stats.updatesSent} updates sent, ${node.stats.localSteps} local steps; exiting`);
      process.exit(0);
    },
  });
  console.error(`asyndgan node ${v.id} (fedavg-gan): ${own.slices.length} slices of ${data.name}, Adam ${adam}, connecting to ${v.server}`);
  const stop = (): void => void node.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await node.start();
}
