/**
 * The central generator behind the federation server: the network layer's GeneratorBackend
 * implemented on the engine. `generate` keeps each batch's forward graph on the GPU so that the
 * gradients the nodes send back are propagated through the very activations that produced the
 * fakes; a late reply whose graph was already released is propagated through a recomputed pass.
 */
import { Adam, backward, releaseGraph, tensor, tidy, type Tensor } from '../engine/index.js';
import type { GeneratorBackend, GeneratorBatch, GeneratorStep } from '../net/backend.js';
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

  private release(batch: GeneratorBatch, t: Tensor): void {
    releaseGraph(t);
    t.dispose();
    this.graphs.delete(batch);
  }
}
