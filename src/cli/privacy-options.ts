/**
 * The node's privacy flags (`asyndgan node --privacy guarded --noise 2 ...`): a preset plus
 * overrides of single settings, parsed into src/privacy's settings. No override flag has a
 * default: an absent flag keeps the preset's value (listed by `describePrivacy`).
 */
import { DEFAULT_PRIVACY_PRESET, PRIVACY_PRESETS, privacySettings, type PrivacyOverrides, type PrivacyPreset, type PrivacySettings } from '../privacy/index.js';
import { UsageError, type OptionSpecs } from './options.js';

export const PRIVACY_OPTIONS: OptionSpecs = {
  privacy: { type: 'string', default: DEFAULT_PRIVACY_PRESET, help: `what replies may reveal: ${PRIVACY_PRESETS.join(' | ')} (docs/PRIVACY.md)` },
  clip: { type: 'string', help: 'per-sample L2 clip norm C of d(loss)/d(fake) (none: no clipping, only with --noise 0)' },
  noise: { type: 'string', help: 'noise multiplier sigma: N(0, (sigma C)^2) per coordinate after clipping' },
  'epsilon-budget': { type: 'string', help: 'stop answering before epsilon would exceed this (none: report only)' },
  delta: { type: 'string', help: 'delta at which epsilon is reported' },
  'max-lambda-l1': { type: 'string', help: 'refuse a server whose lambdaL1 is above this (none: any)' },
  'max-batch': { type: 'string', help: 'refuse a server whose batchSize is above this (none: any)' },
  'max-queries': { type: 'string', help: 'answer each key at most K times per --query-window replies (none: no limit)' },
  'query-window': { type: 'string', help: 'the query guard\'s window W, in replies of this node' },
  l1: { type: 'string', help: 'on: L1 term under the same clipping | off: GAN-only replies (lambdaL1 = 0 whatever the server says)' },
  losses: { type: 'string', help: 'on: send the four scalar losses | off: send zeros (they are exact functions of the images)' },
  'range-check': { type: 'string', help: 'on: refuse fakes outside [-1, 1] | off' },
};

/** The privacy settings named by the parsed flags; throws a UsageError naming a bad flag. */
export function privacyFromOptions(v: Record<string, string | boolean | undefined>): PrivacySettings {
  const preset = String(v.privacy ?? DEFAULT_PRIVACY_PRESET);
  if (!(PRIVACY_PRESETS as readonly string[]).includes(preset)) throw new UsageError(`--privacy must be one of ${PRIVACY_PRESETS.join(', ')}, got "${preset}"`);
  const o: PrivacyOverrides = {};
  const number = (flag: string, opts: { none?: 'undefined' | 'infinity'; integer?: boolean } = {}): number | undefined | null => {
    const raw = v[flag];
    if (raw === undefined) return null; // absent: keep the preset's value
    const text = String(raw).trim().toLowerCase();
    if (opts.none && (text === 'none' || text === 'inf' || text === 'infinity')) return opts.none === 'infinity' ? Infinity : undefined;
    const x = Number(text);
    if (text === '' || !Number.isFinite(x) || (opts.integer && !Number.isInteger(x))) {
      throw new UsageError(`--${flag} must be ${opts.integer ? 'an integer' : 'a number'}${opts.none ? ' or none' : ''}, got "${raw}"`);
    }
    return x;
  };
  const onOff = (flag: string): boolean | undefined => {
    const raw = v[flag];
    if (raw === undefined) return undefined;
    if (raw === 'on' || raw === true) return true;
    if (raw === 'off') return false;
    throw new UsageError(`--${flag} must be on or off, got "${raw}"`);
  };
  const clip = number('clip', { none: 'undefined' });
  if (clip !== null) o.clip = clip;
  const set = <K extends keyof PrivacyOverrides>(key: K, value: PrivacyOverrides[K] | null) => {
    if (value !== null && value !== undefined) o[key] = value;
  };
  set('noise', number('noise'));
  set('epsilonBudget', number('epsilon-budget', { none: 'infinity' }));
  set('delta', number('delta'));
  set('maxLambdaL1', number('max-lambda-l1', { none: 'infinity' }));
  set('maxBatch', number('max-batch', { none: 'infinity', integer: true }));
  const queries = number('max-queries', { none: 'undefined', integer: true });
  if (queries !== null) o.maxQueries = queries;
  set('queryWindow', number('query-window', { integer: true }));
  set('l1', onOff('l1'));
  set('sendLosses', onOff('losses'));
  set('rangeCheck', onOff('range-check'));
  try {
    return privacySettings(preset as PrivacyPreset, o);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** One line with every setting, for the node's start-up message. */
export function describePrivacy(s: PrivacySettings): string {
  const n = (x: number | undefined) => (x === undefined ? 'none' : x === Infinity ? 'none' : String(x));
  return `privacy ${s.preset}: clip ${n(s.clip)}, noise ${s.noise}, epsilon budget ${n(s.epsilonBudget)} at delta ${s.delta}, ` +
    `max lambdaL1 ${n(s.maxLambdaL1)}, max batch ${n(s.maxBatch)}, max queries ${n(s.maxQueries)} per ${s.queryWindow} replies, ` +
    `L1 ${s.l1 ? 'on' : 'off'}, losses ${s.sendLosses ? 'on' : 'off'}, range check ${s.rangeCheck ? 'on' : 'off'}`;
}
