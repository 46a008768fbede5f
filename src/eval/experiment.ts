/**
 * The AsynDGAN paper's evaluation: is a segmentation network trained on synthetic images as good
 * as one trained on real images? The same U-Net (same config, same seed, same iterations, same
 * batch order seed) is trained in each setting and tested on the same held-out REAL slices:
 *
 *   real-all        all nodes' real data pooled (what no single hospital may do: the upper bound)
 *   real-node-k     one node's real data alone (what each hospital can do by itself)
 *   synthetic       images synthesized by the generator from ALL nodes' masks (the AsynDGAN claim:
 *                   beats every real-node-k and comes close to real-all)
 *   real+synthetic  all real data plus the synthetic set (augmentation)
 *
 * Every setting runs the same number of iterations, so the comparison is one of data, not of
 * compute: a single node's smaller set is simply seen more often.
 *
 * With `repeats` > 1 every setting is trained once per segmenter seed (seed, seed+1, ...; the
 * same seeds in every setting): `metrics` then pools the per-slice metrics of all runs, and
 * `foregroundDice` gives the mean and spread of the per-run mean foreground Dice, which shows
 * whether a difference between settings is larger than the run-to-run noise.
 */
import { noGrad, tensor, tidy } from '../engine/index.js';
import { concatDatasets, conditionTensor, type Dataset, type Slice } from '../data/index.js';
import type { ResnetGenerator } from '../models/index.js';
import type { ProgressStream } from '../cli/progress.js';
import { sliceMetrics, stat, summarize, type ClassSliceMetrics, type SegmentationSummary, type Stat } from './metrics.js';
import { DEFAULT_SEGMENTER_CONFIG, Segmenter, type SegmenterConfig } from './segmenter.js';

export type SettingKind = 'real-all' | 'real-node' | 'synthetic' | 'real+synthetic';
export const SETTING_KINDS: readonly SettingKind[] = ['real-all', 'real-node', 'synthetic', 'real+synthetic'];

/** Images [M*H*W] in [-1, 1] for the given slices' masks, in order. */
export type Synthesizer = (slices: readonly Slice[]) => Promise<Float32Array[]>;

export interface ExperimentInput {
  /** Real training data of each node. */
  nodes: readonly Dataset[];
  /** Held-out real test slices. */
  test: Dataset;
  /** Mask -> image; required by the synthetic settings. */
  synthesize?: Synthesizer;
}

export interface ExperimentOptions {
  segmenter?: Partial<SegmenterConfig>;
  /** Which settings to run (default all four kinds; real-node expands to one per node). */
  settings?: readonly SettingKind[];
  /** Runs per setting with consecutive segmenter seeds (default 1). */
  repeats?: number;
  /** Progress bars' stream (default stderr); false: none. */
  progress?: ProgressStream | false;
  /** Called after each setting (e.g. to log it). */
  onSetting?: (r: SettingResult) => void;
}

export interface SettingResult {
  id: string;
  kind: SettingKind;
  label: string;
  node?: number;
  trainSlices: number;
  /** Training time summed over the runs. */
  trainSeconds: number;
  /** Last training loss read back (CE + w * soft Dice), averaged over the runs. */
  finalLoss: number;
  /** Per-slice metrics of every run pooled (slices = test slices x runs). */
  metrics: SegmentationSummary;
  /** Mean foreground Dice of each run: mean, population std and number of runs. */
  foregroundDice: Stat;
  runs: RunResult[];
}

/** One training run of a setting. */
export interface RunResult {
  seed: number;
  trainSeconds: number;
  finalLoss: number;
  foreground: SegmentationSummary['foreground'];
}

export interface ExperimentResults {
  classNames: string[];
  modalities: string[];
  height: number;
  width: number;
  testSlices: number;
  nodeSlices: number[];
  segmenter: SegmenterConfig;
  /** Segmenter seeds used in every setting (segmenter.seed, +1, ...). */
  seeds: number[];
  /** Synthetic training set: slice count and synthesis time (absent without synthetic settings). */
  synthetic?: { slices: number; seconds: number };
  settings: SettingResult[];
  /** The paper's claim, checked on the mean foreground Dice (absent without the settings it needs). */
  claim?: ClaimCheck;
}

export interface ClaimCheck {
  syntheticDice: number;
  realAllDice: number;
  bestSingleNodeDice: number;
  worstSingleNodeDice: number;
  /** synthetic > every real-node-k. */
  beatsEverySingleNode: boolean;
  /** realAllDice - syntheticDice (small positive = "close to"). */
  gapToRealAll: number;
}

export interface ExperimentRun {
  results: ExperimentResults;
  /** Predicted label maps of every test slice, by setting id. */
  predictions: Record<string, Uint8Array[]>;
  /** The synthetic training set (same masks as the nodes' real slices), when one was made. */
  syntheticSet?: Dataset;
}

/** Runs the settings one after the other (see the module comment). */
export async function runExperiment(input: ExperimentInput, opts: ExperimentOptions = {}): Promise<ExperimentRun> {
  const { nodes, test } = input;
  if (nodes.length === 0) throw new Error('runExperiment: no nodes');
  const kinds = opts.settings ?? SETTING_KINDS;
  const cfg: SegmenterConfig = { ...DEFAULT_SEGMENTER_CONFIG, ...opts.segmenter };
  const repeats = opts.repeats ?? 1;
  if (!(Number.isInteger(repeats) && repeats >= 1)) throw new Error(`runExperiment: repeats must be a positive integer, got ${repeats}`);
  const realAll = concatDatasets(nodes);
  const needSynth = kinds.includes('synthetic') || kinds.includes('real+synthetic');
  let syntheticSet: Dataset | undefined;
  let synthetic: ExperimentResults['synthetic'];
  if (needSynth) {
    if (!input.synthesize) throw new Error('runExperiment: the synthetic settings need a synthesizer (a generator)');
    const t0 = performance.now();
    syntheticSet = await synthesizeDataset(realAll, input.synthesize);
    synthetic = { slices: syntheticSet.slices.length, seconds: (performance.now() - t0) / 1000 };
  }

  const plan: { id: string; kind: SettingKind; label: string; node?: number; data: Dataset }[] = [];
  for (const kind of kinds) {
    if (kind === 'real-all') plan.push({ id: 'real-all', kind, label: 'real, all nodes', data: realAll });
    if (kind === 'real-node') {
      nodes.forEach((d, k) => plan.push({ id: `real-node-${k}`, kind, label: `real, node ${k} only`, node: k, data: d }));
    }
    if (kind === 'synthetic') plan.push({ id: 'synthetic', kind, label: 'synthetic, all masks', data: syntheticSet! });
    if (kind === 'real+synthetic') {
      plan.push({ id: 'real+synthetic', kind, label: 'real + synthetic', data: concatDatasets([realAll, syntheticSet!]) });
    }
  }

  const settings: SettingResult[] = [];
  const predictions: Record<string, Uint8Array[]> = {};
  const truths = test.slices.map((s) => s.mask);
  const seeds = Array.from({ length: repeats }, (_, r) => cfg.seed + r);
  const { width: W, height: H, classNames } = test;
  for (const [i, p] of plan.entries()) {
    if (p.data.slices.length === 0) throw new Error(`runExperiment: setting ${p.id} has no training slices`);
    const perSlice: ClassSliceMetrics[][] = [];
    const runs: RunResult[] = [];
    for (const seed of seeds) {
      const seg = new Segmenter(p.data.modalities.length, p.data.numClasses, { ...cfg, seed });
      try {
        const fit = await seg.fit(p.data, {
          label: `[${i + 1}/${plan.length}] ${p.id}${repeats > 1 ? ` seed ${seed}` : ''}`,
          ...(opts.progress !== undefined ? { progress: opts.progress } : {}),
        });
        const pred = await seg.predict(test);
        if (seed === seeds[0]) predictions[p.id] = pred;
        const rows = pred.map((m, k) => sliceMetrics(m, truths[k]!, W, H, classNames.length));
        perSlice.push(...rows);
        runs.push({
          seed,
          trainSeconds: fit.seconds,
          finalLoss: fit.losses[fit.losses.length - 1]?.loss ?? NaN,
          foreground: summarize(rows, classNames).foreground,
        });
      } finally {
        seg.dispose();
      }
    }
    const r: SettingResult = {
      id: p.id,
      kind: p.kind,
      label: p.label,
      ...(p.node !== undefined ? { node: p.node } : {}),
      trainSlices: p.data.slices.length,
      trainSeconds: runs.reduce((a, x) => a + x.trainSeconds, 0),
      finalLoss: runs.reduce((a, x) => a + x.finalLoss, 0) / runs.length,
      metrics: summarize(perSlice, classNames),
      foregroundDice: stat(runs.map((x) => x.foreground.dice)),
      runs,
    };
    settings.push(r);
    opts.onSetting?.(r);
  }

  const results: ExperimentResults = {
    classNames: [...test.classNames],
    modalities: [...test.modalities],
    height: test.height,
    width: test.width,
    testSlices: test.slices.length,
    nodeSlices: nodes.map((d) => d.slices.length),
    segmenter: cfg,
    seeds,
    ...(synthetic ? { synthetic } : {}),
    settings,
  };
  const claim = checkClaim(settings);
  if (claim) results.claim = claim;
  return { results, predictions, ...(syntheticSet ? { syntheticSet } : {}) };
}

/** The paper's claim on mean foreground Dice (averaged over runs), when real-all, synthetic and the real-node settings ran. */
export function checkClaim(settings: readonly SettingResult[]): ClaimCheck | undefined {
  const dice = (s: SettingResult) => s.foregroundDice.mean;
  const all = settings.find((s) => s.id === 'real-all');
  const syn = settings.find((s) => s.id === 'synthetic');
  const single = settings.filter((s) => s.kind === 'real-node');
  if (!all || !syn || single.length === 0) return undefined;
  const singles = single.map(dice);
  return {
    syntheticDice: dice(syn),
    realAllDice: dice(all),
    bestSingleNodeDice: Math.max(...singles),
    worstSingleNodeDice: Math.min(...singles),
    beatsEverySingleNode: singles.every((d) => dice(syn) > d),
    gapToRealAll: dice(all) - dice(syn),
  };
}

/** The data set with every image replaced by the synthesizer's image for its mask. */
export async function synthesizeDataset(ds: Dataset, synthesize: Synthesizer): Promise<Dataset> {
  const images = await synthesize(ds.slices);
  if (images.length !== ds.slices.length) throw new Error(`synthesizeDataset: ${images.length} images for ${ds.slices.length} masks`);
  const per = ds.modalities.length * ds.height * ds.width;
  return {
    ...ds,
    classNames: [...ds.classNames],
    modalities: [...ds.modalities],
    slices: ds.slices.map((s, i) => {
      const image = images[i]!;
      if (image.length !== per) throw new Error(`synthesizeDataset: image ${i} has ${image.length} values, expected ${per}`);
      return { ...s, key: `${s.key}:synthetic`, image, meta: { ...s.meta, synthetic: true } };
    }),
  };
}

/**
 * A synthesizer running a generator in evaluation mode (as `asyndgan synth` does), `batchSize`
 * masks at a time. Outputs are clamped to [-1, 1] (tanh already keeps them there up to rounding).
 */
export function generatorSynthesizer(g: ResnetGenerator, numClasses: number, batchSize = 8): Synthesizer {
  return async (slices) => {
    const out: Float32Array[] = [];
    if (slices.length === 0) return out;
    const HW = slices[0]!.mask.length;
    const H = Math.round(Math.sqrt(HW));
    if (H * H !== HW) throw new Error('generatorSynthesizer: square slices only');
    const wasTraining = g.training;
    g.eval();
    try {
      for (let s = 0; s < slices.length; s += batchSize) {
        const part = slices.slice(s, s + batchSize);
        const fake = noGrad(() => tidy(() => g.forward(tensor(conditionTensor(part, numClasses), [part.length, numClasses, H, H]))));
        const v = await fake.read();
        fake.dispose();
        const per = v.length / part.length;
        for (let i = 0; i < part.length; i++) {
          const img = v.slice(i * per, (i + 1) * per);
          for (let j = 0; j < img.length; j++) img[j] = Math.max(-1, Math.min(1, img[j]!));
          out.push(img);
        }
      }
    } finally {
      g.train(wasTraining);
    }
    return out;
  };
}
