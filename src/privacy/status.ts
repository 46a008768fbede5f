/**
 * Reading a node's privacy back from the `status.metrics` it sends (the server keeps them as
 * `stats.reported`), for the server's report and the generator's metadata. A node that reported
 * nothing gives no guarantee the server can state.
 */
import { PRESET_CODES } from './node-privacy.js';
import type { PrivacyPreset } from './presets.js';

/** What a node said about its privacy; epsilon null: unbounded (it sent replies without noise). */
export type ReportedPrivacy =
  | { preset: PrivacyPreset; epsilon: number | null; delta: number; epsilonBudget: number | null; noiseMultiplier: number; clip: number; noise: number; repliesReleased: number }
  | { preset: 'unreported' };

export function privacyFromStatus(metrics: Readonly<Record<string, number>> | undefined): ReportedPrivacy {
  const m = metrics ?? {};
  const preset = (Object.keys(PRESET_CODES) as PrivacyPreset[]).find((p) => PRESET_CODES[p] === m.privacyPreset);
  if (!preset || typeof m.epsilon !== 'number' || typeof m.delta !== 'number') return { preset: 'unreported' };
  return {
    preset,
    epsilon: m.epsilon < 0 ? null : m.epsilon,
    delta: m.delta,
    epsilonBudget: typeof m.epsilonBudget === 'number' && m.epsilonBudget >= 0 ? m.epsilonBudget : null,
    noiseMultiplier: m.noiseMultiplier ?? 0,
    clip: m.clip ?? 0,
    noise: m.noise ?? 0,
    repliesReleased: m.repliesReleased ?? 0,
  };
}

/** One node's privacy as a short phrase, e.g. "dp, epsilon 9.17 at delta 1e-5 (150 replies)". */
export function describeReportedPrivacy(p: ReportedPrivacy): string {
  if (p.preset === 'unreported') return 'privacy not reported (assume none)';
  const eps = p.epsilon === null ? 'epsilon unbounded' : `epsilon ${p.epsilon.toFixed(2)}`;
  return `${p.preset}, ${eps} at delta ${p.delta} (${p.repliesReleased} replies)`;
}
