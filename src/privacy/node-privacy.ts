/**
 * Everything a node does to a reply before it leaves, in one object the node calls at four
 * points: on welcome (limits), on a request (query guard, range, budget), on the gradient
 * (clip + noise), and after the reply is sent (ledger). Its state (accountant + guard) is what
 * must survive a restart.
 */
import { RdpAccountant, type AccountantState } from './accountant.js';
import { clipPerSample, type ClipReport } from './clip.js';
import { exceededLimit, type AskedParameters, type LimitBreach } from './limits.js';
import { addGaussianNoise, cryptoNormalSource, type NormalSource } from './noise.js';
import { privacySettings, replyNoiseMultiplier, type PrivacyOverrides, type PrivacyPreset, type PrivacySettings } from './presets.js';
import { QueryGuard, firstOutOfRange, type QueryGuardState } from './query-guard.js';

export interface NodePrivacyState {
  format: 'asyndgan-node-privacy';
  version: 1;
  accountant: AccountantState;
  guard: QueryGuardState | undefined;
  /** Replies sent (the query guard's clock). */
  releases: number;
  /** Replies sent without noise: no finite epsilon covers them. */
  exactReleases: number;
}

/** Why a request is declined; `fatal` ones end the session (budget spent). */
export interface Refusal {
  code: 'query_refused' | 'privacy_budget_spent';
  message: string;
  fatal: boolean;
}

/** Summary for logs, status metrics and the server's report. */
export interface PrivacySummary {
  preset: PrivacyPreset;
  epsilon: number;
  delta: number;
  epsilonBudget: number;
  noiseMultiplier: number;
  clip: number;
  noise: number;
  repliesReleased: number;
}

export class NodePrivacy {
  readonly settings: PrivacySettings;
  private accountant = new RdpAccountant();
  private readonly guard: QueryGuard | undefined;
  private releases = 0;
  private exactReleases = 0;
  private lastZ = 0;
  private readonly normals: NormalSource;

  /** `normals` is for tests only: the default draws from node:crypto. */
  constructor(settings: PrivacySettings | PrivacyPreset | undefined = undefined, overrides: PrivacyOverrides = {}, normals?: NormalSource) {
    this.settings = typeof settings === 'object' ? settings : privacySettings(settings, overrides);
    const s = this.settings;
    this.guard = s.maxQueries !== undefined ? new QueryGuard(s.maxQueries, s.queryWindow) : undefined;
    this.normals = normals ?? cryptoNormalSource();
  }

  /** Whether replies carry noise (hence are accounted). */
  get noisy(): boolean {
    return this.settings.noise > 0;
  }

  /** A server parameter above this node's limits, or undefined. */
  checkConfig(asked: AskedParameters): LimitBreach | undefined {
    return exceededLimit(asked, this.settings, { l1: this.settings.l1 });
  }

  /** The lambdaL1 the node's backend must use: 0 for GAN-only replies. */
  effectiveLambdaL1(asked: number): number {
    return this.settings.l1 ? asked : 0;
  }

  /** Why this request must not be answered, or undefined. Records nothing. */
  admit(keys: readonly string[], fakes: Float32Array): Refusal | undefined {
    const s = this.settings;
    if (this.noisy && Number.isFinite(s.epsilonBudget)) {
      if (this.exactReleases > 0) {
        return {
          code: 'privacy_budget_spent', fatal: true,
          message: `privacy budget spent: this node already sent ${this.exactReleases} replies without noise, which no finite epsilon covers. ` +
            'Only a new privacy ledger (a fresh checkpoint directory) starts a new budget, and it cannot protect what was already sent.',
        };
      }
      const z = replyNoiseMultiplier(s.noise, keys.length);
      const next = this.accountant.epsilonWith([{ z, count: 1 }], s.delta);
      if (next > s.epsilonBudget) {
        return {
          code: 'privacy_budget_spent', fatal: true,
          message: `privacy budget spent: epsilon ${this.epsilon.toFixed(3)} at delta ${s.delta} after ${this.releases} replies; ` +
            `one more would reach ${next.toFixed(3)}, above the budget ${s.epsilonBudget}. This node answers no more rounds.`,
        };
      }
    }
    if (s.rangeCheck) {
      const bad = firstOutOfRange(fakes);
      if (bad) {
        return { code: 'query_refused', fatal: false, message: `fakes element ${bad.index} is ${bad.value}, outside the generator's output range [-1, 1]` };
      }
    }
    const why = this.guard?.check(keys, this.releases + 1);
    return why ? { code: 'query_refused', fatal: false, message: why } : undefined;
  }

  /** Clip each sample of `grad` (samples of `perSample` values) and add the noise, in place. */
  sanitize(grad: Float32Array, perSample: number): ClipReport | undefined {
    const { clip, noise } = this.settings;
    if (clip === undefined) return undefined;
    const report = clipPerSample(grad, perSample, clip);
    addGaussianNoise(grad, noise * clip, this.normals);
    return report;
  }

  /** Record a reply of `keys` that was sent. */
  recordRelease(keys: readonly string[]): void {
    this.releases++;
    this.guard?.record(keys, this.releases);
    if (this.noisy) {
      this.lastZ = replyNoiseMultiplier(this.settings.noise, keys.length);
      this.accountant.addGaussian(this.lastZ);
    } else {
      this.exactReleases++;
    }
  }

  /** Epsilon spent so far at the node's delta; Infinity once a reply without noise was sent. */
  get epsilon(): number {
    if (this.exactReleases > 0) return Infinity;
    return this.accountant.epsilon(this.settings.delta);
  }

  get repliesReleased(): number {
    return this.releases;
  }

  summary(): PrivacySummary {
    const s = this.settings;
    return {
      preset: s.preset, epsilon: this.epsilon, delta: s.delta, epsilonBudget: s.epsilonBudget,
      noiseMultiplier: this.lastZ, clip: s.clip ?? 0, noise: s.noise, repliesReleased: this.releases,
    };
  }

  /**
   * Finite numbers for the status message (metrics must be finite): epsilon -1 means unbounded
   * (no noise), epsilonBudget -1 means none.
   */
  statusMetrics(): Record<string, number> {
    const m = this.summary();
    return {
      epsilon: Number.isFinite(m.epsilon) ? m.epsilon : -1,
      delta: m.delta,
      epsilonBudget: Number.isFinite(m.epsilonBudget) ? m.epsilonBudget : -1,
      noiseMultiplier: m.noiseMultiplier,
      clip: m.clip,
      noise: m.noise,
      repliesReleased: m.repliesReleased,
      privacyPreset: PRESET_CODES[m.preset],
    };
  }

  toState(): NodePrivacyState {
    return { format: 'asyndgan-node-privacy', version: 1, accountant: this.accountant.toState(), guard: this.guard?.toState(this.releases), releases: this.releases, exactReleases: this.exactReleases };
  }

  /** Restore a saved state; keeps whichever of the saved and the current state has more releases. */
  restore(state: unknown): void {
    const s = state as Partial<NodePrivacyState> | undefined;
    if (!s || s.format !== 'asyndgan-node-privacy' || s.version !== 1 || typeof s.releases !== 'number') throw new Error('not an asyndgan node privacy state (version 1)');
    if (s.releases < this.releases) return;
    this.accountant = RdpAccountant.fromState(s.accountant);
    if (this.guard && s.guard) this.guard.restore(s.guard);
    this.releases = s.releases;
    this.exactReleases = typeof s.exactReleases === 'number' ? s.exactReleases : 0;
  }
}

/** Presets as numbers for status.metrics (which carries numbers only). */
export const PRESET_CODES: Readonly<Record<PrivacyPreset, number>> = { off: 0, guarded: 1, dp: 2 };
