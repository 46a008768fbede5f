/**
 * Named privacy settings for a node, and their overrides. `guarded` is the default: a hospital
 * that installs a node is protected without asking. docs/PRIVACY.md says what each protects.
 */
import type { NodeLimits } from './limits.js';

export const PRIVACY_PRESETS = ['off', 'guarded', 'dp'] as const;
export type PrivacyPreset = (typeof PRIVACY_PRESETS)[number];
/** The preset a node uses when given none. */
export const DEFAULT_PRIVACY_PRESET: PrivacyPreset = 'guarded';

export interface PrivacySettings extends NodeLimits {
  /** The preset these settings started from. */
  preset: PrivacyPreset;
  /** Per-sample L2 clip norm C of d(loss)/d(fake); undefined: no clipping (only with noise 0). */
  clip: number | undefined;
  /** Noise multiplier sigma: N(0, (sigma C)^2) is added to every coordinate after clipping. */
  noise: number;
  /** Send the L1 term (under the same clipping); false: GAN-only replies (lambdaL1 = 0 whatever the server says). */
  l1: boolean;
  /** Each key answered at most this many times per `queryWindow` replies; undefined: no limit. */
  maxQueries: number | undefined;
  queryWindow: number;
  /** Refuse fakes outside the generator's output range [-1, 1]. */
  rangeCheck: boolean;
  /**
   * Send the four scalar losses. They are exact functions of the real images (gL1 is a mean
   * absolute error against them) that no noise covers, so the protected presets send zeros.
   */
  sendLosses: boolean;
  /** delta at which epsilon is reported. */
  delta: number;
  /** Stop answering before epsilon (at delta) would exceed this; Infinity: report only. */
  epsilonBudget: number;
}

const PRESETS: Readonly<Record<PrivacyPreset, PrivacySettings>> = {
  // Today's behaviour: exact gradients, any server parameter, no guard.
  off: {
    preset: 'off', clip: undefined, noise: 0, l1: true, maxLambdaL1: Infinity, maxBatch: Infinity,
    maxQueries: undefined, queryWindow: 100, rangeCheck: false, sendLosses: true, delta: 1e-5, epsilonBudget: Infinity,
  },
  // Clip + modest noise + query guard + node limits: bounds what each query can reveal (see
  // PRIVACY.md); epsilon is reported but is far too large to be a DP guarantee.
  guarded: {
    preset: 'guarded', clip: 0.1, noise: 1, l1: true, maxLambdaL1: 100, maxBatch: 16,
    maxQueries: 25, queryWindow: 100, rangeCheck: true, sendLosses: false, delta: 1e-5, epsilonBudget: Infinity,
  },
  // Differential privacy with a budget: large noise, GAN + L1 under the clip, stops at epsilon 10.
  dp: {
    preset: 'dp', clip: 0.1, noise: 30, l1: true, maxLambdaL1: 100, maxBatch: 16,
    maxQueries: 25, queryWindow: 100, rangeCheck: true, sendLosses: false, delta: 1e-5, epsilonBudget: 10,
  },
};

/** Overrides of single settings (the CLI's --clip, --noise, ...). */
export type PrivacyOverrides = Partial<Omit<PrivacySettings, 'preset'>>;

/** Settings of `preset` with `overrides` applied, checked; throws a one-line RangeError naming what is wrong. */
export function privacySettings(preset: PrivacyPreset = DEFAULT_PRIVACY_PRESET, overrides: PrivacyOverrides = {}): PrivacySettings {
  if (!(PRIVACY_PRESETS as readonly string[]).includes(preset)) throw new RangeError(`privacy preset must be one of ${PRIVACY_PRESETS.join(', ')}, got ${JSON.stringify(preset)}`);
  const defined = Object.fromEntries(Object.entries(overrides).filter(([k, v]) => v !== undefined || k === 'clip' || k === 'maxQueries'));
  const s: PrivacySettings = { ...PRESETS[preset], ...defined, preset };
  const positive = (name: string, v: number | undefined, allowInfinity = false) => {
    if (v === undefined) return;
    if (!(v > 0) || (!allowInfinity && !Number.isFinite(v))) throw new RangeError(`privacy: ${name} must be ${allowInfinity ? 'positive' : 'finite and positive'}, got ${v}`);
  };
  positive('clip', s.clip);
  if (!(s.noise >= 0) || !Number.isFinite(s.noise)) throw new RangeError(`privacy: noise must be finite and >= 0, got ${s.noise}`);
  if (s.noise > 0 && s.clip === undefined) throw new RangeError('privacy: noise needs a clip norm (the noise is sigma * clip)');
  if (Number.isFinite(s.epsilonBudget) && s.noise === 0) throw new RangeError('privacy: an epsilon budget needs noise > 0');
  positive('epsilon budget', s.epsilonBudget, true);
  positive('max lambdaL1', s.maxLambdaL1, true);
  if (!(s.maxLambdaL1 >= 0)) throw new RangeError(`privacy: max lambdaL1 must be >= 0, got ${s.maxLambdaL1}`);
  if (!(s.maxBatch === Infinity || (Number.isInteger(s.maxBatch) && s.maxBatch >= 1))) throw new RangeError(`privacy: max batch must be an integer >= 1, got ${s.maxBatch}`);
  if (s.maxQueries !== undefined && !(Number.isInteger(s.maxQueries) && s.maxQueries >= 1)) throw new RangeError(`privacy: max queries must be an integer >= 1, got ${s.maxQueries}`);
  if (!(Number.isInteger(s.queryWindow) && s.queryWindow >= 1)) throw new RangeError(`privacy: query window must be an integer >= 1, got ${s.queryWindow}`);
  if (!(s.delta > 0 && s.delta < 1)) throw new RangeError(`privacy: delta must be in (0, 1), got ${s.delta}`);
  return s;
}

/**
 * Noise multiplier z of one reply of `samples` samples: noise std sigma*C over L2 sensitivity
 * 2*C*sqrt(samples) (replacing one image can move every clipped block by up to 2C, because the
 * discriminator depends on all of the node's data). z = sigma / (2 sqrt(samples)).
 */
export function replyNoiseMultiplier(noise: number, samples: number): number {
  return noise / (2 * Math.sqrt(samples));
}
