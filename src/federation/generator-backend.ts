/**
 * The central generator behind the federation server: the network layer's GeneratorBackend
 * implemented on the engine. `generate` keeps each batch's forward graph on the GPU so that the
 * gradients the nodes send back are propagated through the very activations that produced the
 * fakes; a late reply whose graph was already released is propagated through a recomputed pass.
 *
 * Robust steps (`applyVotes`): each node's reply is back-propagated on its own through the same
 * retained forward graph (exact with batch norm, whose statistics couple the rows), its parameter
 * gradients are copied into one row of a [votes, parameters] matrix, and `coordinateTrimmedMean`
 * combines the rows on the GPU (coordinate-wise trimmed mean, or under 'median-trust' the votes
 * weighted by their alignment with the median: 2m + 1 numbers read back per step). Costs one
 * backward pass per vote instead of one in all.
 *
 * Optimizer guard: before each Adam step the sum of squares of all parameter gradients is reduced
 * on the GPU and read back (one scalar per step). If it is not finite, Adam's second moment would
 * overflow (v += (1 - beta2) g^2 = Inf, after which m / sqrt(v) = 0 freezes that parameter for good)
 * or the update would be NaN, so the step is refused with GeneratorStepSkipped and nothing changes.
 */
import { Adam, add, backward, coordinateMedian, coordinateTrimmedMean, keep, mul, noGrad, releaseGraph, sum, tensor, tidy, zeros, type Tensor } from '../engine/index.js';
import { copyFlatInto, splitFlat, voteAlignment, weightedVotes } from '../engine/internal.js';
import { medianTrustCoefficients } from '../net/aggregate.js';
import { GeneratorStepSkipped, type GeneratorBackend, type GeneratorBatch, type GeneratorStep, type VoteOutcome, type VoteRule } from '../net/backend.js';
import type { ResnetGenerator } from '../models/index.js';
import { loadTrainingStateBytes, saveTrainingStateBytes } from '../train/state.js';
import { learningRateAt, type GanConfig } from '../train/pix2pix.js';

export class EngineGenerator implements GeneratorBackend {
  /** Forward graphs of recent batches, oldest first. */
  private readonly graphs = new Map<GeneratorBatch, Tensor>();
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
    const fake = tidy(() => this.generator.forward(tensor(batch.masks, batch.shape)));
    this.graphs.set(batch, fake);
    while (this.graphs.size > this.keepGraphs) {
      const [oldest, t] = this.graphs.entries().next().value as [GeneratorBatch, Tensor];
      this.release(oldest, t);
    }
    return fake.read();
  }

  async applyGradients(steps: readonly GeneratorStep[]): Promise<void> {
    this.optimizer.zeroGrad();
    for (const step of steps) {
      const fake = this.takeGraph(step.batch);
      tidy(() => backward(fake, tensor(step.gradFakes, fake.shape)));
      fake.dispose();
    }
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
    const fakes = new Map<GeneratorBatch, Tensor>();
    votes.forEach((vote, k) => {
      let fake = fakes.get(vote.batch);
      if (!fake) fakes.set(vote.batch, (fake = this.takeGraph(vote.batch)));
      tidy(() => backward(fake, tensor(vote.gradFakes, fake.shape), { retainGraph: true }));
      params.forEach((p, i) => p.grad && copyFlatInto([p.grad], stack, k * total + offsets[i]!));
      this.optimizer.zeroGrad();
    });
    for (const fake of fakes.values()) {
      releaseGraph(fake);
      fake.dispose();
    }
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

  /** The graph `generate` kept for `batch`, or a recomputed one; the caller disposes it. */
  private takeGraph(batch: GeneratorBatch): Tensor {
    const kept = this.graphs.get(batch);
    if (kept) {
      this.graphs.delete(batch);
      return kept;
    }
    return tidy(() => this.generator.forward(tensor(batch.masks, batch.shape)));
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

  private release(batch: GeneratorBatch, t: Tensor): void {
    releaseGraph(t);
    t.dispose();
    this.graphs.delete(batch);
  }
}
