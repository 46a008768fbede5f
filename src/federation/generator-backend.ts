/**
 * The central generator behind the federation server: the network layer's GeneratorBackend
 * implemented on the engine. `generate` keeps each batch's forward graph on the GPU so that the
 * gradients the nodes send back are propagated through the very activations that produced the
 * fakes; a late reply whose graph was already released is propagated through a recomputed pass.
 *
 * A batch with `segments` (the vote modes of aggregation) is generated one forward pass per node,
 * so batch-norm statistics are per node there and each node's vote back-propagates through its own
 * rows only: one step costs about what one whole-batch step costs, not m times it.
 *
 * Robust steps (`applyVotes`): each vote's parameter gradients are copied into one row of a
 * [votes, parameters] matrix, which the GPU combines (coordinate-wise trimmed mean, or under
 * 'median-trust' the votes weighted by their alignment with the median: 2m + 1 numbers read back
 * per step).
 *
 * Optimizer guard: before each Adam step the sum of squares of all parameter gradients is reduced
 * on the GPU and read back (one scalar per step). If it is not finite, Adam's second moment would
 * overflow (v += (1 - beta2) g^2 = Inf, after which m / sqrt(v) = 0 freezes that parameter for good)
 * or the update would be NaN, so the step is refused with GeneratorStepSkipped and nothing changes.
 */
import { Adam, add, backward, concat, coordinateMedian, coordinateTrimmedMean, keep, mul, noGrad, releaseGraph, sum, tensor, tidy, zeros, type Tensor } from '../engine/index.js';
import { copyFlatInto, splitFlat, voteAlignment, weightedVotes } from '../engine/internal.js';
import { medianTrustCoefficients } from '../net/aggregate.js';
import { GeneratorStepSkipped, type GeneratorBackend, type GeneratorBatch, type GeneratorStep, type VoteOutcome, type VoteRule } from '../net/backend.js';
import type { ResnetGenerator } from '../models/index.js';
import { loadTrainingStateBytes, saveTrainingStateBytes } from '../train/state.js';
import { learningRateAt, type GanConfig } from '../train/pix2pix.js';

export class EngineGenerator implements GeneratorBackend {
  /** Forward graphs of recent batches (one per segment), oldest batch first. */
  private readonly graphs = new Map<GeneratorBatch, Segment[]>();
  /** Optimizer steps taken (the learning-rate schedule runs on this). */
  steps = 0;

  constructor(
    readonly generator: ResnetGenerator,
    readonly optimizer: Adam,
    readonly config: Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>,
    /** How many batches' graphs to keep for late replies (memory vs. exactness). */
    private readonly keepGraphs = 2,
    /** false: step even on non-finite gradients (only to show what the guard prevents). Default true. */
    private readonly guardNonFinite = true,
  ) {}

  async generate(batch: GeneratorBatch): Promise<Float32Array> {
    const counts = batch.segments ?? [batch.shape[0]];
    if (counts.reduce((a, b) => a + b, 0) !== batch.shape[0]) throw new RangeError(`generate: segments [${counts.join(', ')}] do not add up to the batch's ${batch.shape[0]} rows`);
    const segments: Segment[] = [];
    let offset = 0;
    for (const count of counts) {
      if (count > 0) segments.push({ offset, count, fake: this.forwardRows(batch, offset, count) });
      offset += count;
    }
    this.graphs.set(batch, segments);
    while (this.graphs.size > this.keepGraphs) {
      const [oldest, segs] = this.graphs.entries().next().value as [GeneratorBatch, Segment[]];
      for (const s of segs) this.release(s.fake);
      this.graphs.delete(oldest);
    }
    if (segments.length === 1) return segments[0]!.fake.read();
    const all = noGrad(() => concat(segments.map((s) => s.fake), 0));
    const values = await all.read();
    all.dispose();
    return values;
  }

  async applyGradients(steps: readonly GeneratorStep[]): Promise<void> {
    this.optimizer.zeroGrad();
    for (const step of steps) this.backpropagate(step);
    await this.step();
  }

  async applyVotes(votes: readonly GeneratorStep[], rule: VoteRule): Promise<VoteOutcome> {
    this.optimizer.zeroGrad();
    const params = this.optimizer.params;
    const offsets: number[] = [];
    let total = 0;
    for (const p of params) {
      offsets.push(total);
      total += p.size;
    }
    const stack = zeros([votes.length, total]);
    votes.forEach((vote, k) => {
      this.backpropagate(vote);
      params.forEach((p, i) => p.grad && copyFlatInto([p.grad], stack, k * total + offsets[i]!));
      this.optimizer.zeroGrad();
    });
    let combined: Tensor;
    let outcome: VoteOutcome = {};
    if (rule.kind === 'trimmed-mean') {
      combined = coordinateTrimmedMean(stack, rule.trim);
    } else {
      const median = coordinateMedian(stack);
      const alignment = voteAlignment(stack, median);
      // 2m + 1 numbers read back: the trust scores decide the combination.
      const { trust, coefficients } = medianTrustCoefficients(await alignment.read(), rule.weights);
      alignment.dispose();
      outcome = { trust };
      if (coefficients) {
        const w = tensor(Float32Array.from(coefficients), [coefficients.length]);
        combined = weightedVotes(stack, w);
        w.dispose();
        median.dispose();
      } else {
        combined = median;
      }
    }
    stack.dispose();
    splitFlat(combined, params.map((p) => p.shape)).forEach((g, i) => (params[i]!.grad = keep(g)));
    combined.dispose();
    await this.step();
    return outcome;
  }

  /**
   * Back-propagates `step` through the forward graphs of its rows: the kept segments that lie
   * inside them, and recomputed passes for the rest (a released batch, or a vote whose rows were
   * not a segment of their own). Each graph is used once and released.
   */
  private backpropagate(step: GeneratorStep): void {
    const { batch } = step;
    const offset = step.rows?.offset ?? 0;
    const count = step.rows?.count ?? batch.shape[0];
    const img = step.gradFakes.length / count;
    const kept = this.graphs.get(batch) ?? [];
    const inside = kept.filter((s) => s.offset >= offset && s.offset + s.count <= offset + count);
    if (inside.length > 0) this.graphs.set(batch, kept.filter((s) => !inside.includes(s)));
    const segments: Segment[] = [];
    let at = offset;
    for (const s of inside.sort((a, b) => a.offset - b.offset)) {
      if (s.offset > at) segments.push({ offset: at, count: s.offset - at, fake: this.forwardRows(batch, at, s.offset - at) });
      segments.push(s);
      at = s.offset + s.count;
    }
    if (at < offset + count) segments.push({ offset: at, count: offset + count - at, fake: this.forwardRows(batch, at, offset + count - at) });
    for (const s of segments) {
      const from = (s.offset - offset) * img;
      tidy(() => backward(s.fake, tensor(step.gradFakes.subarray(from, from + s.count * img), s.fake.shape)));
      s.fake.dispose();
    }
  }

  /** A training-mode forward pass of rows offset..offset+count of `batch`. */
  private forwardRows(batch: GeneratorBatch, offset: number, count: number): Tensor {
    const [, c, h, w] = batch.shape;
    const per = c * h * w;
    return tidy(() => this.generator.forward(tensor(batch.masks.subarray(offset * per, (offset + count) * per), [count, c, h, w])));
  }

  /** The guarded optimizer step on the gradients now held. */
  private async step(): Promise<void> {
    if (this.guardNonFinite) {
      const sq = await this.gradientSumOfSquares();
      if (!Number.isFinite(sq)) {
        this.optimizer.zeroGrad();
        throw new GeneratorStepSkipped(`sum of squared generator gradients is ${sq}; step ${this.steps + 1} skipped, weights and Adam moments unchanged`);
      }
    }
    this.optimizer.lr = learningRateAt(this.config, this.steps);
    this.optimizer.step();
    this.steps++;
  }

  async saveState(): Promise<Uint8Array> {
    return saveTrainingStateBytes({
      modules: { G: this.generator },
      optimizers: { G: this.optimizer },
      info: { steps: this.steps },
    });
  }

  async loadState(bytes: Uint8Array): Promise<void> {
    const info = await loadTrainingStateBytes(bytes, { modules: { G: this.generator }, optimizers: { G: this.optimizer } });
    this.steps = Number(info.steps ?? 0);
  }

  /** sum over all parameter gradients of g^2, reduced on the GPU: one scalar readback. */
  private async gradientSumOfSquares(): Promise<number> {
    const total = noGrad(() => tidy(() => {
      let acc: Tensor | undefined;
      for (const p of this.optimizer.params) {
        if (!p.grad) continue;
        const s = sum(mul(p.grad, p.grad));
        acc = acc ? add(acc, s) : s;
      }
      return acc;
    }));
    if (!total) return 0;
    const [v] = await total.read();
    total.dispose();
    return v!;
  }

  private release(t: Tensor): void {
    releaseGraph(t);
    t.dispose();
  }
}

/** A forward graph of some rows of a batch (`generate` keeps one per node segment). */
interface Segment {
  offset: number;
  count: number;
  fake: Tensor;
}
