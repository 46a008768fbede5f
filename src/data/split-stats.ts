/**
 * What each centre of a federated split holds, measured from its slices: how large its target
 * structures (tumours) are, where they sit, and how its scanner renders intensities. Used to
 * document a split (the experiment report prints it) and to check in tests that a split is as
 * heterogeneous as it claims.
 */
import type { Dataset } from './sample.js';

/** Min, max and mean of a quantity over slices. */
export interface Range3 {
  mean: number;
  min: number;
  max: number;
}

/** Statistics of one data set (a centre's training share, or the test set). */
export interface DatasetStats {
  name: string;
  slices: number;
  /** Names of the classes counted as the target structure. */
  targetClasses: string[];
  /** Target area per slice, in percent of the image's pixels (slices without target count 0). */
  targetAreaPercent: Range3;
  /** Slices that contain the target. */
  slicesWithTarget: number;
  /**
   * Target centroid per slice (slices with target only), in image coordinates scaled to [-1, 1]
   * (u to the right, v down).
   */
  centroidU: Range3;
  centroidV: Range3;
  /** Per modality: mean and standard deviation of the image values (-1..1) over non-background pixels. */
  intensity: { modality: string; mean: number; std: number }[];
}

const TARGET_NAME = /tumou?r|edema|necro|enhanc/i;

/**
 * Class ids of the target structure: the tumour classes when the data set names some (phantom,
 * BraTS), else every foreground class (e.g. the brain lobes of the mricron split).
 */
export function targetClassIds(classNames: readonly string[]): number[] {
  const tumour = classNames.map((n, i) => (i > 0 && TARGET_NAME.test(n) ? i : -1)).filter((i) => i >= 0);
  return tumour.length > 0 ? tumour : classNames.map((_, i) => i).filter((i) => i > 0);
}

function range3(values: readonly number[]): Range3 {
  if (values.length === 0) return { mean: NaN, min: NaN, max: NaN };
  let s = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    s += v;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return { mean: s / values.length, min: lo, max: hi };
}

/** Measures one data set (see DatasetStats). */
export function datasetStats(ds: Dataset, name: string): DatasetStats {
  const { width: W, height: H } = ds;
  const HW = W * H;
  const target = targetClassIds(ds.classNames);
  const isTarget = new Uint8Array(256);
  for (const c of target) isTarget[c] = 1;
  const areas: number[] = [];
  const us: number[] = [];
  const vs: number[] = [];
  const M = ds.modalities.length;
  const sum = new Float64Array(M);
  const sq = new Float64Array(M);
  let fgPixels = 0;
  for (const s of ds.slices) {
    let n = 0;
    let su = 0;
    let sv = 0;
    for (let i = 0; i < HW; i++) {
      const lab = s.mask[i]!;
      if (lab !== 0) {
        fgPixels++;
        for (let m = 0; m < M; m++) {
          const v = s.image[m * HW + i]!;
          sum[m]! += v;
          sq[m]! += v * v;
        }
      }
      if (isTarget[lab]) {
        n++;
        su += i % W;
        sv += Math.floor(i / W);
      }
    }
    areas.push((100 * n) / HW);
    if (n > 0) {
      us.push(((su / n + 0.5) / W) * 2 - 1);
      vs.push(((sv / n + 0.5) / H) * 2 - 1);
    }
  }
  return {
    name,
    slices: ds.slices.length,
    targetClasses: target.map((c) => ds.classNames[c]!),
    targetAreaPercent: range3(areas),
    slicesWithTarget: us.length,
    centroidU: range3(us),
    centroidV: range3(vs),
    intensity: ds.modalities.map((modality, m) => {
      const mean = fgPixels ? sum[m]! / fgPixels : NaN;
      return { modality, mean, std: fgPixels ? Math.sqrt(Math.max(0, sq[m]! / fgPixels - mean * mean)) : NaN };
    }),
  };
}

/** Statistics of every centre's share and of the test set (named centre 0..N-1 and test). */
export function splitStats(nodes: readonly Dataset[], test: Dataset): DatasetStats[] {
  return [...nodes.map((d, k) => datasetStats(d, `centre ${k}`)), datasetStats(test, 'test')];
}

/** The statistics as one Markdown table. */
export function splitStatsMarkdown(stats: readonly DatasetStats[]): string {
  if (stats.length === 0) return '';
  const f = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const r = (x: Range3, d = 2) => `${f(x.mean, d)} (${f(x.min, d)}..${f(x.max, d)})`;
  const mods = stats[0]!.intensity.map((i) => i.modality);
  const lines = [
    `Target structure: ${stats[0]!.targetClasses.join(' + ')}. Area in % of the image (mean, min..max over slices); centroid in image coordinates ` +
      '(-1..1, u right, v down; mean, min..max); intensity = mean ± std of the image (-1..1) over non-background pixels.',
    '',
    `| set | slices | with target | area % | centroid u | centroid v | ${mods.map((m) => `${m} intensity`).join(' | ')} |`,
    `|---|---:|---:|---:|---:|---:|${mods.map(() => '---:').join('|')}|`,
  ];
  for (const s of stats) {
    lines.push(`| ${s.name} | ${s.slices} | ${s.slicesWithTarget} | ${r(s.targetAreaPercent)} | ${r(s.centroidU)} | ${r(s.centroidV)} | ` +
      `${s.intensity.map((i) => `${f(i.mean, 3)} ± ${f(i.std, 3)}`).join(' | ')} |`);
  }
  return lines.join('\n');
}
