/**
 * `asyndgan experiment --data phantom|mricron|brats:DIR [--quick] [--out DIR]`: the paper's table
 * side by side. Trains every generator through a real loopback federation (`runLocalFederation`:
 * server + node processes over WebSocket, bytes counted on the sockets), then the same U-Net on
 * every row (src/eval/study.ts), and writes OUT/experiment.md, OUT/experiment.json and
 * OUT/experiment.png, rewritten after every finished unit so a partial run is readable. A second
 * run with the same settings and --out resumes: finished generators and segmenter runs are kept.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { init } from '../engine/index.js';
import { splitStats } from '../data/split-stats.js';
import { saveImagePng, writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import { pickFigureRows } from '../eval/report.js';
import { GENERATOR_KINDS, runStudy, summarizeStudy, type GeneratorKind, type GeneratorTrainer, type StudyOptions } from '../eval/study.js';
import { experimentFigure, experimentMarkdown, type ExperimentReport } from '../eval/study-report.js';
import { loadDataSource } from './data-source.js';
import { runLocalFederation, type LocalFederationOptions } from './demo.js';
import { int, num, parseOptions, UsageError } from './options.js';
import { FEDAVG_DEFAULTS } from '../fedavg/defaults.js';
import type { AggregationMode } from '../net/aggregate.js';

/** The node privacy preset of the asyndgan-private and asyndgan-low-noise rows. */
export const PRIVATE_ROW_PRESET = 'guarded';
/** The asyndgan-low-noise row's noise multiplier: the privacy frontier's trade-off (README, docs/PRIVACY.md). */
export const LOW_NOISE_ROW_NOISE = 0.1;
/**
 * The asyndgan-robust row's server rule: chosen when its one seed-5 run held up best against flipped
 * replies; on the means over four seeds coordinate-median does better (docs/PROTOCOL.md 8.1).
 */
export const ROBUST_ROW_AGGREGATION: AggregationMode = 'median-trust';

/** How each AsynDGAN generator kind's federation differs from the plain one (privacy off, clipped-median). */
function asyndganVariant(kind: GeneratorKind): { privacy: string; noise?: number; aggregation?: AggregationMode } {
  if (kind === 'asyndgan-private') return { privacy: PRIVATE_ROW_PRESET };
  if (kind === 'asyndgan-low-noise') return { privacy: PRIVATE_ROW_PRESET, noise: LOW_NOISE_ROW_NOISE };
  if (kind === 'asyndgan-robust') return { privacy: 'off', aggregation: ROBUST_ROW_AGGREGATION };
  return { privacy: 'off' };
}

export async function experimentCommand(argv: string[]): Promise<void> {
  const t0 = performance.now();
  const v = parseOptions('experiment', '--data phantom|mricron|brats:DIR [--quick] [--out DIR]', {
    data: { type: 'string', default: 'phantom', help: 'phantom | mricron | brats:DIR (split across --nodes centres)' },
    quick: { type: 'boolean', default: false, help: 'tiny sizes: a fast look and the test (overrides the size options)' },
    out: { type: 'string', default: 'runs/experiment', help: 'output folder (resumes from what is there)' },
    nodes: { type: 'string', default: '3', help: 'centres' },
    size: { type: 'string', default: '32', help: 'image size' },
    updates: { type: 'string', default: '96', help: 'generator updates per generator (AsynDGAN: rounds; FedAvg-GAN: rounds x E)' },
    'gan-lr': { type: 'string', default: String(FEDAVG_DEFAULTS.lr), help: 'generator and discriminator learning rate, both designs (docs/FEDAVG.md sweep)' },
    ngf: { type: 'string', default: '12', help: 'generator filters' },
    ndf: { type: 'string', default: '12', help: 'discriminator filters' },
    blocks: { type: 'string', default: '3', help: 'generator residual blocks' },
    'batch-size': { type: 'string', default: '4', help: 'masks per node per round' },
    'local-steps': { type: 'string', default: String(FEDAVG_DEFAULTS.localSteps), help: 'FedAvg-GAN local steps E per round (FEDAVG_DEFAULTS, docs/FEDAVG.md)' },
    kinds: { type: 'string', default: GENERATOR_KINDS.join(','), help: `generators to train: ${GENERATOR_KINDS.join(', ')}` },
    'gen-seeds': { type: 'string', default: '2', help: 'generator seeds 1..N' },
    'seg-seeds': { type: 'string', default: '5', help: 'segmenter seeds 1..N' },
    iters: { type: 'string', default: '150', help: 'segmenter iterations (every row)' },
    depth: { type: 'string', default: '2', help: 'U-Net poolings' },
    width: { type: 'string', default: '8', help: 'U-Net channels of the first block' },
    'seg-lr': { type: 'string', default: '0.002', help: 'segmenter learning rate' },
    'augment-centre': { type: 'string', default: '0', help: 'centre whose real data the augmentation row adds to the synthetic set' },
    'figure-slices': { type: 'string', default: '3', help: 'test slices shown per row in experiment.png' },
  }, argv);
  const quick = Boolean(v.quick);
  const size = quick ? 32 : int(v, 'size');
  const updates = quick ? 16 : int(v, 'updates');
  const gan = { ...(quick ? { ngf: 4, ndf: 4, blocks: 1 } : { ngf: int(v, 'ngf'), ndf: int(v, 'ndf'), blocks: int(v, 'blocks') }), lr: num(v, 'gan-lr') };
  const segSeedsN = quick ? 2 : int(v, 'seg-seeds');
  const genSeedsN = quick ? 1 : int(v, 'gen-seeds');
  const segmenter = quick
    ? { depth: 2, width: 4, iters: 8, batchSize: 4, lr: 2e-3 }
    : { depth: int(v, 'depth'), width: int(v, 'width'), iters: int(v, 'iters'), batchSize: 4, lr: num(v, 'seg-lr') };
  if (segSeedsN < 1 || genSeedsN < 1) throw new UsageError('--seg-seeds and --gen-seeds must be at least 1');
  if (updates < 1) throw new UsageError('--updates must be at least 1');
  if (size % 2 ** segmenter.depth !== 0) throw new UsageError(`--size ${size} must be a multiple of 2^depth = ${2 ** segmenter.depth}`);
  const kinds = String(v.kinds).split(',').map((s) => s.trim()).filter(Boolean) as GeneratorKind[];
  for (const k of kinds) if (!GENERATOR_KINDS.includes(k)) throw new UsageError(`--kinds: unknown generator "${k}" (use ${GENERATOR_KINDS.join(', ')})`);
  const nodes = int(v, 'nodes');
  const spec = String(v.data);
  if (!/^(phantom|mricron|brats:.+)$/.test(spec)) throw new UsageError(`--data must be phantom, mricron or brats:DIR, got "${spec}"`);
  const augmentCentre = int(v, 'augment-centre');
  if (augmentCentre >= nodes) throw new UsageError(`--augment-centre ${augmentCentre}: there are ${nodes} centres`);
  const localSteps = int(v, 'local-steps');
  if (localSteps < 1 || updates % localSteps !== 0) throw new UsageError(`--updates ${updates} must be a multiple of --local-steps ${localSteps} (same generator updates for both designs)`);
  // Same generator updates: AsynDGAN takes one per round, FedAvg-GAN E per round.
  const roundsOf = (kind: GeneratorKind) => (kind === 'fedavg-gan' ? updates / localSteps : updates);
  const batchSize = int(v, 'batch-size');
  const out = String(v.out);
  mkdirSync(out, { recursive: true });
  // Resuming reuses finished units, so it is only right with the settings that made them; more
  // seeds or other generator kinds are fine (they are other units).
  const fingerprint = { data: spec, nodes, size, updates, gan, segmenter, localSteps, batchSize, augmentCentre };
  const fpFile = join(out, 'settings.json');
  if (existsSync(fpFile)) {
    const before = readFileSync(fpFile, 'utf8');
    if (before !== JSON.stringify(fingerprint)) {
      throw new UsageError(`${out} holds a run with other settings (${fpFile}: ${before}); use another --out or the same settings`);
    }
  } else {
    await writeFileAtomic(fpFile, JSON.stringify(fingerprint));
  }

  // The data every row is evaluated on (seed 1); the federation's nodes load the same spec.
  const dataSeed = 1;
  const data = await loadDataSource(spec, { size, nodes, seed: dataSeed });
  const engine = await init();
  const split = splitStats(data.nodes, data.test);
  const figureSlices = pickFigureRows(data.test, int(v, 'figure-slices'));
  console.error(`asyndgan experiment: ${spec}, ${nodes} centres (${data.nodes.map((d) => d.slices.length).join('/')} slices), ${data.test.slices.length} test slices, ` +
    `${size}x${size}, ${updates} generator updates per generator, seeds ${genSeedsN} generator x ${segSeedsN} segmenter, adapter ${engine.gpu.adapterName}; out ${out}`);

  const trainGenerator: GeneratorTrainer = async (kind, seed, dir) => {
    const opts: LocalFederationOptions & { dataSeed?: number } = {
      algorithm: kind === 'fedavg-gan' ? 'fedavg-gan' : 'asyndgan',
      data: spec,
      nodes,
      size,
      batchSize,
      rounds: roundsOf(kind),
      out: dir,
      // Constant, then linear decay over the second half (as in the docs/FEDAVG.md sweep).
      gan: { ...gan, seed, decayIters: Math.floor(roundsOf(kind) / 2) },
      ...(kind === 'fedavg-gan' ? { localSteps, adam: FEDAVG_DEFAULTS.adam } : asyndganVariant(kind)),
      // Generator seeds vary the initialization; the split stays the experiment's (seed 1).
      dataSeed,
    };
    const r = await runLocalFederation(opts);
    return {
      path: r.generator,
      bytesPerRound: r.bytes.meanPerRound,
      bytesTotal: r.bytes.total,
      generatorUpdates: r.generatorUpdates,
      wallSeconds: r.wallSeconds,
      details: {
        algorithm: r.algorithm,
        ...(kind === 'fedavg-gan' ? { localSteps: r.localStepsPerRound, adam: FEDAVG_DEFAULTS.adam } : asyndganVariant(kind)),
        rounds: r.rounds,
        ngf: r.config.ngf,
        ndf: r.config.ndf,
        blocks: r.config.blocks,
      },
    };
  };

  const sizes = {
    size,
    centres: nodes,
    'slices per centre': data.nodes.map((d) => d.slices.length).join('/'),
    'test slices': data.test.slices.length,
    'generator updates': updates,
    generator: `ngf ${gan.ngf}, ndf ${gan.ndf}, ${gan.blocks} blocks, lr ${gan.lr}, batch ${batchSize} per node`,
    'FedAvg-GAN E': localSteps,
    segmenter: `depth ${segmenter.depth}, width ${segmenter.width}, ${segmenter.iters} iterations`,
    'generator seeds': genSeedsN,
    'segmenter seeds': segSeedsN,
  };
  const notes = [
    `asyndgan-private uses every node's \`${PRIVATE_ROW_PRESET}\` preset (src/privacy: clip 0.1, noise 1, query guard), asyndgan-low-noise the same preset with \`--noise ${LOW_NOISE_ROW_NOISE}\`; asyndgan, asyndgan-robust and the augmentation row use privacy off.`,
    `asyndgan-robust: the server combines the replies with \`--aggregation ${ROBUST_ROW_AGGREGATION}\` (per-node generator gradients weighted by their alignment with their coordinate-wise median, src/net/aggregate.ts); every other AsynDGAN row with the default clipped-median.`,
    `FedAvg-GAN: E = ${localSteps} local steps per round, Adam ${FEDAVG_DEFAULTS.adam}, lr ${gan.lr} for both designs (FEDAVG_DEFAULTS, chosen by the docs/FEDAVG.md sweep), ${updates / localSteps} rounds: the same ${updates} generator updates as AsynDGAN's ${updates} rounds.`,
    `The augmentation row is centre ${augmentCentre}'s real slices plus the AsynDGAN synthetic set (masks of every centre).`,
    'Synthetic sets: the generator\'s images for the masks of every centre\'s training slices (both designs hold those masks at the server or the sites).',
  ];
  const study: StudyOptions = {
    out,
    nodes: data.nodes,
    test: data.test,
    segmenter,
    segSeeds: Array.from({ length: segSeedsN }, (_, i) => i + 1),
    genSeeds: Array.from({ length: genSeedsN }, (_, i) => i + 1),
    kinds,
    trainGenerator,
    augmentCentre,
    figureSlices,
    // A federation round costs about as much as 4 segmenter iterations here (32x32, lavapipe).
    generatorCost: updates * 4,
  };
  const write = async (): Promise<string> => {
    const report: ExperimentReport = {
      command: 'experiment',
      data: spec,
      quick,
      sizes,
      split,
      results: summarizeStudy(study),
      seconds: (performance.now() - t0) / 1000,
      notes,
    };
    await writeFileAtomic(join(out, 'experiment.md'), experimentMarkdown(report));
    await saveImagePng(join(out, 'experiment.png'), experimentFigure(report, data.test, figureSlices));
    const path = join(out, 'experiment.json');
    await writeJsonAtomic(path, report);
    return path;
  };
  await runStudy({ ...study, onUnit: async () => void (await write()) });
  const path = await write();
  const final = summarizeStudy(study);
  for (const g of final.goals) console.log(`goal: ${g.claim}: ${g.status} (${g.detail})`);
  console.log(`report: ${path}`);
}
