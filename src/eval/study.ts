/**
 * The paper's comparison table, side by side (`asyndgan experiment`): one U-Net configuration,
 * trained on each row's training set and tested on the same held-out REAL slices:
 *
 *   real-pooled        every centre's real data pooled (what no single centre may do)
 *   real-centre-k      centre k's real data alone
 *   fedavg-gan         synthetic images from a FedAvg-GAN generator (weights shared and averaged)
 *   asyndgan           synthetic images from an AsynDGAN generator (privacy off)
 *   asyndgan-private   synthetic images from AsynDGAN under a node privacy preset
 *   asyndgan-low-noise the same preset with a lower noise multiplier (the measured trade-off)
 *   asyndgan-robust    synthetic images from AsynDGAN with the server's 'median-trust' rule
 *   centre-K+asyndgan  centre K's real data plus the AsynDGAN synthetic set (augmentation)
 *
 * Synthetic sets are the generator's images for the masks of every centre (the masks reach the
 * server in both designs). Each generator is trained by a `GeneratorTrainer` (the CLI's is a
 * real loopback federation) once per generator seed; each row is trained once per segmenter seed
 * (and per generator seed for synthetic rows). Every finished unit of work (a generator, one
 * segmenter run) is saved atomically as JSON under the output folder and is not redone by a
 * second run with the same settings: the study resumes.
 *
 * Rows are summarized by the mean and a 95% t-interval over their runs (generator and segmenter
 * seeds pooled as independent runs); claims and goals compare intervals (interval.ts).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { concatDatasets, type Dataset, type Slice } from '../data/index.js';
import { targetClassIds } from '../data/split-stats.js';
import { writeJsonAtomic } from '../io/index.js';
import type { ProgressStream } from '../cli/progress.js';
import { Progress } from '../cli/progress.js';
import { generatorSynthesizer, synthesizeDataset } from './experiment.js';
import { loadGenerator } from './generator.js';
import { compareIntervals, tInterval, type Comparison, type Interval } from './interval.js';
import { sliceMetrics, stat } from './metrics.js';
import { DEFAULT_SEGMENTER_CONFIG, Segmenter, type SegmenterConfig } from './segmenter.js';

/** The generators the study trains. */
export type GeneratorKind = 'asyndgan' | 'fedavg-gan' | 'asyndgan-private' | 'asyndgan-low-noise' | 'asyndgan-robust';
export const GENERATOR_KINDS: readonly GeneratorKind[] = ['asyndgan', 'fedavg-gan', 'asyndgan-private', 'asyndgan-low-noise', 'asyndgan-robust'];

/** What a trained generator cost, measured by whoever trained it. */
export interface GeneratorRecord {
  kind: GeneratorKind;
  seed: number;
  /** generator.safetensors. */
  path: string;
  bytesPerRound: number;
  bytesTotal: number;
  generatorUpdates: number;
  wallSeconds: number;
  /** Anything else the trainer reports (algorithm details, privacy preset). */
  details?: Record<string, unknown>;
}

/** Trains one generator of `kind` with `seed`, writing into `out`. */
export type GeneratorTrainer = (kind: GeneratorKind, seed: number, out: string) => Promise<Omit<GeneratorRecord, 'kind' | 'seed'>>;

export interface StudyOptions {
  /** Output folder: generators/, runs/ (one JSON per finished unit). */
  out: string;
  nodes: readonly Dataset[];
  test: Dataset;
  segmenter: Partial<SegmenterConfig>;
  /** Segmenter seeds (>= 5 for the issue's goal). */
  segSeeds: readonly number[];
  /** Generator seeds (>= 2). */
  genSeeds: readonly number[];
  /** Generators to train; a kind left out (or failing) reports 'not run'. */
  kinds: readonly GeneratorKind[];
  trainGenerator: GeneratorTrainer;
  /** The centre whose real data the augmentation row adds to the synthetic set (default 0). */
  augmentCentre?: number;
  /** Test slices whose predictions are kept for the figure. */
  figureSlices: readonly number[];
  progress?: ProgressStream | false;
  /** Cost of training one generator in segmenter iterations, for the overall ETA (default 1000). */
  generatorCost?: number;
  /** Called whenever a unit of work finished (e.g. to rewrite the report). */
  onUnit?: (done: number, total: number) => Promise<void> | void;
  log?: (line: string) => void;
}

export type RowKind = 'real' | 'synthetic' | 'real+synthetic';

export interface RowSpec {
  id: string;
  label: string;
  kind: RowKind;
  /** Generator behind the synthetic images. */
  generator?: GeneratorKind;
  /** Centre whose real data the row uses (single-centre and augmentation rows). */
  centre?: number;
}

/** One segmenter run of one row. */
export interface RunRecord {
  row: string;
  genSeed: number | null;
  segSeed: number;
  /** The primary metric (see StudyResults.metric). */
  dice: number;
  /** Mean foreground Dice over every class (secondary). */
  diceForeground: number;
  /** HD95 of the primary target (pixels; mean over slices where defined). */
  hd95: number;
  trainSlices: number;
  trainSeconds: number;
  /** Predicted label maps of the figure's test slices (first seeds only). */
  figure?: number[][];
  /** A training image (first modality) of the row: what the segmenter learned from. */
  sample?: number[];
}

export interface RowResult extends RowSpec {
  status: 'done' | 'partial' | 'not run';
  runs: RunRecord[];
  dice: Interval;
  diceForeground: Interval;
  hd95: Interval;
  /** Wire cost of the row's generator (mean over generator seeds); absent for real rows. */
  wire?: { bytesPerRound: number; bytesTotal: number; generatorUpdates: number; generatorSeconds: number; seeds: number };
  segmenterSeconds: number;
}

export interface StudyResults {
  /** What `dice` measures. */
  metric: string;
  targetClasses: string[];
  rows: RowResult[];
  generators: GeneratorRecord[];
  segSeeds: number[];
  genSeeds: number[];
  segmenter: SegmenterConfig;
  comparisons: ClaimLine[];
  goals: ClaimLine[];
}

/** One claim or goal and whether the measurements support it. */
export interface ClaimLine {
  claim: string;
  status: 'met' | 'not met' | 'tie' | 'not run';
  detail: string;
}

/** The rows of a study with `centres` centres (see the module comment). */
export function studyRows(centres: number, augmentCentre = 0): RowSpec[] {
  return [
    { id: 'real-pooled', label: 'real, all centres pooled', kind: 'real' },
    ...Array.from({ length: centres }, (_, k): RowSpec => ({ id: `real-centre-${k}`, label: `real, centre ${k} only`, kind: 'real', centre: k })),
    { id: 'fedavg-gan', label: 'synthetic, FedAvg-GAN', kind: 'synthetic', generator: 'fedavg-gan' },
    { id: 'asyndgan', label: 'synthetic, AsynDGAN', kind: 'synthetic', generator: 'asyndgan' },
    { id: 'asyndgan-private', label: 'synthetic, AsynDGAN, node privacy', kind: 'synthetic', generator: 'asyndgan-private' },
    { id: 'asyndgan-low-noise', label: 'synthetic, AsynDGAN, node privacy, low noise', kind: 'synthetic', generator: 'asyndgan-low-noise' },
    { id: 'asyndgan-robust', label: 'synthetic, AsynDGAN, median-trust aggregation', kind: 'synthetic', generator: 'asyndgan-robust' },
    { id: `centre-${augmentCentre}+asyndgan`, label: `real centre ${augmentCentre} + synthetic AsynDGAN`, kind: 'real+synthetic', generator: 'asyndgan', centre: augmentCentre },
  ];
}

/** The primary metric: whole-target Dice when the data has tumour classes, else mean foreground Dice. */
export function primaryMetric(classNames: readonly string[]): { name: string; target: number[] | null } {
  const ids = targetClassIds(classNames);
  const foreground = classNames.length - 1;
  if (ids.length === foreground) return { name: 'mean foreground Dice', target: null };
  return { name: `whole-tumour Dice (${ids.map((c) => classNames[c]).join(' + ')})`, target: ids };
}

/** Scores predicted label maps against the truth: primary Dice, foreground Dice, primary HD95 (means over slices). */
export function scorePredictions(pred: readonly Uint8Array[], truth: readonly Slice[], test: Dataset, target: number[] | null): { dice: number; diceForeground: number; hd95: number } {
  const { width: W, height: H, numClasses: C } = test;
  const isT = new Uint8Array(256);
  for (const c of target ?? []) isT[c] = 1;
  // Per-slice values; stat() averages the finite ones (NaN when there are none).
  const fgDice: number[] = [], targetDice: number[] = [], hd95: number[] = [];
  pred.forEach((p, i) => {
    const t = truth[i]!.mask;
    const present = sliceMetrics(p, t, W, H, C).slice(1).filter((m) => m.present);
    if (present.length > 0) fgDice.push(stat(present.map((m) => m.dice)).mean);
    if (target) {
      const m = sliceMetrics(p.map((v) => isT[v]!), t.map((v) => isT[v]!), W, H, 2)[1]!;
      if (m.present) {
        targetDice.push(m.dice);
        hd95.push(m.hd95);
      }
    } else {
      hd95.push(stat(present.map((m) => m.hd95)).mean);
    }
  });
  const diceForeground = stat(fgDice).mean;
  return { dice: target ? stat(targetDice).mean : diceForeground, diceForeground, hd95: stat(hd95).mean };
}

function readJson<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined; // a torn file cannot exist (atomic writes), but a foreign one might: redo it
  }
}

const runFile = (out: string, row: string, genSeed: number | null, segSeed: number) => join(out, 'runs', `${row}__${genSeed === null ? 'real' : `g${genSeed}`}__s${segSeed}.json`);
const genFile = (out: string, kind: GeneratorKind, seed: number) => join(out, 'generators', `${kind}-g${seed}.json`);

/** Reads whatever units are on disk and summarizes them (also used for partial reports). */
export function summarizeStudy(o: Pick<StudyOptions, 'out' | 'nodes' | 'test' | 'segmenter' | 'segSeeds' | 'genSeeds' | 'kinds' | 'augmentCentre'>): StudyResults {
  const rows = studyRows(o.nodes.length, o.augmentCentre ?? 0);
  const generators: GeneratorRecord[] = [];
  for (const kind of GENERATOR_KINDS) for (const g of o.genSeeds) {
    const r = readJson<GeneratorRecord>(genFile(o.out, kind, g));
    if (r) generators.push(r);
  }
  const results: RowResult[] = rows.map((spec) => {
    const genSeeds = spec.generator ? o.genSeeds : [null];
    const runs: RunRecord[] = [];
    for (const g of genSeeds) for (const s of o.segSeeds) {
      const r = readJson<RunRecord>(runFile(o.out, spec.id, g, s));
      if (r) runs.push(r);
    }
    const expected = genSeeds.length * o.segSeeds.length;
    const gens = spec.generator ? generators.filter((x) => x.kind === spec.generator) : [];
    const mean = (f: (g: GeneratorRecord) => number) => gens.reduce((a, x) => a + f(x), 0) / gens.length;
    return {
      ...spec,
      status: runs.length === 0 ? 'not run' : runs.length < expected ? 'partial' : 'done',
      runs,
      dice: tInterval(runs.map((r) => r.dice)),
      diceForeground: tInterval(runs.map((r) => r.diceForeground)),
      hd95: tInterval(runs.map((r) => r.hd95)),
      ...(gens.length > 0
        ? { wire: { bytesPerRound: mean((g) => g.bytesPerRound), bytesTotal: mean((g) => g.bytesTotal), generatorUpdates: mean((g) => g.generatorUpdates), generatorSeconds: mean((g) => g.wallSeconds), seeds: gens.length } }
        : {}),
      segmenterSeconds: runs.reduce((a, r) => a + r.trainSeconds, 0),
    };
  });
  const { comparisons, goals } = checkGoals(results, o.augmentCentre ?? 0);
  return {
    metric: primaryMetric(o.test.classNames).name,
    targetClasses: (primaryMetric(o.test.classNames).target ?? []).map((c) => o.test.classNames[c]!),
    rows: results,
    generators,
    segSeeds: [...o.segSeeds],
    genSeeds: [...o.genSeeds],
    segmenter: { ...DEFAULT_SEGMENTER_CONFIG, ...o.segmenter },
    comparisons,
    goals,
  };
}

function cmpWord(c: Comparison): string {
  return c === 'better' ? 'above' : c === 'worse' ? 'below' : 'tie';
}

const ivText = (i: Interval) => `${i.mean.toFixed(3)} [${i.lo.toFixed(3)}, ${i.hi.toFixed(3)}]`;

/** The paper's comparisons and the issue's goals, decided on the 95% intervals. */
export function checkGoals(rows: readonly RowResult[], augmentCentre: number): { comparisons: ClaimLine[]; goals: ClaimLine[] } {
  const by = (id: string) => rows.find((r) => r.id === id);
  const ran = (r: RowResult | undefined): r is RowResult => !!r && r.runs.length > 0;
  const pooled = by('real-pooled');
  const asyn = by('asyndgan');
  const fed = by('fedavg-gan');
  const priv = by('asyndgan-private');
  const centres = rows.filter((r) => r.kind === 'real' && r.centre !== undefined);
  const comparisons: ClaimLine[] = [];
  const vs = (a: RowResult | undefined, b: RowResult | undefined): ClaimLine => {
    if (!ran(a) || !ran(b)) return { claim: `${a?.id ?? '?'} vs ${b?.id ?? '?'}`, status: 'not run', detail: 'a row has no runs' };
    const c = compareIntervals(a.dice, b.dice);
    return { claim: `${a.id} vs ${b.id}`, status: c === 'better' ? 'met' : c === 'worse' ? 'not met' : 'tie', detail: `${ivText(a.dice)} vs ${ivText(b.dice)}: ${cmpWord(c)}` };
  };
  for (const c of centres) comparisons.push(vs(pooled, c));
  for (const c of centres) comparisons.push(vs(asyn, c));
  comparisons.push(vs(asyn, fed), vs(pooled, asyn), vs(priv, fed), vs(by('asyndgan-low-noise'), fed), vs(asyn, by('asyndgan-robust')));
  comparisons.push(vs(by(`centre-${augmentCentre}+asyndgan`), by(`real-centre-${augmentCentre}`)));

  const goals: ClaimLine[] = [];
  // 1. real pooled >= AsynDGAN > FedAvg-GAN.
  if (!ran(pooled) || !ran(asyn) || !ran(fed)) goals.push({ claim: 'real pooled >= AsynDGAN > FedAvg-GAN', status: 'not run', detail: 'needs the real-pooled, asyndgan and fedavg-gan rows' });
  else {
    const pa = compareIntervals(pooled.dice, asyn.dice);
    const af = compareIntervals(asyn.dice, fed.dice);
    const ok = pa !== 'worse' && af === 'better';
    goals.push({
      claim: 'real pooled >= AsynDGAN > FedAvg-GAN',
      status: ok ? 'met' : 'not met',
      detail: `pooled vs AsynDGAN: ${cmpWord(pa)}; AsynDGAN vs FedAvg-GAN: ${cmpWord(af)} (${ivText(asyn.dice)} vs ${ivText(fed.dice)})`,
    });
  }
  // 2. AsynDGAN > every single centre.
  if (!ran(asyn) || centres.some((c) => !ran(c))) goals.push({ claim: 'AsynDGAN > every single centre', status: 'not run', detail: 'needs asyndgan and every real-centre row' });
  else {
    const cs = centres.map((c) => [c.id, compareIntervals(asyn.dice, c.dice)] as const);
    const all = cs.every(([, c]) => c === 'better');
    const anyWorse = cs.some(([, c]) => c === 'worse');
    goals.push({ claim: 'AsynDGAN > every single centre', status: all ? 'met' : anyWorse ? 'not met' : 'tie', detail: cs.map(([id, c]) => `${id}: ${cmpWord(c)}`).join(', ') });
  }
  // 3. AsynDGAN >= 0.93 x real pooled.
  if (!ran(asyn) || !ran(pooled)) goals.push({ claim: 'AsynDGAN >= 0.93 x real pooled', status: 'not run', detail: 'needs asyndgan and real-pooled' });
  else {
    const bar = 0.93 * pooled.dice.mean;
    const ratio = asyn.dice.mean / pooled.dice.mean;
    const status = !(pooled.dice.mean > 0) ? 'tie' : asyn.dice.lo >= bar ? 'met' : asyn.dice.hi < bar ? 'not met' : 'tie';
    goals.push({ claim: 'AsynDGAN >= 0.93 x real pooled', status, detail: `ratio of means ${ratio.toFixed(3)}; AsynDGAN interval [${asyn.dice.lo.toFixed(3)}, ${asyn.dice.hi.toFixed(3)}] vs 0.93 x pooled mean = ${bar.toFixed(3)}` });
  }
  // 4. >= 10x fewer bytes than FedAvg-GAN for the same generator updates.
  if (!asyn?.wire || !fed?.wire) goals.push({ claim: 'AsynDGAN >= 10x fewer bytes than FedAvg-GAN (same generator updates)', status: 'not run', detail: 'needs both generators' });
  else {
    const ratio = fed.wire.bytesTotal / asyn.wire.bytesTotal;
    const same = Math.abs(fed.wire.generatorUpdates - asyn.wire.generatorUpdates) < 0.5;
    goals.push({
      claim: 'AsynDGAN >= 10x fewer bytes than FedAvg-GAN (same generator updates)',
      status: same && ratio >= 10 ? 'met' : 'not met',
      detail: `FedAvg-GAN / AsynDGAN bytes in total = ${ratio.toFixed(1)}x; generator updates ${fed.wire.generatorUpdates} vs ${asyn.wire.generatorUpdates}${same ? '' : ' (NOT the same)'}`,
    });
  }
  return { comparisons, goals };
}

/** Runs every unit not yet on disk (generators first per seed, then their rows) and returns the summary. */
export async function runStudy(o: StudyOptions): Promise<StudyResults> {
  mkdirSync(join(o.out, 'runs'), { recursive: true });
  mkdirSync(join(o.out, 'generators'), { recursive: true });
  const log = o.log ?? ((l: string) => console.error(l));
  const augment = o.augmentCentre ?? 0;
  const rows = studyRows(o.nodes.length, augment);
  const cfg: SegmenterConfig = { ...DEFAULT_SEGMENTER_CONFIG, ...o.segmenter };
  const { target } = primaryMetric(o.test.classNames);
  const realAll = concatDatasets(o.nodes);

  // The plan, in the order it runs: real rows, then per generator seed each generator and its rows.
  type Unit = { kind: 'gen'; gen: GeneratorKind; seed: number } | { kind: 'seg'; row: RowSpec; genSeed: number | null; segSeed: number };
  const units: Unit[] = [];
  for (const row of rows.filter((r) => !r.generator)) for (const s of o.segSeeds) units.push({ kind: 'seg', row, genSeed: null, segSeed: s });
  for (const g of o.genSeeds) {
    for (const gen of o.kinds) {
      units.push({ kind: 'gen', gen, seed: g });
      for (const row of rows.filter((r) => r.generator === gen)) for (const s of o.segSeeds) units.push({ kind: 'seg', row, genSeed: g, segSeed: s });
    }
  }
  // Rows whose generator kind is not run stay 'not run'.
  const isDone = (u: Unit) => (u.kind === 'gen' ? existsSync(genFile(o.out, u.gen, u.seed)) : existsSync(runFile(o.out, u.row.id, u.genSeed, u.segSeed)));
  // Progress counts segmenter iterations; a generator counts as `generatorCost` of them.
  const weight = (u: Unit) => (u.kind === 'gen' ? (o.generatorCost ?? 1000) : cfg.iters);
  const total = units.reduce((a, u) => a + weight(u), 0);
  const bar = o.progress === false ? null : new Progress({ total, label: 'experiment', unit: 'unit', ...(o.progress ? { stream: o.progress } : {}) });
  let doneW = 0;
  let doneN = 0;
  const skipped = units.filter(isDone);
  for (const u of skipped) doneW += weight(u);
  if (skipped.length > 0) log(`experiment: resuming, ${skipped.length} of ${units.length} units already on disk`);
  bar?.update(doneW, { done: `${skipped.length}/${units.length}` });
  doneN = skipped.length;

  const failedGens = new Set<string>();
  const synthCache = new Map<string, Dataset>();
  const synthetic = async (gen: GeneratorKind, seed: number): Promise<Dataset> => {
    const key = `${gen}-${seed}`;
    const hit = synthCache.get(key);
    if (hit) return hit;
    synthCache.clear(); // one synthetic set in memory at a time
    const rec = readJson<GeneratorRecord>(genFile(o.out, gen, seed))!;
    const g = await loadGenerator(rec.path);
    try {
      const ds = await synthesizeDataset(realAll, generatorSynthesizer(g.generator, o.test.numClasses));
      synthCache.set(key, ds);
      return ds;
    } finally {
      g.generator.dispose();
    }
  };

  for (const u of units) {
    if (isDone(u)) continue;
    if (u.kind === 'gen') {
      const dir = join(o.out, 'generators', `${u.gen}-g${u.seed}`);
      log(`experiment: training generator ${u.gen}, seed ${u.seed} (${dir})`);
      try {
        mkdirSync(dir, { recursive: true });
        const r = await o.trainGenerator(u.gen, u.seed, dir);
        await writeJsonAtomic(genFile(o.out, u.gen, u.seed), { kind: u.gen, seed: u.seed, ...r } satisfies GeneratorRecord);
      } catch (e) {
        failedGens.add(`${u.gen}-${u.seed}`);
        log(`experiment: generator ${u.gen} seed ${u.seed} FAILED: ${(e as Error).message.split('\n')[0]} (its rows stay 'not run'; rerun to retry)`);
      }
    } else {
      const row = u.row;
      if (row.generator && failedGens.has(`${row.generator}-${u.genSeed}`)) continue;
      let data: Dataset;
      if (row.kind === 'real') data = row.centre === undefined ? realAll : o.nodes[row.centre]!;
      else {
        const syn = await synthetic(row.generator!, u.genSeed!);
        data = row.kind === 'synthetic' ? syn : concatDatasets([o.nodes[row.centre!]!, syn]);
      }
      const seg = new Segmenter(data.modalities.length, data.numClasses, { ...cfg, seed: u.segSeed });
      try {
        const fit = await seg.fit(data, { progress: false });
        const pred = await seg.predict(o.test);
        const score = scorePredictions(pred, o.test.slices, o.test, target);
        const first = u.segSeed === o.segSeeds[0] && (u.genSeed === null || u.genSeed === o.genSeeds[0]);
        const HW = data.height * data.width;
        const rec: RunRecord = {
          row: row.id,
          genSeed: u.genSeed,
          segSeed: u.segSeed,
          ...score,
          trainSlices: data.slices.length,
          trainSeconds: fit.seconds,
          ...(first
            ? {
                figure: o.figureSlices.map((i) => Array.from(pred[i]!)),
                // The synthetic image of the first slice for synthetic rows; the first real one otherwise.
                sample: Array.from(data.slices[row.kind === 'real+synthetic' ? data.slices.length - 1 : 0]!.image.subarray(0, HW), (v) => Math.round(v * 1000) / 1000),
              }
            : {}),
        };
        await writeJsonAtomic(runFile(o.out, row.id, u.genSeed, u.segSeed), rec);
        log(`experiment: ${row.id}${u.genSeed !== null ? ` gen seed ${u.genSeed}` : ''} seg seed ${u.segSeed}: Dice ${score.dice.toFixed(3)}, ` +
          `foreground ${score.diceForeground.toFixed(3)}, HD95 ${score.hd95.toFixed(2)} (${fit.seconds.toFixed(0)} s)`);
      } finally {
        seg.dispose();
      }
    }
    doneW += weight(u);
    doneN++;
    bar?.update(doneW, { done: `${doneN}/${units.length}` });
    await o.onUnit?.(doneN, units.length);
  }
  bar?.finish();
  return summarizeStudy(o);
}
