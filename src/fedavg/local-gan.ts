/**
 * One site's GAN for FedAvg: the very pix2pix iteration of centralized training and of AsynDGAN
 * (Pix2pixTrainer, src/train/pix2pix.ts: same networks, BCE-with-logits + lambda x L1, Adam) on
 * this site's own slices, behind the small interface the FedAvg node drives.
 *
 * Adam state across averagings: 'reset' zeroes the moments after every global model (the
 * default, FEDAVG_DEFAULTS), 'local' keeps them through the averaging. Averaging them is not
 * offered: the moments are as large as the weights, so sending them would triple the bytes of the
 * baseline whose bytes are being compared. Measured (docs/FEDAVG.md): at E = 16 reset was slightly
 * better on both seeds, at E = 1 local was (one seed); every difference was below the seed spread.
 */
import { Rng, tensor, tidy, type Engine } from '../engine/index.js';
import { conditionTensor, imageTensor, type Dataset } from '../data/index.js';
import type { Losses } from '../net/protocol.js';
import { learningRateAt, Pix2pixTrainer, type GanConfig } from '../train/pix2pix.js';
import { loadTrainingStateBytes, saveTrainingStateBytes } from '../train/state.js';
import { FEDAVG_DEFAULTS } from './defaults.js';
import { modelLayout, readModel, writeModel } from './models.js';
import type { FedSessionConfig, ModelLayout } from './protocol.js';

/** What the FedAvg node needs from a site's GAN (tests can substitute their own). */
export interface LocalGan {
  readonly layouts: { G: ModelLayout; D: ModelLayout };
  readonly sampleCount: number;
  /** Replace both models' weights (and, with 'reset', zero the Adam state). */
  load(models: { G: Float32Array[]; D: Float32Array[] }): void;
  /** Train `steps` steps; `firstStep` is the global local-step index the learning-rate schedule starts at. */
  train(steps: number, firstStep: number, session: FedSessionConfig): Promise<Losses>;
  read(): Promise<{ G: Float32Array[]; D: Float32Array[] }>;
  /** Local state to checkpoint (optimizer moments, sampling RNG) and restore. */
  saveState(): Promise<Uint8Array>;
  loadState(bytes: Uint8Array): Promise<void>;
}

export type AdamPolicy = 'local' | 'reset';

export class EngineLocalGan implements LocalGan {
  readonly trainer: Pix2pixTrainer;
  private names!: { G: string[]; D: string[] };
  layouts!: { G: ModelLayout; D: ModelLayout };
  private rng: Rng;

  private constructor(private readonly engine: Engine, cfg: GanConfig, private readonly data: Dataset, private readonly adam: AdamPolicy, seed: number) {
    this.trainer = new Pix2pixTrainer({ ...cfg }, data.numClasses, data.modalities.length); // a copy: train() rewrites its schedule
    this.rng = new Rng(seed);
  }

  /** `cfg` gives the architecture (every site and the server must agree); `seed` the batch sampling. */
  static async create(engine: Engine, cfg: GanConfig, data: Dataset, opts: { adam?: AdamPolicy; seed?: number } = {}): Promise<EngineLocalGan> {
    const g = new EngineLocalGan(engine, cfg, data, opts.adam ?? FEDAVG_DEFAULTS.adam, opts.seed ?? cfg.seed * 7919);
    const lg = await modelLayout(g.trainer.generator);
    const ld = await modelLayout(g.trainer.discriminator);
    g.names = { G: lg.names, D: ld.names };
    g.layouts = { G: lg.layout, D: ld.layout };
    return g;
  }

  get sampleCount(): number {
    return this.data.slices.length;
  }

  load(models: { G: Float32Array[]; D: Float32Array[] }): void {
    writeModel(this.trainer.generator, this.names.G, this.layouts.G, models.G);
    writeModel(this.trainer.discriminator, this.names.D, this.layouts.D, models.D);
    if (this.adam === 'reset') for (const o of [this.trainer.optimizerG, this.trainer.optimizerD]) resetAdam(o);
  }

  async train(steps: number, firstStep: number, s: FedSessionConfig): Promise<Losses> {
    const { data, trainer } = this;
    const size = data.height;
    const B = s.batchSize;
    const sums = { dReal: 0, dFake: 0, gGan: 0, gL1: 0 };
    const schedule = { lr: s.lr, iters: s.totalSteps, decayIters: s.decaySteps };
    for (let k = 0; k < steps; k++) {
      // The trainer's own schedule reads trainer.iter; the session's schedule is the server's.
      trainer.config.lr = learningRateAt(schedule, firstStep + k);
      trainer.config.iters = Number.MAX_SAFE_INTEGER;
      trainer.config.decayIters = 0;
      const batch = Array.from({ length: B }, () => data.slices[Math.floor(this.rng.uniform() * data.slices.length)]!);
      const losses = tidy(() => {
        const mask = tensor(conditionTensor(batch, data.numClasses), [B, data.numClasses, size, size]);
        const real = tensor(imageTensor(batch), [B, data.modalities.length, size, size]);
        return trainer.step(mask, real);
      });
      const [dReal, dFake, gGan, gL1] = await Promise.all([losses.dReal.item(), losses.dFake.item(), losses.gGan.item(), losses.gL1.item()]);
      for (const t of Object.values(losses)) t.dispose();
      sums.dReal += dReal / steps;
      sums.dFake += dFake / steps;
      sums.gGan += gGan / steps;
      sums.gL1 += gL1 / steps;
    }
    await this.engine.sync();
    return sums;
  }

  async read(): Promise<{ G: Float32Array[]; D: Float32Array[] }> {
    return { G: await readModel(this.trainer.generator, this.names.G), D: await readModel(this.trainer.discriminator, this.names.D) };
  }

  async saveState(): Promise<Uint8Array> {
    const t = this.trainer;
    return saveTrainingStateBytes({ modules: { G: t.generator, D: t.discriminator }, optimizers: { G: t.optimizerG, D: t.optimizerD }, info: { rng: this.rng.state } });
  }

  async loadState(bytes: Uint8Array): Promise<void> {
    const t = this.trainer;
    const info = await loadTrainingStateBytes(bytes, { modules: { G: t.generator, D: t.discriminator }, optimizers: { G: t.optimizerG, D: t.optimizerD } });
    if (typeof info.rng === 'number') this.rng = Rng.fromState(info.rng);
  }
}

/** Zero an Adam optimizer's moments and step counts (as if new), keeping its hyper-parameters. */
function resetAdam(o: Pix2pixTrainer['optimizerG']): void {
  const sizes = o.params.map((p) => p.size);
  o.importState({
    step: 0, lr: o.lr, betas: [...o.betas] as [number, number], eps: o.eps, weightDecay: o.weightDecay, decoupled: o.decoupled,
    names: [...o.names], steps: sizes.map(() => 0), m: sizes.map((n) => new Float32Array(n)), v: sizes.map((n) => new Float32Array(n)),
  });
}
