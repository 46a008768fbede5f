/**
 * The honest-but-curious server's recorder: wraps the real generator backend, changes nothing it
 * does, and keeps, per mask (mapped to its key by content, from the uploaded masks), every fake
 * sent and every gradient that came back. That is exactly what a server running the normal
 * protocol sees (gradients after the server's own positive weighting, which keeps their signs).
 */
import type { GeneratorBackend, GeneratorBatch, GeneratorStep } from '../net/backend.js';
import { maskDigest } from './bisection-generator.js';

export interface LoggedKey {
  fakes: Float32Array[];
  grads: Float32Array[];
}

export class LoggingGenerator implements GeneratorBackend {
  readonly log = new Map<string, LoggedKey>();
  private readonly sent = new WeakMap<GeneratorBatch, { keys: (string | undefined)[]; fakes: Float32Array }>();
  private byDigest = new Map<string, string>();

  constructor(
    private readonly inner: GeneratorBackend,
    private readonly imageValues: number,
    /** Every uploaded mask by key (all nodes; keys are unique across the data set). */
    private readonly uploadedMasks: () => Iterable<[string, Float32Array]>,
  ) {}

  private keyOf(mask: Float32Array): string | undefined {
    const d = maskDigest(mask);
    if (!this.byDigest.has(d)) this.byDigest = new Map([...this.uploadedMasks()].map(([k, m]) => [maskDigest(m), k]));
    return this.byDigest.get(d);
  }

  async generate(batch: GeneratorBatch): Promise<Float32Array> {
    const fakes = await this.inner.generate(batch);
    const [n, mc, h, w] = batch.shape;
    const keys = [...Array(n).keys()].map((i) => this.keyOf(batch.masks.subarray(i * mc * h * w, (i + 1) * mc * h * w)));
    this.sent.set(batch, { keys, fakes: Float32Array.from(fakes) });
    return fakes;
  }

  async applyGradients(steps: readonly GeneratorStep[]): Promise<void> {
    const m = this.imageValues;
    for (const step of steps) {
      const s = this.sent.get(step.batch);
      if (!s) continue;
      s.keys.forEach((key, i) => {
        if (key === undefined) return;
        const g = step.gradFakes.subarray(i * m, (i + 1) * m);
        if (g.every((x) => x === 0)) return; // this node did not answer
        let e = this.log.get(key);
        if (!e) this.log.set(key, (e = { fakes: [], grads: [] }));
        e.fakes.push(s.fakes.slice(i * m, (i + 1) * m));
        e.grads.push(Float32Array.from(g));
      });
    }
    await this.inner.applyGradients(steps);
  }

  saveState(): Promise<Uint8Array> {
    return this.inner.saveState();
  }
  loadState(bytes: Uint8Array): Promise<void> {
    return this.inner.loadState(bytes);
  }
}
