/**
 * `asyndgan audit <attack>`: privacy attacks on the federation, run as an attacker would, each
 * ending with ONE line of figures and writing OUT/audit-<attack>.json and OUT/audit-<attack>.png
 * (real | reconstruction | the attacker's best legitimate baseline).
 *   active      a malicious server (the real server code, bisecting fakes) against a real node process
 *   passive     an honest-but-curious server logging a normal federated run (real server + node processes)
 *   membership  does a released generator render its training masks better than held-out ones? (ROC AUC)
 *
 * Separation: the attack code (src/audit/active.ts, passive.ts, membership.ts) is handed only what
 * the attacker has (the protocol, the uploaded masks, public geometry, a population prior from the
 * held-out split). The nodes' real images are read here, after the attack, for scoring only.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { conditionTensor, makePhantom, type PhantomModality, type Slice } from '../data/index.js';
import { meanImage, mae, psnr, scoreReconstruction, type ReconstructionScores } from '../audit/scores.js';
import { writeAuditGrid, writeAuditJson } from '../audit/report.js';
import { ESTIMATORS } from '../audit/sign-estimators.js';
import { loadDataSource, type FederatedData } from './data-source.js';
import { GAN_OPTIONS, ganConfig, int, num, parseOptions, UsageError } from './options.js';
import type { GeneratorInfo } from './train.js';

const ATTACKS: Record<string, (argv: string[]) => Promise<void>> = {
  active: activeCommand,
  passive: passiveCommand,
  membership: membershipCommand,
};

export async function auditCommand(argv: string[]): Promise<void> {
  const [attack, ...rest] = argv;
  const run = attack ? ATTACKS[attack] : undefined;
  if (!run) {
    const msg = `usage: asyndgan audit <attack> [options]   (asyndgan audit <attack> --help)

attacks:
  active      malicious server bisecting a real node's pixels on the sign of its replies
  passive     honest-but-curious server reconstructing from a normal run's logged fakes and gradients
  membership  ROC AUC of "G reproduces training images better than held-out ones"`;
    if (attack === undefined || attack === '--help' || attack === '-h') {
      console.log(msg);
      return;
    }
    throw new UsageError(`audit: unknown attack "${attack}"\n\n${msg}`);
  }
  await run(rest);
}

/** Options shared by the attacks that start node processes. */
const FEDERATION_OPTIONS = {
  data: { type: 'string', default: 'phantom', help: 'phantom[:mods] | mricron | brats:DIR | png:IMAGES,LABELS' },
  size: { type: 'string', default: '32', help: 'image size (square)' },
  nodes: { type: 'string', default: '3', help: 'centers the data set is split into' },
  'node-flags': { type: 'string', default: '', help: 'extra flags for every `asyndgan node` (e.g. "--privacy off"), space-separated' },
  'round-timeout': { type: 'string', default: '30000', help: 'ms a round waits for replies' },
  out: { type: 'string', default: 'runs/audit', help: 'output folder' },
} as const;

function nodeModelArgs(v: Record<string, string | boolean>): string[] {
  return ['--ndf', v.ndf, '--d-layers', v['d-layers'], '--norm', v.norm, '--lr', v.lr, '--beta1', v.beta1, '--seed', v.seed,
    ...String(v['node-flags']).split(/\s+/).filter(Boolean)].map(String);
}

/** The population prior: the mean image of the held-out split (public, holds no node's slice). */
function populationMean(data: FederatedData): Float32Array {
  return meanImage(data.test.slices.map((s) => s.image));
}

/**
 * Score every estimator's reconstructions; the headline is the strongest (chosen here, with the
 * real images: an upper bound on this attacker, never an understatement).
 */
function scoreEstimators(
  byEstimator: ReadonlyMap<string, Float32Array[]>, real: Float32Array[],
  baselines: Parameters<typeof scoreReconstruction>[2], geometry: Parameters<typeof scoreReconstruction>[3],
): { best: string; scores: ReconstructionScores; all: Record<string, { psnr: number; ssim: number; gain: number }> } {
  let best: { name: string; s: ReconstructionScores } | undefined;
  const all: Record<string, { psnr: number; ssim: number; gain: number }> = {};
  for (const [name, est] of byEstimator) {
    const s = scoreReconstruction(est, real, baselines, geometry);
    all[name] = { psnr: s.psnr, ssim: s.ssim, gain: s.gain };
    if (!best || s.psnr > best.s.psnr) best = { name, s };
  }
  return { best: best!.name, scores: best!.s, all };
}

function summaryLine(name: string, s: ReconstructionScores, extra: string): string {
  return `${name}: PSNR ${s.psnr.toFixed(1)} dB, SSIM ${s.ssim.toFixed(3)}, best legitimate baseline ${s.bestBaseline.name} ${s.bestBaseline.psnr.toFixed(1)} dB, gain ${s.gain.toFixed(1)} dB${extra}`;
}

async function writeOutputs(out: string, name: string, report: Record<string, unknown>, grid: { rows: { label: string; real: Float32Array; estimate: Float32Array; baseline: Float32Array }[]; modalities: string[]; size: number; title: string; baselineName: string }): Promise<void> {
  await writeAuditJson(join(out, `audit-${name}.json`), report);
  await writeAuditGrid(join(out, `audit-${name}.png`), grid.rows, grid.modalities, grid.size, grid.title, grid.baselineName);
}

// ---- active -------------------------------------------------------------------------------

async function activeCommand(argv: string[]): Promise<void> {
  const v = parseOptions('audit active', '[options]', {
    ...FEDERATION_OPTIONS,
    index: { type: 'string', default: '0', help: 'which center the victim node is' },
    rounds: { type: 'string', default: '12', help: 'attack rounds' },
    repeats: { type: 'string', default: '1', help: 'replies per bisection step (majority of the summed gradient)' },
    'batch-size': { type: 'string', default: '0', help: 'masks asked per round (0: every mask of the victim)' },
    ...GAN_OPTIONS,
    ndf: { type: 'string', default: '8', help: 'victim discriminator filters' },
  }, argv);
  const { runActiveAttack } = await import('../audit/active.js');
  const size = int(v, 'size');
  const index = int(v, 'index');
  const data = await loadDataSource(String(v.data), { size, nodes: int(v, 'nodes'), seed: int(v, 'seed') });
  const victimShare = data.nodes[index];
  if (!victimShare) throw new UsageError(`--index ${index}: the data set has ${data.nodes.length} centers`);
  const out = resolve(String(v.out));
  mkdirSync(out, { recursive: true });
  const prior = populationMean(data);
  const rounds = int(v, 'rounds');
  const t0 = Date.now();
  // --- the attack: public geometry and the prior only ---
  const attack = await runActiveAttack({
    maskChannels: data.test.numClasses, modalities: data.test.modalities, size,
    batchSize: int(v, 'batch-size') || victimShare.slices.length,
    lambdaL1: num(v, 'lambda-l1'), rounds, repeats: int(v, 'repeats'), roundTimeoutMs: num(v, 'round-timeout'),
    nodeArgs: ['--data', String(v.data), '--index', String(index), '--nodes', String(v.nodes), '--size', String(size), ...nodeModelArgs(v)],
    prior,
    onRound: (r) => process.stderr.write(`\raudit active: round ${r}/${rounds}`),
  });
  process.stderr.write('\n');
  // --- scoring: the victim's real images, used only from here on ---
  const first = attack.estimates.values().next().value!;
  const keys = victimShare.slices.filter((s) => first.has(s.key));
  if (keys.length === 0) throw new Error(`the attack got no reply from the victim (node exit code ${attack.nodeExitCode}):\n${attack.nodeLog.slice(-2000)}`);
  const real = keys.map((s) => s.image);
  const byEstimator = new Map([...attack.estimates].map(([name, m]) => [name, keys.map((s) => m.get(s.key)!)]));
  const { best, scores, all } = scoreEstimators(byEstimator, real, { 'population mean': prior }, { channels: data.test.modalities.length, height: size, width: size });
  const estimates = byEstimator.get(best)!;
  const nodeMean = meanImage(victimShare.slices.map((s) => s.image));
  const nodeMeanPsnr = real.reduce((s, r) => s + psnr(nodeMean, r), 0) / real.length;
  const line = summaryLine('audit active', scores, ` (estimator ${best}; victim's mean image, an oracle reference: ${nodeMeanPsnr.toFixed(1)} dB; ${keys.length} images, ${attack.rounds} rounds x repeats ${v.repeats}, lambdaL1 ${v['lambda-l1']}, ${attack.answeredReplies} replies with signal, ${attack.emptyReplies} without${attack.reported.epsilon !== undefined ? `, node epsilon ${attack.reported.epsilon}` : ''})`);
  await writeOutputs(out, 'active', {
    attack: 'active', data: data.name, size, index, rounds: attack.rounds, roundsAsked: rounds, repeats: int(v, 'repeats'), lambdaL1: num(v, 'lambda-l1'),
    nodeFlags: String(v['node-flags']), dataRange: '[-1, 1] (PSNR/SSIM data range 2)',
    psnr: scores.psnr, ssim: scores.ssim, gain: scores.gain, estimator: best, estimators: all, baselines: scores.baselines, bestBaseline: scores.bestBaseline, nodeMeanPsnr,
    images: keys.length, answeredReplies: attack.answeredReplies, emptyReplies: attack.emptyReplies, nodeReported: attack.reported, nodeExitCode: attack.nodeExitCode,
    nodeLogTail: attack.nodeLog.slice(-3000), perImage: Object.fromEntries(keys.map((s, i) => [s.key, { ...scores.perImage[i]!, answers: attack.answers[s.key] }])),
    seconds: (Date.now() - t0) / 1000, summary: line,
  }, {
    rows: keys.slice(0, 4).map((s, i) => ({ label: s.key, real: real[i]!, estimate: estimates[i]!, baseline: prior })),
    modalities: data.test.modalities, size, title: `active attack, ${attack.rounds} rounds: real | reconstruction | population mean`, baselineName: 'mean',
  });
  console.log(line);
}

// ---- passive ------------------------------------------------------------------------------

async function passiveCommand(argv: string[]): Promise<void> {
  const v = parseOptions('audit passive', '[options]', {
    ...FEDERATION_OPTIONS,
    rounds: { type: 'string', default: '200', help: 'rounds of the normal federated run' },
    'batch-size': { type: 'string', default: '4', help: 'masks per node per round' },
    ...GAN_OPTIONS,
    ngf: { type: 'string', default: '8', help: 'generator filters' },
    ndf: { type: 'string', default: '8', help: 'discriminator filters' },
    blocks: { type: 'string', default: '3', help: 'generator residual blocks' },
    'decay-iters': { type: 'string', default: '100', help: 'final rounds with linear lr decay' },
  }, argv);
  const [{ runPassiveFederation, renderMasks, passiveEstimate }, { init }, { saveModule }] = await Promise.all([
    import('../audit/passive.js'), import('../engine/index.js'), import('../models/index.js'),
  ]);
  const size = int(v, 'size');
  const rounds = int(v, 'rounds');
  const nodes = int(v, 'nodes');
  const cfg = ganConfig({ ...v, iters: String(rounds), 'decay-iters': String(Math.min(int(v, 'decay-iters'), rounds)) });
  const data = await loadDataSource(String(v.data), { size, nodes, seed: cfg.seed });
  const out = resolve(String(v.out));
  mkdirSync(out, { recursive: true });
  await init();
  const t0 = Date.now();
  const model = ['--ngf', v.ngf, '--blocks', v.blocks, '--iters', String(rounds), '--decay-iters', String(cfg.decayIters), '--lambda-l1', v['lambda-l1']].map(String);
  // --- the normal run; the server only logs ---
  const run = await runPassiveFederation({
    config: cfg, maskChannels: data.test.numClasses, modalities: data.test.modalities, size, batchSize: int(v, 'batch-size'), rounds,
    roundTimeoutMs: num(v, 'round-timeout'), nodes,
    nodeArgs: (k) => ['--data', String(v.data), '--index', String(k), '--nodes', String(nodes), '--size', String(size), ...model, ...nodeModelArgs(v)],
    onRound: (r) => process.stderr.write(`\raudit passive: round ${r}/${rounds}`),
  });
  process.stderr.write('\n');
  const seconds = (Date.now() - t0) / 1000;
  const maskShape = [data.test.numClasses, size, size] as const;
  const keys = [...run.logged.keys()].sort();
  if (keys.length === 0) throw new Error(`no reply was logged:\n${Object.values(run.nodeLogs).join('\n').slice(-3000)}`);
  const renders = await renderMasks(run.generator, keys.map((k) => run.masks.get(k)!), maskShape);
  // The attacker's estimates: from the log and its own generator only.
  // Each estimator from either legitimate starting point: its generator's output, or the population mean.
  const populationPrior = populationMean(data);
  const byEstimator = new Map<string, Float32Array[]>(ESTIMATORS.flatMap((e) => [
    [`${e.name}, prior G(mask)`, keys.map((k, i) => passiveEstimate(run.logged.get(k)!, renders[i]!, e.priorWeight))] as const,
    [`${e.name}, prior population mean`, keys.map((k) => passiveEstimate(run.logged.get(k)!, populationPrior, e.priorWeight))] as const,
  ]));
  const lastFakes = keys.map((k) => run.logged.get(k)!.fakes.at(-1)!);
  const info: GeneratorInfo = {
    config: cfg, conditionChannels: data.test.numClasses, imageChannels: data.test.modalities.length, size,
    classNames: data.test.classNames, modalities: data.test.modalities, trainer: 'federated',
    federation: { rounds: run.metrics.round, nodes: run.nodeIds.length, nodeIds: run.nodeIds },
  };
  const generatorPath = join(out, 'generator.safetensors');
  await saveModule(generatorPath, run.generator, { asyndgan_generator: JSON.stringify(info) });
  // --- scoring: real images from here on ---
  const realByKey = new Map(data.nodes.flatMap((d) => d.slices.map((s) => [s.key, s.image] as const)));
  const real = keys.map((k) => realByKey.get(k)!);
  const { best, scores, all } = scoreEstimators(byEstimator, real, { 'G(mask)': renders, 'last fake': lastFakes, 'population mean': populationPrior }, { channels: data.test.modalities.length, height: size, width: size });
  const estimates = byEstimator.get(best)!;
  const testRenders = await renderMasks(run.generator, data.test.slices.map((s) => maskOf(s, data.test.numClasses)), maskShape);
  const generatorL1 = data.test.slices.reduce((s, sl, i) => s + mae(testRenders[i]!, sl.image), 0) / data.test.slices.length;
  const reported = Object.fromEntries(run.metrics.nodes.map((n) => [n.id, n.stats.reported]));
  const eps = run.metrics.nodes.map((n) => n.stats.reported.epsilon).filter((e): e is number => e !== undefined);
  const epsText = eps.length ? `, node epsilon max ${Math.max(...eps).toFixed(2)}` : '';
  const constraints = keys.reduce((s, k) => s + run.logged.get(k)!.grads.length, 0);
  const line = summaryLine('audit passive', scores, ` (estimator ${best}; ${keys.length} images, ${constraints} logged replies over ${run.metrics.round} rounds; generator L1 on held-out ${generatorL1.toFixed(3)}${epsText})`);
  await writeOutputs(out, 'passive', {
    attack: 'passive', data: data.name, size, rounds: run.metrics.round, roundsAsked: rounds, config: cfg, nodeFlags: String(v['node-flags']),
    dataRange: '[-1, 1] (PSNR/SSIM data range 2)', psnr: scores.psnr, ssim: scores.ssim, gain: scores.gain, estimator: best, estimators: all, baselines: scores.baselines, bestBaseline: scores.bestBaseline,
    generatorL1, generator: generatorPath, nodeReported: reported, images: keys.length, loggedReplies: constraints, seconds,
    nodeLogTails: Object.fromEntries(Object.entries(run.nodeLogs).map(([id, l]) => [id, l.slice(-1500)])),
    perImage: Object.fromEntries(keys.map((k, i) => [k, { ...scores.perImage[i]!, replies: run.logged.get(k)!.grads.length }])), summary: line,
  }, {
    rows: keys.slice(0, 4).map((k, i) => ({ label: k, real: real[i]!, estimate: estimates[i]!, baseline: renders[i]! })),
    modalities: data.test.modalities, size, title: `passive attack after ${run.metrics.round} rounds: real | reconstruction | G(mask)`, baselineName: 'G',
  });
  console.log(line);
}

function maskOf(s: Slice, numClasses: number): Float32Array {
  return conditionTensor([s], numClasses);
}

// ---- membership -----------------------------------------------------------------------------

async function membershipCommand(argv: string[]): Promise<void> {
  const v = parseOptions('audit membership', '--generator G.safetensors [options]', {
    generator: { type: 'string', help: 'the released generator.safetensors' },
    data: { type: 'string', default: 'phantom', help: 'the data set it was trained on (members: the nodes\' slices; non-members: the held-out split)' },
    nodes: { type: 'string', default: '3', help: 'centers the data set is split into' },
    'non-members': { type: 'string', default: 'auto', help: 'test: the held-out split | fresh (phantom only): unseen slices of the same sites | auto: fresh for phantom, else test' },
    out: { type: 'string', default: 'runs/audit', help: 'output folder' },
  }, argv);
  if (!v.generator) throw new UsageError('audit membership needs --generator G.safetensors');
  const kind = String(v['non-members']);
  if (!['auto', 'test', 'fresh'].includes(kind)) throw new UsageError(`--non-members must be auto, test or fresh, got "${kind}"`);
  const phantom = String(v.data).split(':')[0] === 'phantom';
  if (kind === 'fresh' && !phantom) throw new UsageError('--non-members fresh needs --data phantom');
  const fresh = kind === 'fresh' || (kind === 'auto' && phantom);
  const [{ loadGenerator }, { init }, { renderMasks }, { membershipAuc }] = await Promise.all([
    import('../eval/generator.js'), import('../engine/index.js'), import('../audit/passive.js'), import('../audit/membership.js'),
  ]);
  await init();
  const { generator, info } = await loadGenerator(String(v.generator));
  const data = await loadDataSource(String(v.data), { size: info.size, nodes: int(v, 'nodes'), seed: info.config.seed });
  const out = resolve(String(v.out));
  mkdirSync(out, { recursive: true });
  const C = data.test.numClasses;
  const maskShape = [C, info.size, info.size] as const;
  const members = data.nodes.flatMap((d) => d.slices);
  // Non-members from the members' own distribution where we can draw them: the phantom renders
  // slice i of site k from its own seeded stream, so slices past each node's share are new
  // patients of the same site (the held-out split mixes sites and tumour sizes, so it differs in
  // distribution from any one node's share, which an AUC would pick up as well as memorization).
  const nonMembers = fresh ? freshPhantomSlices(String(v.data), info.size, int(v, 'nodes'), info.config.seed, data.nodes) : data.test.slices;
  const rm = await renderMasks(generator, members.map((s) => maskOf(s, C)), maskShape);
  const rn = await renderMasks(generator, nonMembers.map((s) => maskOf(s, C)), maskShape);
  const r = membershipAuc(members.map((s, i) => ({ render: rm[i]!, real: s.image })), nonMembers.map((s, i) => ({ render: rn[i]!, real: s.image })));
  const line = `audit membership: AUC ${r.auc.toFixed(3)} (${r.members} members, ${r.nonMembers} ${fresh ? 'fresh same-site' : 'held-out'} non-members; mean |G(mask)-real| members ${r.memberL1.toFixed(4)}, non-members ${r.nonMemberL1.toFixed(4)})`;
  await writeAuditJson(join(out, 'audit-membership.json'), { attack: 'membership', generator: String(v.generator), data: data.name, nonMemberSet: fresh ? 'fresh phantom slices of the same sites' : 'held-out split', ...r, score: '-mean |G(mask) - real| per slice', summary: line });
  const rows = [...members.slice(0, 2).map((s, i) => ({ label: `member ${s.key}`, real: s.image, estimate: rm[i]!, baseline: rm[i]! })),
    ...nonMembers.slice(0, 2).map((s, i) => ({ label: `non-member ${s.key}`, real: s.image, estimate: rn[i]!, baseline: rn[i]! }))];
  await writeAuditGrid(join(out, 'audit-membership.png'), rows, data.test.modalities, info.size, `membership: real | G(mask) | G(mask), AUC ${r.auc.toFixed(3)}`, 'G');
  console.log(line);
}

/** Slices 48.. of each phantom site: never in any node's share (checked), same distribution. */
function freshPhantomSlices(spec: string, size: number, nodes: number, seed: number, shares: readonly { slices: readonly Slice[] }[]): Slice[] {
  const mods = spec.split(':')[1];
  const per = shares.map((d) => d.slices.length);
  const more = makePhantom({ size, numNodes: nodes, seed, slicesPerNode: per.map((n) => 2 * n), ...(mods ? { modalities: mods.split(',') as PhantomModality[] } : {}) });
  return more.nodes.flatMap((d, k) => {
    const own = shares[k]!.slices;
    own.forEach((s, i) => {
      if (d.slices[i]!.key !== s.key || d.slices[i]!.image.some((x, j) => x !== s.image[j])) throw new Error(`phantom slice ${s.key} is not reproducible: cannot draw fresh non-members`);
    });
    return d.slices.slice(own.length);
  });
}
