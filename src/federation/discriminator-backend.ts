/**
 * A hospital's discriminator(s): the network layer's DiscriminatorBackend on the engine. Real
 * images live here, looked up by key; each round takes one step of every discriminator on real vs
 * received fakes and returns d(L_G)/d(fakes). Nothing else leaves this object.
 *
 * A node may hold only some of the generator's modalities (`heldChannels`): its real images then
 * have only those channels, its discriminators see only those channels of the fakes (one joint D,
 * or one D per modality), L1 runs on them only, and the returned gradient is exactly 0 on every
 * channel it does not hold.
 */
import { tensor, tidy, type Adam } from '../engine/index.js';
import type { DiscriminatorBackend, DiscriminatorInput, DiscriminatorOutput } from '../net/backend.js';
import { applyAugmentation } from '../net/augment.js';
import type { SessionConfig } from '../net/protocol.js';
import type { Module } from '../models/module.js';
import { discriminatorsStep, generatorGradients, type DiscriminatorUnit } from '../train/gan.js';
import { learningRateAt, type GanConfig } from '../train/pix2pix.js';
import { loadTrainingStateBytes, saveTrainingStateBytes } from '../train/state.js';

export interface RealImages {
  /** Channels of every image `get` returns: the held modalities (all of them by default). */
  channels: number;
  height: number;
  width: number;
  /** [channels, H, W] per key. */
  get(key: string): Float32Array | undefined;
}

export interface EngineDiscriminatorOptions {
  /**
   * Generator channels this node holds, ascending; `images` has exactly these channels, in this
   * order. Default: all channels (`images.channels` of them).
   */
  heldChannels?: readonly number[];
}

export class EngineDiscriminator implements DiscriminatorBackend {
  private lambdaL1 = 100;
  /** Generator channels (server side), known once configured; inferred from the images before that. */
  private imageChannels: number;
  readonly discriminators: readonly DiscriminatorUnit[];
  readonly images: RealImages;
  readonly config: Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>;
  /** Generator channels this node holds (ascending); undefined: all. */
  readonly heldChannels: readonly number[] | undefined;
  /** L1 channels of the original single-discriminator form (D on all channels, L1 on some). */
  private readonly l1Only: readonly number[] | undefined;
  steps = 0;

  /** One discriminator on every channel (the original form); L1 on `l1Channels` only when given. */
  constructor(
    discriminator: Module,
    optimizer: Adam,
    images: RealImages,
    config: Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>,
    l1Channels?: readonly number[],
  );
  /** Any number of discriminators, each on some channels; the node may hold a subset of the channels. */
  constructor(
    discriminators: readonly DiscriminatorUnit[],
    images: RealImages,
    config: Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>,
    options?: EngineDiscriminatorOptions,
  );
  constructor(...args: unknown[]) {
    let options: EngineDiscriminatorOptions = {};
    if (Array.isArray(args[0])) {
      this.discriminators = [...(args[0] as DiscriminatorUnit[])];
      this.images = args[1] as RealImages;
      this.config = args[2] as Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>;
      options = (args[3] as EngineDiscriminatorOptions | undefined) ?? {};
      this.l1Only = undefined;
    } else {
      this.discriminators = [{ module: args[0] as Module, optimizer: args[1] as Adam }];
      this.images = args[2] as RealImages;
      this.config = args[3] as Pick<GanConfig, 'lr' | 'iters' | 'decayIters'>;
      this.l1Only = args[4] ? [...(args[4] as number[])] : undefined;
    }
    const { discriminators, images } = this;
    if (discriminators.length === 0) throw new Error('EngineDiscriminator: no discriminators');
    this.heldChannels = options.heldChannels ? [...options.heldChannels] : undefined;
    const held = this.heldChannels;
    if (held) {
      if (held.length !== images.channels) {
        throw new Error(`EngineDiscriminator: ${held.length} held channels but the real images have ${images.channels}`);
      }
      if (held.some((c, i) => !Number.isInteger(c) || c < 0 || (i > 0 && c <= held[i - 1]!))) {
        throw new Error(`EngineDiscriminator: held channels must be ascending and unique, got [${held.join(', ')}]`);
      }
    }
    this.imageChannels = held ? held[held.length - 1]! + 1 : images.channels;
    this.checkCoverage(this.imageChannels);
  }

  /** The first (in the original form: the only) discriminator. */
  get discriminator(): Module {
    return this.discriminators[0]!.module;
  }

  get optimizer(): Adam {
    return this.discriminators[0]!.optimizer;
  }

  /**
   * A discriminator judging a channel the node does not hold would learn that "real" is 0 there:
   * refuse it. `c` is the number of generator channels.
   */
  private checkCoverage(c: number): void {
    const held = this.heldChannels;
    if (!held || held.length === c) return;
    for (const [k, d] of this.discriminators.entries()) {
      if (!d.channels) throw new Error(`EngineDiscriminator: discriminator ${k} sees all ${c} channels but the node holds [${held.join(', ')}] only`);
      const foreign = d.channels.filter((ch) => !held.includes(ch));
      if (foreign.length > 0) throw new Error(`EngineDiscriminator: discriminator ${k} sees channels [${foreign.join(', ')}] the node does not hold`);
    }
  }

  configure(config: SessionConfig): void {
    this.lambdaL1 = config.lambdaL1;
    const { channels, height, width } = this.images;
    const held = this.heldChannels;
    if (held) {
      if (held[held.length - 1]! >= config.imageChannels || config.height !== height || config.width !== width) {
        throw new Error(
          `node holds channels [${held.join(', ')}] of ${height}x${width} images but the server generates ` +
            `${config.imageChannels}x${config.height}x${config.width}`,
        );
      }
    } else if (config.imageChannels !== channels || config.height !== height || config.width !== width) {
      throw new Error(
        `node data is ${channels}x${height}x${width} but the server generates ` +
          `${config.imageChannels}x${config.height}x${config.width}`,
      );
    }
    this.checkCoverage(config.imageChannels);
    this.imageChannels = config.imageChannels;
  }

  async step(input: DiscriminatorInput): Promise<DiscriminatorOutput> {
    const [n, c, h, w] = input.fakeShape;
    const held = this.heldChannels;
    if (held ? held[held.length - 1]! >= c : c !== this.images.channels) {
      throw new Error(`fakes have ${c} channels; this node's images have ${held ? `channels [${held.join(', ')}]` : this.images.channels}`);
    }
    if (c !== this.imageChannels) this.checkCoverage(c);
    const hw = h * w;
    const own = this.images.channels * hw;
    // Real images laid out like the fakes; channels this node does not hold stay 0 and are never
    // looked at (no discriminator sees them, L1 skips them).
    const real = new Float32Array(n * c * hw);
    input.keys.forEach((key, i) => {
      const img = this.images.get(key);
      if (!img || img.length !== own) throw new Error(`no real image of ${own} values for key "${key}"`);
      if (!held) real.set(img, i * c * hw);
      else held.forEach((ch, j) => real.set(img.subarray(j * hw, (j + 1) * hw), (i * c + ch) * hw));
    });
    const realAug = applyAugmentation(real, input.fakeShape, input.aug);
    const lr = learningRateAt(this.config, this.steps);
    for (const d of this.discriminators) d.optimizer.lr = lr;
    const maskShape = [n, input.masks.length / (n * hw), h, w];
    const l1Channels = held && held.length < c ? held : this.l1Only;
    const result = tidy(() => {
      const mask = tensor(input.masks, maskShape);
      const realT = tensor(realAug, [n, c, h, w]);
      const fake = tensor(input.fakes, [n, c, h, w]);
      const d = discriminatorsStep(this.discriminators, mask, realT, fake);
      const g = generatorGradients(this.discriminators, mask, realT, fake, {
        lambdaL1: this.lambdaL1,
        ...(l1Channels ? { l1Channels } : {}),
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

  /** Checkpoint names: "D" for a single discriminator (as before), "D0", "D1", ... otherwise. */
  private named(): { modules: Record<string, Module>; optimizers: Record<string, DiscriminatorUnit['optimizer']> } {
    const one = this.discriminators.length === 1;
    const modules: Record<string, Module> = {};
    const optimizers: Record<string, DiscriminatorUnit['optimizer']> = {};
    this.discriminators.forEach((d, k) => {
      const name = one ? 'D' : `D${k}`;
      modules[name] = d.module;
      optimizers[name] = d.optimizer;
    });
    return { modules, optimizers };
  }

  private layout(): (number[] | null)[] {
    return this.discriminators.map((d) => (d.channels ? [...d.channels] : null));
  }

  async saveState(): Promise<Uint8Array> {
    return saveTrainingStateBytes({
      ...this.named(),
      info: { steps: this.steps, discriminatorChannels: this.layout() },
    });
  }

  async loadState(bytes: Uint8Array): Promise<void> {
    const info = await loadTrainingStateBytes(bytes, this.named());
    const saved = info.discriminatorChannels;
    if (saved !== undefined && JSON.stringify(saved) !== JSON.stringify(this.layout())) {
      throw new Error(
        `discriminator checkpoint was written for channels ${JSON.stringify(saved)}, this node has ${JSON.stringify(this.layout())}`,
      );
    }
    this.steps = Number(info.steps ?? 0);
  }
}
