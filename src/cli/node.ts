/**
 * `asyndgan node`: one hospital. Loads ITS data only (--data with --index picks this center's
 * share), uploads the masks once, and answers every round with d(loss)/d(fakes). Real images,
 * the discriminator and its optimizer state stay in this process (checkpointed to --checkpoint-dir).
 */
import { join } from 'node:path';
import { init } from '../engine/index.js';
import { conditionTensor, selectModalities } from '../data/index.js';
import { runScalarLog } from '../io/index.js';
import { consoleLogger, DiscriminatorNode, silentLogger, type ReplyInfo } from '../net/index.js';
import { EngineDiscriminator } from '../federation/discriminator-backend.js';
import { makeDiscriminatorUnits, modalityChannels, modalityNames } from '../train/modalities.js';
import { GAN_OPTIONS, ganConfig, int, makeOutputDir, num, parseOptions, UsageError } from './options.js';
import { splitAlgorithm } from './algorithm.js';
import { NODE_OPTIONS, loadNodeShare, nodeToken, readPemOption } from './server-options.js';
import { describePrivacy, PRIVACY_OPTIONS, privacyFromOptions } from './privacy-options.js';

export async function nodeCommand(argv: string[]): Promise<void> {
  // --algorithm fedavg-gan: the weight-sharing baseline (docs/FEDAVG.md), its own options.
  const { algorithm, rest } = splitAlgorithm(argv);
  if (algorithm === 'fedavg-gan') return (await import('./fedavg-node.js')).fedavgNodeCommand(rest);
  argv = rest;
  const v = parseOptions('node', '--server URL --id ID --token TOKEN --index K [options]', {
    ...NODE_OPTIONS,
    modalities: { type: 'string', help: 'modalities this node holds, a subset of the generator\'s, e.g. t1,t2 (default all)' },
    'per-modality-d': { type: 'boolean', default: false, help: 'one discriminator per held modality instead of one joint discriminator' },
    'checkpoint-dir': { type: 'string', help: 'checkpoint the discriminator here; resume from it' },
    'checkpoint-every': { type: 'string', default: '25', help: 'steps between local checkpoints' },
    'ca-file': { type: 'string', help: 'PEM CA certificate for a wss:// server' },
    cert: { type: 'string', help: 'mutual TLS: PEM client certificate to present to the server (with --key)' },
    key: { type: 'string', help: 'mutual TLS: PEM private key of --cert' },
    quiet: { type: 'boolean', default: false, help: 'no per-event log lines' },
    out: { type: 'string', help: 'this node\'s run folder: OUT/scalars.jsonl gets one line per reply (its D losses, epsilon). Default runs/node-<id>' },
    'status-every': { type: 'string', default: '25', help: 'a status line (rounds answered, D losses, epsilon) every this many replies; 0: none' },
    'give-up-after': { type: 'string', default: '600', help: 'seconds without reaching the server (wrong URL, refused, untrusted certificate) before exiting with an error' },
    ...PRIVACY_OPTIONS,
    ...GAN_OPTIONS,
  }, argv);
  const privacy = privacyFromOptions(v);
  const token = nodeToken(v);
  // TLS files first: a wrong path is reported before the data and the engine load.
  if (Boolean(v.cert) !== Boolean(v.key)) throw new UsageError('--cert and --key go together (a client certificate and its private key)');
  const tls = { ca: readPemOption(v, 'ca-file'), cert: readPemOption(v, 'cert'), key: readPemOption(v, 'key') };
  const wsOptions = Object.fromEntries(Object.entries(tls).filter(([, b]) => b !== undefined));
  const out = v.out !== undefined ? String(v.out) : join('runs', `node-${v.id}`);
  makeOutputDir(out);
  const cfg = ganConfig(v);
  const { data, own, size, index } = await loadNodeShare(v, cfg.seed);

  await init();
  // The generator makes every modality of the data set; this node keeps only the ones it holds.
  let held: number[];
  try {
    held = v.modalities === undefined ? [...own.modalities.keys()] : modalityChannels(own.modalities, String(v.modalities));
  } catch (err) {
    throw new UsageError(`--modalities: ${(err as Error).message}`);
  }
  const heldNames = modalityNames(own.modalities, held);
  const subset = held.length < own.modalities.length;
  const units = makeDiscriminatorUnits(cfg, {
    maskChannels: own.numClasses, imageChannels: own.modalities.length, held, perModality: Boolean(v['per-modality-d']), seed: cfg.seed + 1000 + index,
  });
  const heldData = subset ? selectModalities(own, heldNames) : own;
  const images = new Map(heldData.slices.map((s) => [s.key, s.image]));
  const backend = new EngineDiscriminator(units, { channels: held.length, height: size, width: size, get: (k) => images.get(k) }, cfg, subset ? { heldChannels: held } : {});
  const scalars = runScalarLog(out, false);
  const statusEvery = int(v, 'status-every');
  const node = new DiscriminatorNode({
    url: String(v.server),
    nodeId: String(v.id),
    token,
    backend,
    masks: {
      keys: own.slices.map((s) => s.key),
      data: conditionTensor(own.slices, own.numClasses),
      shape: [own.slices.length, own.numClasses, size, size],
    },
    modalities: heldNames,
    // The backend reads these channels of the fakes: the server's order must agree with the data's.
    modalityChannels: held,
    privacy,
    onFailed: (why) => {
      console.error(`asyndgan node ${v.id}: refused: ${why}`);
      // Let the error frame telling the server why reach the socket first.
      setTimeout(() => process.exit(1), 200);
    },
    onTrainingDone: (why) => {
      console.error(`asyndgan node ${v.id}: the server says training is over (${why}); ${node.stats.repliesSent} replies sent; exiting`);
      process.exit(0);
    },
    ...(v['checkpoint-dir'] ? { checkpointDir: String(v['checkpoint-dir']) } : {}),
    checkpointEvery: int(v, 'checkpoint-every'),
    giveUpAfterMs: num(v, 'give-up-after') * 1000,
    log: v.quiet ? silentLogger : consoleLogger,
    ...(Object.keys(wsOptions).length ? { wsOptions } : {}),
    onReply: (r) => {
      const eps = Number.isFinite(r.privacy.epsilon) ? r.privacy.epsilon : undefined;
      scalars.write(r.round, {
        'loss/D_real': r.losses.dReal, 'loss/D_fake': r.losses.dFake, replies: r.repliesSent, batch: r.batch,
        ...(eps !== undefined ? { 'privacy/epsilon': eps } : {}),
      });
      if (statusEvery > 0 && r.repliesSent % statusEvery === 0) console.error(statusLine(String(v.id), r));
    },
  });
  console.error(`asyndgan node ${v.id}: ${own.slices.length} slices of ${data.name} [${heldNames.join(', ')}], ${units.length} discriminator(s), connecting to ${v.server}`);
  console.error(`asyndgan node ${v.id}: ${describePrivacy(privacy)}`);
  const stop = () => void node.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await node.start();
}

/** e.g. "asyndgan node a: round 50, 50 replies, D real 0.693 fake 0.701, epsilon 2.31 at delta 1e-5 (budget 10)". */
export function statusLine(id: string, r: ReplyInfo): string {
  const p = r.privacy;
  const eps = Number.isFinite(p.epsilon)
    ? `epsilon ${p.epsilon.toFixed(3)} at delta ${p.delta}${Number.isFinite(p.epsilonBudget) ? ` (budget ${p.epsilonBudget})` : ''}`
    : `epsilon unbounded (privacy ${p.preset}: replies without noise)`;
  return `asyndgan node ${id}: round ${r.round}, ${r.repliesSent} replies, D real ${r.losses.dReal.toFixed(3)} fake ${r.losses.dFake.toFixed(3)}, ${eps}`;
}
