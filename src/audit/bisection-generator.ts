/**
 * The malicious server's "generator" for the active reconstruction attack. It plugs into the real
 * federation server (Coordinator + uWebSockets.js) as its GeneratorBackend, so the victim talks to
 * unmodified server code over the documented protocol; only the fakes are chosen by the attacker.
 *
 * Per image it keeps a per-pixel bisection bracket [lo, hi] (start: the generator's output range
 * [-1, 1]) and sends the bracket midpoints as the image's "fake". The sign of the returned
 * d(loss)/d(fake) at a pixel says on which side of the midpoint the real pixel lies (the L1 term
 * is lambda * sign(fake - real) / count). With `repeats` > 1 the same midpoints are sent that many
 * times and the bracket moves by the sign of the summed gradient (majority under noise).
 *
 * A backend sees masks, not keys: the attacker maps each mask to its key by content, using the
 * masks the node uploaded (the server holds them). It never sees a real image.
 */
import { createHash } from 'node:crypto';
import type { GeneratorBackend, GeneratorBatch, GeneratorStep } from '../net/backend.js';
import { bisect, bracketMidpoints, estimateFromConstraints, fullBracket, type Bracket } from './sign-estimators.js';

/** The attacker's state for one of the victim's images. */
interface Target {
  bracket: Bracket;
  query: Float32Array;
  /** Summed gradient over the replies to the current query. */
  sum: Float64Array;
  answersToQuery: number;
  /** Every (query, gradient) pair received, for the final robust estimate. */
  queries: Float32Array[];
  grads: Float32Array[];
}

export interface BisectionOptions {
  /** [C, H, W] of one image. */
  imageShape: readonly [number, number, number];
  /** Replies per query before the bracket moves (1: plain bisection). */
  repeats: number;
}

/** Content key of one mask (the attacker's mask -> key map). */
export function maskDigest(mask: Float32Array): string {
  return createHash('sha1').update(new Uint8Array(mask.buffer, mask.byteOffset, mask.byteLength)).digest('hex');
}

export class BisectionGenerator implements GeneratorBackend {
  private readonly targets = new Map<string, Target>();
  /** Which target each row of a sent batch was. */
  private readonly sent = new WeakMap<GeneratorBatch, (string | undefined)[]>();
  private byDigest = new Map<string, string>();
  /** Replies that carried no signal (all-zero rows: the node did not answer). */
  emptyReplies = 0;
  answeredReplies = 0;

  constructor(
    private readonly opts: BisectionOptions,
    /** The masks the victim uploaded, by key (read from the server's registry when first needed). */
    private readonly uploadedMasks: () => ReadonlyMap<string, Float32Array>,
  ) {
    if (!(Number.isInteger(opts.repeats) && opts.repeats >= 1)) throw new RangeError(`repeats must be a positive integer, got ${opts.repeats}`);
  }

  private keyOf(mask: Float32Array): string | undefined {
    let key = this.byDigest.get(maskDigest(mask));
    if (key === undefined) {
      this.byDigest = new Map([...this.uploadedMasks()].map(([k, m]) => [maskDigest(m), k]));
      key = this.byDigest.get(maskDigest(mask));
    }
    return key;
  }

  private target(key: string): Target {
    let t = this.targets.get(key);
    if (!t) {
      const [c, h, w] = this.opts.imageShape;
      const bracket = fullBracket(c * h * w);
      t = { bracket, query: bracketMidpoints(bracket), sum: new Float64Array(c * h * w), answersToQuery: 0, queries: [], grads: [] };
      this.targets.set(key, t);
    }
    return t;
  }

  async generate(batch: GeneratorBatch): Promise<Float32Array> {
    const [n, mc, h, w] = batch.shape;
    const [c] = this.opts.imageShape;
    const img = c * h * w;
    const out = new Float32Array(n * img);
    const keys: (string | undefined)[] = [];
    for (let i = 0; i < n; i++) {
      const key = this.keyOf(batch.masks.subarray(i * mc * h * w, (i + 1) * mc * h * w));
      keys.push(key);
      if (key !== undefined) out.set(this.target(key).query, i * img);
    }
    this.sent.set(batch, keys);
    return out;
  }

  async applyGradients(steps: readonly GeneratorStep[]): Promise<void> {
    const [c, h, w] = this.opts.imageShape;
    const img = c * h * w;
    for (const step of steps) {
      const keys = this.sent.get(step.batch) ?? [];
      keys.forEach((key, i) => {
        if (key === undefined) return;
        const g = step.gradFakes.subarray(i * img, (i + 1) * img);
        if (g.every((x) => x === 0)) {
          this.emptyReplies++;
          return;
        }
        this.answeredReplies++;
        const t = this.target(key);
        t.queries.push(Float32Array.from(t.query));
        t.grads.push(Float32Array.from(g));
        for (let p = 0; p < img; p++) t.sum[p]! += g[p]!;
        if (++t.answersToQuery >= this.opts.repeats) {
          bisect(t.bracket, t.query, t.sum);
          t.query = bracketMidpoints(t.bracket);
          t.sum.fill(0);
          t.answersToQuery = 0;
        }
      });
    }
  }

  /** Keys attacked so far. */
  keys(): string[] {
    return [...this.targets.keys()];
  }

  /** Replies received for `key`. */
  answers(key: string): number {
    return this.targets.get(key)?.grads.length ?? 0;
  }

  /**
   * The attacker's reconstruction of `key`: the threshold violating the fewest logged sign
   * constraints per pixel, nearest to `prior` (what it would guess with no replies).
   */
  estimate(key: string, prior: Float32Array, priorWeight = 0): Float32Array {
    const t = this.targets.get(key);
    if (!t) return Float32Array.from(prior);
    return estimateFromConstraints(t.queries, t.grads, prior, priorWeight);
  }

  // The attacker keeps no state worth resuming.
  async saveState(): Promise<Uint8Array> {
    return new Uint8Array(0);
  }
  async loadState(): Promise<void> {}
}
