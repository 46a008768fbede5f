/**
 * Small pure-TypeScript backends that do real arithmetic, for network tests.
 *  - LinearGenerator: fake = a * mask + b per pixel (1 mask channel -> 1 image channel),
 *    learnable scalars a, b trained with Adam on the gradient the server combines.
 *  - LogisticDiscriminator: D(x) = w * mean(x) + c with BCE-with-logits, one SGD step per round,
 *    then returns d(gGan + lambda * L1)/d(fakes) against its private real images.
 * Real images are `A * mask + B + noise`, so the generator should converge to a = A, b = B.
 */
import { encodeFrame, decodeFrame } from '../../src/net/codec.js';
import type {
  DiscriminatorBackend, DiscriminatorInput, DiscriminatorOutput, GeneratorBackend, GeneratorBatch, GeneratorStep,
} from '../../src/net/backend.js';
import { applyAugmentation } from '../../src/net/augment.js';
import type { SessionConfig } from '../../src/net/protocol.js';
import { Rng } from '../../src/net/sampling.js';

export const TARGET_A = 0.7;
export const TARGET_B = 0.2;

export class LinearGenerator implements GeneratorBackend {
  a = 0;
  b = 0;
  private m = [0, 0];
  private v = [0, 0];
  private t = 0;
  generateCalls = 0;
  steps = 0;
  /** Every batch of every applyGradients call, for assertions on weighting. */
  readonly applied: GeneratorStep[][] = [];
  constructor(readonly lr = 0.03, readonly delayMs = 0) {}

  async generate(batch: GeneratorBatch): Promise<Float32Array> {
    this.generateCalls++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const out = new Float32Array(batch.masks.length);
    for (let i = 0; i < out.length; i++) out[i] = this.a * batch.masks[i]! + this.b;
    return out;
  }

  async applyGradients(steps: readonly GeneratorStep[]): Promise<void> {
    let ga = 0;
    let gb = 0;
    for (const s of steps) {
      // The linear map is its own recompute: d fake/d a = mask, d fake/d b = 1.
      for (let i = 0; i < s.gradFakes.length; i++) {
        ga += s.gradFakes[i]! * s.batch.masks[i]!;
        gb += s.gradFakes[i]!;
      }
    }
    this.applied.push([...steps]);
    this.t++;
    const g = [ga, gb];
    const b1 = 0.5;
    const b2 = 0.999;
    const p = [this.a, this.b];
    for (let k = 0; k < 2; k++) {
      this.m[k] = b1 * this.m[k]! + (1 - b1) * g[k]!;
      this.v[k] = b2 * this.v[k]! + (1 - b2) * g[k]! * g[k]!;
      const mh = this.m[k]! / (1 - b1 ** this.t);
      const vh = this.v[k]! / (1 - b2 ** this.t);
      p[k] = p[k]! - (this.lr * mh) / (Math.sqrt(vh) + 1e-8);
    }
    this.a = p[0]!;
    this.b = p[1]!;
    this.steps++;
  }

  async saveState(): Promise<Uint8Array> {
    return encodeFrame({ a: this.a, b: this.b, m: this.m, v: this.v, t: this.t, steps: this.steps });
  }

  async loadState(bytes: Uint8Array): Promise<void> {
    const s = decodeFrame(bytes, 1 << 20) as { a: number; b: number; m: number[]; v: number[]; t: number; steps: number };
    this.a = s.a;
    this.b = s.b;
    this.m = [...s.m];
    this.v = [...s.v];
    this.t = s.t;
    this.steps = s.steps;
  }
}

/** A node's private dataset: binary masks and real images A*mask+B+noise, [n, 1, H, W]. */
export interface NodeData {
  keys: string[];
  masks: Float32Array;
  reals: Float32Array;
  shape: [number, number, number, number];
}

export function makeNodeData(nodeId: string, n: number, h: number, w: number, seed: number, density = 0.5): NodeData {
  const rng = new Rng(seed);
  const per = h * w;
  const masks = new Float32Array(n * per);
  const reals = new Float32Array(n * per);
  for (let i = 0; i < masks.length; i++) {
    masks[i] = rng.next() < density ? 1 : 0;
    // Unique, non-round values so their bytes are recognizable in any frame.
    reals[i] = TARGET_A * masks[i]! + TARGET_B + (rng.next() - 0.5) * 0.02;
  }
  return { keys: Array.from({ length: n }, (_, i) => `${nodeId}-${i}`), masks, reals, shape: [n, 1, h, w] };
}

export interface DiscriminatorHooks {
  /** Return NaN gradients for this round. */
  nanAtRound?: (round: number) => boolean;
  /** Sleep this long in every step (ms). */
  delayMs?: number | ((round: number) => number);
}

export class LogisticDiscriminator implements DiscriminatorBackend {
  w = 0.1;
  c = 0;
  steps = 0;
  lambda = 100;
  rounds: number[] = [];
  private readonly realByKey = new Map<string, Float32Array>();
  constructor(readonly data: NodeData, readonly hooks: DiscriminatorHooks = {}, readonly lr = 0.1) {
    const per = data.shape[1] * data.shape[2] * data.shape[3];
    data.keys.forEach((k, i) => this.realByKey.set(k, data.reals.slice(i * per, (i + 1) * per)));
  }

  configure(cfg: SessionConfig): void {
    this.lambda = cfg.lambdaL1;
  }

  async step(input: DiscriminatorInput): Promise<DiscriminatorOutput> {
    const d = typeof this.hooks.delayMs === 'function' ? this.hooks.delayMs(input.round) : this.hooks.delayMs ?? 0;
    if (d > 0) await new Promise((r) => setTimeout(r, d));
    const [n, ch, h, w] = input.fakeShape;
    const per = ch * h * w;
    const realsRaw = new Float32Array(n * per);
    input.keys.forEach((k, i) => realsRaw.set(this.realByKey.get(k)!, i * per));
    const reals = applyAugmentation(realsRaw, input.fakeShape, input.aug);
    const mean = (x: Float32Array, i: number): number => {
      let s = 0;
      for (let j = 0; j < per; j++) s += x[i * per + j]!;
      return s / per;
    };
    const sig = (z: number): number => 1 / (1 + Math.exp(-z));
    const bce = (z: number, y: number): number => Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));
    // D step on real (1) vs fake (0).
    let dReal = 0;
    let dFake = 0;
    let gw = 0;
    let gc = 0;
    for (let i = 0; i < n; i++) {
      const fr = mean(reals, i);
      const ff = mean(input.fakes, i);
      const zr = this.w * fr + this.c;
      const zf = this.w * ff + this.c;
      dReal += bce(zr, 1) / n;
      dFake += bce(zf, 0) / n;
      gw += ((sig(zr) - 1) * fr + sig(zf) * ff) / n;
      gc += (sig(zr) - 1 + sig(zf)) / n;
    }
    this.w -= this.lr * gw;
    this.c -= this.lr * gc;
    // Generator loss gradient w.r.t. fakes: GAN (label 1) + lambda * mean L1.
    const grad = new Float32Array(n * per);
    let gGan = 0;
    let gL1 = 0;
    for (let i = 0; i < n; i++) {
      const zf = this.w * mean(input.fakes, i) + this.c;
      gGan += bce(zf, 1) / n;
      const ganPix = ((sig(zf) - 1) * this.w) / per / n;
      for (let j = 0; j < per; j++) {
        const diff = input.fakes[i * per + j]! - reals[i * per + j]!;
        gL1 += Math.abs(diff) / (n * per);
        grad[i * per + j] = ganPix + (this.lambda * Math.sign(diff)) / (n * per);
      }
    }
    if (this.hooks.nanAtRound?.(input.round)) grad[0] = NaN;
    this.steps++;
    this.rounds.push(input.round);
    return { gradFakes: grad, losses: { dReal, dFake, gGan, gL1 } };
  }

  async saveState(): Promise<Uint8Array> {
    return encodeFrame({ w: this.w, c: this.c, steps: this.steps });
  }

  async loadState(bytes: Uint8Array): Promise<void> {
    const s = decodeFrame(bytes, 1 << 20) as { w: number; c: number; steps: number };
    this.w = s.w;
    this.c = s.c;
    this.steps = s.steps;
  }
}
