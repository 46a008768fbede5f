/**
 * A hospital's discriminator: the network layer's DiscriminatorBackend on the engine. Real images
 * live here, looked up by key; each round takes one D step on real vs received fakes and returns
 * d(L_G)/d(fakes). Nothing else leaves this object.
 */
import { Adam, tensor, tidy } from '../engine/index.js';
import type { DiscriminatorBackend, DiscriminatorInput, DiscriminatorOutput } from '../net/backend.js';
import { applyAugmentation } from '../net/augment.js';
import type { SessionConfig } from '../net/protocol.js';
import type { PatchDiscriminator } from '../models/index.js';
import { discriminatorStep, generatorGradient } from '../train/gan.js';
import { learningRateAt, type GanConfig } from '../train/pix2pix.js';
import { loadTrainingStateBytes, saveTrainingStateBytes } from '../train/state.js';

export interface RealImages {
  /** Image channels (modalities) of every sample. */
  channels: number;
  height: number;
  width: number;
  /** [channels, H, W] per key. */
  get(key: string): Float32Array | undefined;
}

export class EngineDiscriminator implements DiscriminatorBackend {
  private lambdaL1 = 100;
  steps = 0;

  constructor(
    readonly discriminator: PatchDiscriminator,
    readonly optimizer: Adam,
    readonly images: RealImages,
    readonly config: Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>,
    /** Image channels this node holds (L1 only on those); all when undefined. */
    readonly l1Channels?: number[],
  ) {}

  configure(config: SessionConfig): void {
    this.lambdaL1 = config.lambdaL1;
    const { channels, height, width } = this.images;
    if (config.imageChannels !== channels || config.height !== height || config.width !== width) {
      throw new Error(
        `node data is ${channels}x${height}x${width} but the server generates ` +
          `${config.imageChannels}x${config.height}x${config.width}`,
      );
    }
  }

  async step(input: DiscriminatorInput): Promise<DiscriminatorOutput> {
    const [n, c, h, w] = input.fakeShape;
    const plane = c * h * w;
    const real = new Float32Array(n * plane);
    input.keys.forEach((key, i) => {
      const img = this.images.get(key);
      if (!img || img.length !== plane) throw new Error(`no real image of ${plane} values for key "${key}"`);
      real.set(img, i * plane);
    });
    const realAug = applyAugmentation(real, input.fakeShape, input.aug);
    this.optimizer.lr = learningRateAt(this.config, this.steps);
    const maskShape = [n, input.masks.length / (n * h * w), h, w];
    const result = tidy(() => {
      const mask = tensor(input.masks, maskShape);
      const realT = tensor(realAug, [n, c, h, w]);
      const fake = tensor(input.fakes, [n, c, h, w]);
      const d = discriminatorStep(this.discriminator, this.optimizer, mask, realT, fake);
      const g = generatorGradient(this.discriminator, mask, realT, fake, {
        lambdaL1: this.lambdaL1,
        ...(this.l1Channels ? { l1Channels: this.l1Channels } : {}),
      });
      return { ...d, gGan: g.gGan, gL1: g.gL1, gradFake: g.gradFake };
    });
    this.steps++;
    // One readback of everything the reply needs.
    const [gradFakes, dReal, dFake, gGan, gL1] = await Promise.all([
      result.gradFake.read(),
      result.dReal.item(),
      result.dFake.item(),
      result.gGan.item(),
      result.gL1.item(),
    ]);
    for (const t of Object.values(result)) t.dispose();
    return { gradFakes, losses: { dReal, dFake, gGan, gL1 } };
  }

  async saveState(): Promise<Uint8Array> {
    return saveTrainingStateBytes({
      modules: { D: this.discriminator },
      optimizers: { D: this.optimizer },
      info: { steps: this.steps },
    });
  }

  async loadState(bytes: Uint8Array): Promise<void> {
    const info = await loadTrainingStateBytes(bytes, { modules: { D: this.discriminator }, optimizers: { D: this.optimizer } });
    this.steps = Number(info.steps ?? 0);
  }
}
