/**
 * The central generator behind the federation server: the network layer's GeneratorBackend
 * implemented on the engine. `generate` keeps each batch's forward graph on the GPU so that the
 * gradients the nodes send back are propagated through the very activations that produced the
 * fakes; a late reply whose graph was already released is propagated through a recomputed pass.
 *
 * Optimizer guard: before each Adam step the sum of squares of all parameter gradients is reduced
 * on the GPU and read back (one scalar per step). If it is not finite, Adam's second moment would
 * overflow (v += (1 - beta2) g^2 = Inf, after which m / sqrt(v) = 0 freezes that parameter for good)
 * or the update would be NaN, so the step is refused with GeneratorStepSkipped and nothing changes.
 */
import { Adam, add, backward, mul, noGrad, releaseGraph, sum, tensor, tidy, type Tensor } from '../engine/index.js';
import { GeneratorStepSkipped, type GeneratorBackend, type GeneratorBatch, type GeneratorStep } from '../net/backend.js';
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
      let fake = this.graphs.get(step.batch);
      if (fake) this.graphs.delete(step.batch);
      else fake = tidy(() => this.generator.forward(tensor(step.batch.masks, step.batch.shape)));
      tidy(() => backward(fake!, tensor(step.gradFakes, fake!.shape)));
      fake.dispose();
    }
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
