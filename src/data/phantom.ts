/**
 * Embedded default data set: procedurally generated, brain-like axial MR slices with a tumour,
 * split across hospital nodes with real heterogeneity, plus a held-out test set.
 *
 * Why a phantom: the project must train and be tested with no download (BraTS needs a registration),
 * and a generator needs paired (label map, image) data whose images follow the label map closely
 * but not trivially (partial volume at edges, texture, bias field, Rician noise, modality contrasts).
 *
 * Geometry is defined in continuous coordinates, so the same seed gives the same anatomy at any
 * resolution (32, 64, 128...). Everything is drawn from our seeded Rng: same options -> same bytes.
 *
 * Heterogeneity between nodes mirrors the AsynDGAN BraTS experiment (sites split by tumour size)
 * and the DSL follow-up (sites = institutions, i.e. scanners). Each node covers only part of the
 * distribution, the held-out test set spans all of it:
 *  - tumour size: node k draws core radii from the k-th of N consecutive sub-ranges (small -> large);
 *  - tumour location: node k's tumours sit in the k-th of N angular sectors of the brain (a seeded
 *    rotation decides which sector is where), away from the centre so the sector matters;
 *  - scanner: node k's gain, gamma, offset, bias-field strength and Rician noise level are spread
 *    over fixed ranges (one seeded permutation per parameter), so no two sites share a scanner.
 * `splitStats` (split-stats.ts) measures what each node then holds.
 */
import { Rng, hashSeed } from '../engine/index.js';
import type { Dataset, Slice } from './sample.js';

/** Modalities the phantom can render. */
export type PhantomModality = 't1' | 't1c' | 't2' | 'flair';
export const PHANTOM_MODALITIES: readonly PhantomModality[] = ['t1', 't1c', 't2', 'flair'];

/**
 * 'split': tumour = edema (class 6) + core (class 7: enhancing rim and necrosis);
 * 'whole': one tumour class 6 (BraTS "whole tumour").
 */
export type TumourLabels = 'split' | 'whole';

/** Class names by id for each labelling. */
export const PHANTOM_CLASSES: Readonly<Record<TumourLabels, readonly string[]>> = {
  split: ['background', 'skull', 'csf', 'grey_matter', 'white_matter', 'ventricles', 'edema', 'tumour_core'],
  whole: ['background', 'skull', 'csf', 'grey_matter', 'white_matter', 'ventricles', 'tumour'],
};

/** A node's (hospital's) acquisition profile. Serializable. */
export interface SiteProfile {
  name: string;
  /** Multiplicative intensity gain. */
  gain: number;
  /** Intensity exponent (v -> v^gamma): a non-linear contrast change that normalization cannot undo exactly. */
  gamma: number;
  /** Strength of the smooth multiplicative bias field (log-scale). */
  biasStrength: number;
  /** Rician noise sigma on the 0..1 intensity scale. */
  noise: number;
  /** Additive intensity offset (0..1 scale) after gain and gamma: a scanner's baseline shift. */
  offset: number;
  /** Tumour core radius range, in units of the head radius. */
  tumourRadius: [number, number];
  /**
   * Direction of the tumour centre from the brain centre, [from, to] in radians (to - from <= 2 pi),
   * and its distance range as a fraction of the room left inside the brain.
   */
  tumourAngle: [number, number];
  tumourDistance: [number, number];
}

/** Options of `makePhantom`; every field has a default. */
export interface PhantomOptions {
  /** PRNG seed of the slices (default 1). */
  seed?: number;
  /**
   * Seed of the centres themselves: scanner profiles and tumour sectors (default 1, whatever
   * `seed` is). The centres are the split's fixed property; `seed` draws their patients, so two
   * runs with different seeds (e.g. a federation trained with generator seed 2) see the same centres.
   */
  siteSeed?: number;
  /** Square slice size in pixels (default 64; 16..512). */
  size?: number;
  /** Modalities in channel order (1 to 4, default all four). */
  modalities?: PhantomModality[];
  /** Number of hospital nodes (default 3). */
  numNodes?: number;
  /** Training slices per node: one number for all, or one per node (default 48). */
  slicesPerNode?: number | number[];
  /** Held-out test slices (default 48). */
  testSlices?: number;
  /** Tumour labelling (default 'split'). */
  tumourLabels?: TumourLabels;
  /** Overall tumour core radius range in head-radius units (default [0.05, 0.3]). */
  tumourRadius?: [number, number];
  /**
   * Which heterogeneity to simulate (default all true). tumourSize=false gives every node the full
   * radius range; location=false lets every node's tumours lie anywhere; intensity=false gives every
   * node the neutral scanner profile.
   */
  heterogeneity?: { tumourSize?: boolean; location?: boolean; intensity?: boolean };
}

/** The generated data: per-node training sets and a held-out test set, all with the same header. */
export interface PhantomData {
  nodes: Dataset[];
  test: Dataset;
  sites: SiteProfile[];
}

// ---- per-slice parameters ------------------------------------------------------------------------

interface Fourier {
  amp: number[];
  phase: number[];
}

/** Everything needed to render one slice (JSON-serializable, resolution independent). */
export interface PhantomSliceParams {
  /** Axial level 0 (skull base) .. 1 (vertex): scales the head and the ventricles. */
  level: number;
  head: { cx: number; cy: number; ax: number; ay: number; rot: number; wobble: Fourier };
  /** Thicknesses in head-radius units. */
  skull: number;
  csf: number;
  gm: number;
  gyri: { freq: number; phase: number; phase2: number; amp: number };
  /** Ventricle (and deep grey matter) scale, 0 = absent. */
  ventricles: number;
  tumour: null | {
    cx: number;
    cy: number;
    radius: number;
    edemaRatio: number;
    necrosisRatio: number;
    wobble: Fourier;
    edemaWobble: Fourier;
  };
  texture: Array<{ fx: number; fy: number; phase: number; amp: number }>;
  bias: [number, number, number, number];
  site: SiteProfile;
  noiseSeed: number;
}

// Tissue codes used for intensities (finer than the labels: scalp vs bone, rim vs necrosis).
const T_BG = 0, T_SCALP = 1, T_BONE = 2, T_CSF = 3, T_GM = 4, T_WM = 5, T_VENT = 6, T_EDEMA = 7, T_RIM = 8, T_NECRO = 9;
const NUM_TISSUES = 10;

/**
 * Mean intensity (0..1) of each tissue code per modality; approximate relative values of real scans:
 * T1: WM > GM > CSF; T1c: as T1 plus a bright enhancing tumour rim around a dark necrotic core;
 * T2: CSF and edema bright, WM darker than GM; FLAIR: as T2 but CSF suppressed (dark), edema brightest.
 */
const CONTRAST: Record<PhantomModality, readonly number[]> = {
  //     bg  scalp bone  csf   gm    wm    vent  edema rim   necrosis
  t1: [0, 0.78, 0.08, 0.18, 0.48, 0.68, 0.15, 0.4, 0.42, 0.24],
  t1c: [0, 0.8, 0.08, 0.2, 0.5, 0.7, 0.17, 0.42, 0.93, 0.22],
  t2: [0, 0.55, 0.06, 0.95, 0.62, 0.45, 0.97, 0.82, 0.7, 0.9],
  flair: [0, 0.5, 0.06, 0.08, 0.58, 0.45, 0.06, 0.9, 0.72, 0.4],
};

/** Label id of each tissue code. */
function tissueLabel(tissue: number, labels: TumourLabels): number {
  switch (tissue) {
    case T_BG:
      return 0;
    case T_SCALP:
    case T_BONE:
      return 1;
    case T_CSF:
      return 2;
    case T_GM:
      return 3;
    case T_WM:
      return 4;
    case T_VENT:
      return 5;
    case T_EDEMA:
      return 6;
    default:
      return labels === 'split' ? 7 : 6;
  }
}

function fourier(rng: Rng, kmax: number, ampMax: number): Fourier {
  const amp: number[] = [];
  const phase: number[] = [];
  for (let k = 2; k <= kmax; k++) {
    amp.push(rng.uniform(0, ampMax) / (k - 1));
    phase.push(rng.uniform(0, 2 * Math.PI));
  }
  return { amp, phase };
}

function evalFourier(f: Fourier, theta: number): number {
  let s = 0;
  for (let i = 0; i < f.amp.length; i++) s += f.amp[i]! * Math.cos((i + 2) * theta + f.phase[i]!);
  return s;
}

/** Draws the parameters of one slice. */
export function samplePhantomSlice(rng: Rng, site: SiteProfile, withTumour = true): PhantomSliceParams {
  const level = rng.uniform(0.15, 0.85);
  const mid = 1 - (2 * level - 1) ** 2; // 1 at mid-brain, 0 at the ends
  const scale = 0.78 + 0.14 * mid;
  const ventricles = Math.max(0, 1 - Math.abs(level - 0.5) / 0.3) * rng.uniform(0.8, 1.2);
  const head = {
    cx: rng.uniform(-0.04, 0.04),
    cy: rng.uniform(-0.03, 0.03),
    ax: scale * rng.uniform(0.8, 0.88),
    ay: scale * rng.uniform(0.98, 1.05),
    rot: rng.uniform(-0.12, 0.12),
    wobble: fourier(rng, 4, 0.025),
  };
  let tumour: PhantomSliceParams['tumour'] = null;
  if (withTumour) {
    const radius = rng.uniform(site.tumourRadius[0], site.tumourRadius[1]);
    // Keep the core inside the brain: the brain surface sits at about 0.8 head radii.
    const maxOff = Math.max(0, 0.68 - radius);
    const a = rng.uniform(site.tumourAngle[0], site.tumourAngle[1]);
    // sqrt: uniform over the area of the annulus between the two distance fractions.
    const [d0, d1] = site.tumourDistance;
    const d = maxOff * Math.sqrt(rng.uniform(d0 * d0, d1 * d1));
    tumour = {
      cx: d * Math.cos(a),
      cy: d * Math.sin(a),
      radius,
      edemaRatio: rng.uniform(1.35, 1.85),
      necrosisRatio: rng.uniform(0.3, 0.6),
      wobble: fourier(rng, 5, 0.18),
      edemaWobble: fourier(rng, 5, 0.22),
    };
  }
  const texture = Array.from({ length: 6 }, () => ({
    fx: rng.uniform(-7, 7),
    fy: rng.uniform(-7, 7),
    phase: rng.uniform(0, 2 * Math.PI),
    amp: rng.uniform(0.005, 0.015),
  }));
  const bias: [number, number, number, number] = [rng.normal(), rng.normal(), rng.normal(), rng.normal()];
  return {
    level,
    head,
    skull: rng.uniform(0.07, 0.1),
    csf: rng.uniform(0.025, 0.045),
    gm: rng.uniform(0.1, 0.14),
    gyri: { freq: 14 + rng.int(6), phase: rng.uniform(0, 2 * Math.PI), phase2: rng.uniform(0, 2 * Math.PI), amp: rng.uniform(0.45, 0.7) },
    ventricles,
    tumour,
    texture,
    bias,
    site,
    noiseSeed: hashSeed(Math.floor(rng.next() * 4294967296)),
  };
}

/** Tissue code at continuous image position (u, v) in [-1, 1]^2 (u right, v down). */
function tissueAt(p: PhantomSliceParams, u: number, v: number): number {
  const h = p.head;
  const cr = Math.cos(h.rot);
  const sr = Math.sin(h.rot);
  const du = u - h.cx;
  const dv = v - h.cy;
  // "e-space": the head ellipse becomes (roughly) the unit circle.
  const ex = (cr * du + sr * dv) / h.ax;
  const ey = (-sr * du + cr * dv) / h.ay;
  const rho = Math.hypot(ex, ey);
  const theta = Math.atan2(ey, ex);
  const rHead = 1 + evalFourier(h.wobble, theta);
  if (rho >= rHead) return T_BG;
  const rInnerSkull = rHead - p.skull;
  if (rho >= rInnerSkull) return rho > rInnerSkull + 0.45 * p.skull ? T_SCALP : T_BONE;
  const rBrain = rInnerSkull - p.csf * (1 + 0.5 * Math.sin(3 * theta + h.wobble.phase[0]!));

  // Tumour overrides brain tissue (it grows inside the brain, never into the skull).
  const t = p.tumour;
  if (t && rho < rBrain) {
    const tx = ex - t.cx;
    const ty = ey - t.cy;
    const dt = Math.hypot(tx, ty);
    const phi = Math.atan2(ty, tx);
    const rCore = t.radius * (1 + evalFourier(t.wobble, phi));
    if (dt < rCore) return dt < rCore * t.necrosisRatio ? T_NECRO : T_RIM;
    if (dt < t.radius * t.edemaRatio * (1 + evalFourier(t.edemaWobble, phi))) return T_EDEMA;
  }
  if (rho >= rBrain) return T_CSF;

  const g = p.gyri;
  const gy = 0.7 * Math.sin(g.freq * theta + g.phase) + 0.3 * Math.sin((g.freq + 5) * theta + g.phase2);
  const rWhite = rBrain - p.gm * (1 + g.amp * gy);
  // Sulci: CSF clefts through the cortex where it is thickest.
  if (rho >= rWhite) return gy > 0.6 && rho > rWhite + 0.25 * (rBrain - rWhite) ? T_CSF : T_GM;
  // Interhemispheric fissure, front and back.
  if (Math.abs(ex) < 0.012 && Math.abs(ey) > 0.5 * rBrain) return T_CSF;

  const vs = p.ventricles;
  if (vs > 0.05) {
    for (const side of [-1, 1]) {
      // Lateral ventricles: tilted ellipses whose frontal horns diverge (anterior = -v, the top).
      const a = side * 0.3;
      const qx = ex - side * 0.1 * vs;
      const qy = ey + 0.04;
      const rx = Math.cos(a) * qx + Math.sin(a) * qy;
      const ry = -Math.sin(a) * qx + Math.cos(a) * qy;
      if ((rx / (0.055 * vs)) ** 2 + (ry / (0.22 * vs)) ** 2 < 1) return T_VENT;
      // Deep grey matter (thalamus / basal ganglia) lateral to the ventricles.
      const dx = ex - side * 0.27 * Math.sqrt(vs);
      const dy = ey - 0.03;
      if ((dx / (0.085 * vs)) ** 2 + (dy / (0.13 * vs)) ** 2 < 1) return T_GM;
    }
  }
  return T_WM;
}

/**
 * Renders one slice: label map [size*size] and image [M*size*size] in [-1, 1].
 * Intensity = partial-volume average of 2x2 sub-samples of tissue contrast x texture, then the
 * site's gain/gamma, the bias field, and Rician noise (magnitude of complex Gaussian noise, which is
 * what gives real MR background its noise floor).
 */
export function renderPhantomSlice(
  p: PhantomSliceParams,
  size: number,
  modalities: readonly PhantomModality[],
  labels: TumourLabels,
): { mask: Uint8Array; image: Float32Array; tumourPixels: number } {
  const HW = size * size;
  const M = modalities.length;
  const mask = new Uint8Array(HW);
  const image = new Float32Array(M * HW);
  const frac = new Float32Array(NUM_TISSUES);
  const contrast = modalities.map((m) => CONTRAST[m]);
  const rngs = modalities.map((m) => new Rng(hashSeed(p.noiseSeed, m)));
  const site = p.site;
  const [b0, b1, b2, b3] = p.bias;
  const bNorm = Math.hypot(b0, b1, b2, b3) || 1;
  let tumourPixels = 0;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = ((x + 0.5) / size) * 2 - 1;
      const v = ((y + 0.5) / size) * 2 - 1;
      const i = y * size + x;
      const lab = tissueLabel(tissueAt(p, u, v), labels);
      mask[i] = lab;
      if (lab >= 6) tumourPixels++;
      frac.fill(0);
      // 2x2 sub-samples at +-1/4 pixel (a pixel is 2/size wide in u, v) -> partial-volume fractions.
      for (let sy = 0; sy < 2; sy++)
        for (let sx = 0; sx < 2; sx++) frac[tissueAt(p, u + (sx - 0.5) / size, v + (sy - 0.5) / size)]! += 0.25;
      let tex = 0;
      for (const w of p.texture) tex += w.amp * Math.sin(2 * Math.PI * (w.fx * u + w.fy * v) + w.phase);
      const logBias = (site.biasStrength * (b0 * u + b1 * v + b2 * u * v + b3 * (u * u + v * v - 0.6))) / bNorm;
      const bias = Math.exp(logBias);
      for (let m = 0; m < M; m++) {
        const c = contrast[m]!;
        let val = 0;
        for (let k = 1; k < NUM_TISSUES; k++) if (frac[k]! > 0) val += frac[k]! * c[k]!;
        val = Math.max(0, val * (1 + tex));
        val = Math.max(0, site.gain * Math.pow(val, site.gamma) + (val > 0 ? site.offset : 0)) * bias;
        const rng = rngs[m]!;
        const n1 = site.noise * rng.normal();
        const n2 = site.noise * rng.normal();
        val = Math.hypot(val + n1, n2);
        image[m * HW + i] = Math.min(1, Math.max(-1, 2 * val - 1));
      }
    }
  }
  return { mask, image, tumourPixels };
}

/** Full tumour location range: any direction, any distance from the centre. */
const ANY_ANGLE: [number, number] = [0, 2 * Math.PI];
const ANY_DISTANCE: [number, number] = [0, 1];

/** The neutral scanner profile (used for every node when intensity heterogeneity is off). */
export function neutralSite(
  name: string,
  tumourRadius: [number, number],
  tumourAngle: [number, number] = ANY_ANGLE,
  tumourDistance: [number, number] = ANY_DISTANCE,
): SiteProfile {
  return { name, gain: 1, gamma: 1, biasStrength: 0.1, noise: 0.02, offset: 0, tumourRadius, tumourAngle, tumourDistance };
}

/**
 * Scanner parameter ranges the sites are spread over. Chosen so that a segmenter trained on one
 * site loses accuracy on the others (measured in test/data-phantom.test.ts and the experiment),
 * while every site's image still shows every tissue with the same contrast order.
 */
const SCANNER_RANGES = {
  gain: [0.75, 1.2],
  gamma: [0.75, 1.35],
  offset: [-0.08, 0.08],
  biasStrength: [0.05, 0.4],
  noise: [0.01, 0.045],
} as const;

/** Per-node scanner profiles, tumour size ranges and tumour location sectors. */
export function phantomSites(opts: PhantomOptions = {}): SiteProfile[] {
  const n = opts.numNodes ?? 3;
  const [lo, hi] = opts.tumourRadius ?? [0.05, 0.3];
  const sizeHet = opts.heterogeneity?.tumourSize ?? true;
  const locHet = opts.heterogeneity?.location ?? true;
  const intHet = opts.heterogeneity?.intensity ?? true;
  const rng = new Rng(hashSeed(opts.siteSeed ?? 1, 'sites'));
  // Drawn even when unused so toggling one kind of heterogeneity does not change the others.
  const rotation = rng.uniform(0, 2 * Math.PI);
  const spread = Object.fromEntries(
    Object.entries(SCANNER_RANGES).map(([key, [a, b]]) => {
      const order = rng.shuffle(Array.from({ length: n }, (_, k) => k));
      return [key, order.map((q) => a + ((b - a) * (q + 0.5)) / n)];
    }),
  ) as Record<keyof typeof SCANNER_RANGES, number[]>;
  const sites: SiteProfile[] = [];
  for (let k = 0; k < n; k++) {
    const range: [number, number] = sizeHet ? [lo + ((hi - lo) * k) / n, lo + ((hi - lo) * (k + 1)) / n] : [lo, hi];
    const angle: [number, number] = locHet && n > 1 ? [rotation + (2 * Math.PI * k) / n, rotation + (2 * Math.PI * (k + 1)) / n] : ANY_ANGLE;
    const distance: [number, number] = locHet && n > 1 ? [0.45, 1] : ANY_DISTANCE;
    const name = `site${k}`;
    const prof = {
      gain: spread.gain[k]!,
      gamma: spread.gamma[k]!,
      offset: spread.offset[k]!,
      biasStrength: spread.biasStrength[k]!,
      noise: spread.noise[k]!,
    };
    sites.push(intHet ? { name, ...prof, tumourRadius: range, tumourAngle: angle, tumourDistance: distance } : neutralSite(name, range, angle, distance));
  }
  return sites;
}

function resolveOptions(opts: PhantomOptions): {
  seed: number;
  size: number;
  modalities: PhantomModality[];
  numNodes: number;
  perNode: number[];
  testSlices: number;
  labels: TumourLabels;
  radius: [number, number];
} {
  const seed = opts.seed ?? 1;
  const size = opts.size ?? 64;
  if (!(Number.isInteger(size) && size >= 16 && size <= 512)) throw new Error(`makePhantom: size must be an integer in 16..512, got ${size}`);
  const modalities = opts.modalities ?? [...PHANTOM_MODALITIES];
  if (modalities.length < 1 || modalities.length > 4) throw new Error(`makePhantom: need 1 to 4 modalities, got ${modalities.length}`);
  for (const m of modalities)
    if (!PHANTOM_MODALITIES.includes(m)) throw new Error(`makePhantom: unknown modality '${m}' (known: ${PHANTOM_MODALITIES.join(', ')})`);
  if (new Set(modalities).size !== modalities.length) throw new Error(`makePhantom: duplicate modality in [${modalities}]`);
  const numNodes = opts.numNodes ?? 3;
  if (!(Number.isInteger(numNodes) && numNodes >= 1)) throw new Error(`makePhantom: numNodes must be >= 1, got ${numNodes}`);
  const spn = opts.slicesPerNode ?? 48;
  const perNode = Array.isArray(spn) ? spn : new Array<number>(numNodes).fill(spn);
  if (perNode.length !== numNodes) throw new Error(`makePhantom: slicesPerNode has ${perNode.length} entries for ${numNodes} nodes`);
  for (const c of perNode) if (!(Number.isInteger(c) && c >= 0)) throw new Error(`makePhantom: bad slice count ${c}`);
  const testSlices = opts.testSlices ?? 48;
  const radius = opts.tumourRadius ?? [0.05, 0.3];
  if (!(radius[0] > 0 && radius[1] >= radius[0] && radius[1] < 0.6)) throw new Error(`makePhantom: bad tumourRadius [${radius}]`);
  return { seed, size, modalities: [...modalities], numNodes, perNode, testSlices, labels: opts.tumourLabels ?? 'split', radius };
}

function toDataset(slices: Slice[], size: number, modalities: PhantomModality[], labels: TumourLabels): Dataset {
  const classNames = [...PHANTOM_CLASSES[labels]];
  return { height: size, width: size, numClasses: classNames.length, classNames, modalities: [...modalities], slices };
}

/**
 * Generates the phantom data set: `numNodes` training sets (node k = site k) and a held-out test set
 * whose slices come from randomly chosen sites' scanners with tumours of any size anywhere (so it
 * covers every node's distribution, like a pooled real test set).
 */
export function makePhantom(opts: PhantomOptions = {}): PhantomData {
  const o = resolveOptions(opts);
  const sites = phantomSites({ ...opts, numNodes: o.numNodes, tumourRadius: o.radius });
  const render = (key: string, params: PhantomSliceParams, meta: Slice['meta']): Slice => {
    const r = renderPhantomSlice(params, o.size, o.modalities, o.labels);
    return {
      key,
      mask: r.mask,
      image: r.image,
      modalities: [...o.modalities],
      meta: { ...meta, site: params.site.name, level: params.level, tumourRadius: params.tumour?.radius ?? 0, tumourPixels: r.tumourPixels },
    };
  };
  const nodes = sites.map((site, k) => {
    const slices: Slice[] = [];
    for (let i = 0; i < o.perNode[k]!; i++) {
      // One independent stream per slice: adding slices or nodes never changes existing ones.
      const params = samplePhantomSlice(new Rng(hashSeed(o.seed, 'node', k, i)), site);
      slices.push(render(`phantom-n${k}-${i}`, params, { node: k, index: i }));
    }
    return toDataset(slices, o.size, o.modalities, o.labels);
  });
  const test: Slice[] = [];
  for (let i = 0; i < o.testSlices; i++) {
    const rng = new Rng(hashSeed(o.seed, 'test', i));
    const s = rng.int(sites.length);
    // The test set spans every node's distribution: one of the sites' scanners, any size, anywhere.
    const site: SiteProfile = { ...sites[s]!, tumourRadius: o.radius, tumourAngle: ANY_ANGLE, tumourDistance: ANY_DISTANCE };
    test.push(render(`phantom-test-${i}`, samplePhantomSlice(rng, site), { node: -1, index: i, siteIndex: s }));
  }
  return { nodes, test: toDataset(test, o.size, o.modalities, o.labels), sites };
}
