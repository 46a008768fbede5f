/**
 * The node's privacy ledger: every release it has made, composed by RDP and converted to
 * (epsilon, delta). Its state is a short list of (mechanism, count) entries, saved with the
 * node's checkpoint so a restart never resets the budget.
 */
import { DEFAULT_ORDERS, epsilonFromRdp, gaussianRdp, subsampledGaussianRdp } from './rdp.js';

/** `count` releases of one mechanism. q absent: the plain Gaussian mechanism. */
export interface ReleaseEntry {
  /** Noise multiplier: noise standard deviation / L2 sensitivity. */
  z: number;
  /** Poisson sampling rate, only where subsampling is justified (see subsampledGaussianRdp). */
  q?: number;
  count: number;
}

export interface AccountantState {
  format: 'asyndgan-rdp-accountant';
  version: 1;
  entries: ReleaseEntry[];
}

export class RdpAccountant {
  private readonly entries: ReleaseEntry[] = [];

  constructor(readonly orders: readonly number[] = DEFAULT_ORDERS) {}

  /** Record `count` releases of the Gaussian mechanism with noise multiplier `z`. */
  addGaussian(z: number, count = 1): void {
    gaussianRdp(z, 2); // validates z
    this.add({ z, count });
  }

  /** Record `count` releases of the Poisson-subsampled Gaussian mechanism. */
  addSubsampledGaussian(q: number, z: number, count = 1): void {
    subsampledGaussianRdp(q, z, 2); // validates q and z
    this.add({ z, q, count });
  }

  /** Total number of releases recorded. */
  get releases(): number {
    return this.entries.reduce((s, e) => s + e.count, 0);
  }

  /** The orders in use: the subsampled formula holds at integer orders only. */
  private activeOrders(entries: readonly ReleaseEntry[]): number[] {
    return entries.some((e) => e.q !== undefined && e.q < 1) ? this.orders.filter((a) => Number.isInteger(a) && a >= 2) : [...this.orders];
  }

  /** Composed RDP at each active order. */
  rdp(entries: readonly ReleaseEntry[] = this.entries): { orders: number[]; rdp: number[] } {
    const orders = this.activeOrders(entries);
    const rdp = orders.map((a) =>
      entries.reduce((s, e) => s + e.count * (e.q === undefined ? gaussianRdp(e.z, a) : subsampledGaussianRdp(e.q, e.z, a)), 0),
    );
    return { orders, rdp };
  }

  /** Epsilon spent so far at `delta` (0 before any release). */
  epsilon(delta: number): number {
    return this.epsilonWith([], delta);
  }

  /** Epsilon at `delta` if `extra` releases were added to those recorded (nothing is recorded). */
  epsilonWith(extra: readonly ReleaseEntry[], delta: number): number {
    const all = [...this.entries, ...extra];
    if (all.every((e) => e.count === 0)) return 0;
    const { orders, rdp } = this.rdp(all);
    return epsilonFromRdp(orders, rdp, delta).epsilon;
  }

  toState(): AccountantState {
    return { format: 'asyndgan-rdp-accountant', version: 1, entries: this.entries.map((e) => ({ ...e })) };
  }

  static fromState(state: unknown, orders: readonly number[] = DEFAULT_ORDERS): RdpAccountant {
    const s = state as Partial<AccountantState> | undefined;
    if (!s || s.format !== 'asyndgan-rdp-accountant' || s.version !== 1 || !Array.isArray(s.entries)) {
      throw new Error('not an asyndgan RDP accountant state (version 1)');
    }
    const acc = new RdpAccountant(orders);
    for (const e of s.entries as unknown[]) {
      const { z, q, count } = (e ?? {}) as Partial<ReleaseEntry>;
      if (typeof z !== 'number' || typeof count !== 'number' || !Number.isInteger(count) || count < 0 || (q !== undefined && typeof q !== 'number')) {
        throw new Error(`accountant state: bad entry ${JSON.stringify(e)}`);
      }
      if (q === undefined) acc.addGaussian(z, count);
      else acc.addSubsampledGaussian(q, z, count);
    }
    return acc;
  }

  private add(e: ReleaseEntry): void {
    if (!Number.isInteger(e.count) || e.count < 0) throw new RangeError(`release count must be a non-negative integer, got ${e.count}`);
    const same = this.entries.find((x) => x.z === e.z && x.q === e.q);
    if (same) same.count += e.count;
    else this.entries.push({ ...e });
  }
}
