/**
 * What `asyndgan server` shows while it trains: every K rounds OUT/samples/round-NNNNNN.png (the
 * generator on masks the nodes uploaded: mask and synthetic images, never a real one, since the
 * server has none) and OUT/losses.png from its round losses; at the end OUT/samples.png too. All
 * written atomically, one picture at a time; a picture still being written when the next is due
 * is skipped rather than queued.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { noGrad, tensor, tidy } from '../engine/index.js';
import { lineChartPng, writeFileAtomic } from '../io/index.js';
import type { ResnetGenerator } from '../models/index.js';
import type { NodeRegistry } from '../net/index.js';
import { writeSyntheticGrid, type SyntheticRow } from './samples.js';

export interface ServerPicturesOptions {
  out: string;
  generator: ResnetGenerator;
  registry: NodeRegistry;
  modalities: readonly string[];
  classes: number;
  size: number;
  classNames?: readonly string[];
  /** Masks shown per node (default 2), nodes shown at most (default 4). */
  perNode?: number;
  maxNodes?: number;
}

/** One round's losses as the server logs them. */
export interface LossPoint {
  round: number;
  gL1: number;
  gGan: number;
  dReal: number;
  dFake: number;
}

export class ServerPictures {
  private busy: Promise<void> | undefined;

  constructor(private readonly o: ServerPicturesOptions) {}

  /** Start writing the round's pictures unless some are still being written; errors are reported, not thrown. */
  schedule(round: number, history: readonly LossPoint[], onError: (e: Error) => void): void {
    if (this.busy) return;
    this.busy = this.write(round, history, join(this.o.out, 'samples', `round-${String(round).padStart(6, '0')}.png`))
      .then(() => {}, onError)
      .finally(() => (this.busy = undefined));
  }

  /** The end of the run: wait for pictures in progress, then OUT/samples.png and OUT/losses.png. Returns the sample path, or undefined when no node uploaded masks. */
  async final(round: number, history: readonly LossPoint[]): Promise<string | undefined> {
    await this.busy;
    const path = join(this.o.out, 'samples.png');
    return (await this.write(round, history, path)) ? path : undefined;
  }

  /** false: no masks held yet (only the loss chart was written). */
  private async write(round: number, history: readonly LossPoint[], samplePath: string): Promise<boolean> {
    if (history.length > 0) await writeFileAtomic(join(this.o.out, 'losses.png'), lossChart(history));
    const picked = this.pickMasks();
    if (picked.length === 0) return false;
    const { size, classes, generator: g } = this.o;
    const per = classes * size * size;
    const batch = new Float32Array(picked.length * per);
    picked.forEach((p, i) => batch.set(p.mask, i * per));
    // Evaluation mode (running statistics, no dropout) only while the forward graph is recorded:
    // this is synchronous, so no training round runs in between and sees the other mode.
    const wasTraining = g.training;
    g.eval();
    let fake;
    try {
      fake = noGrad(() => tidy(() => g.forward(tensor(batch, [picked.length, classes, size, size]))));
    } finally {
      g.train(wasTraining);
    }
    const values = await fake.read();
    fake.dispose();
    const plane = this.o.modalities.length * size * size;
    mkdirSync(dirname(samplePath), { recursive: true });
    const rows: SyntheticRow[] = picked.map((p, i) => ({ label: p.label, mask: labelMap(p.mask, classes, size * size), fake: values.subarray(i * plane, (i + 1) * plane) }));
    await writeSyntheticGrid(samplePath, rows, this.o.modalities, size, size, `server, round ${round}: masks the nodes uploaded, synthetic images`, this.o.classNames);
    return true;
  }

  /** The first masks of each node, in the registry's order. */
  private pickMasks(): { label: string; mask: Float32Array }[] {
    const perNode = this.o.perNode ?? 2;
    const picked: { label: string; mask: Float32Array }[] = [];
    for (const rec of this.o.registry.all().slice(0, this.o.maxNodes ?? 4)) {
      for (const m of [...rec.masks.values()].slice(0, perNode)) picked.push({ label: rec.id, mask: m });
    }
    return picked;
  }
}

/** One-hot (or, with one channel, binary) mask [C*P] to a label map [P]: the channel that is set. */
export function labelMap(mask: Float32Array, classes: number, pixels: number): Uint8Array {
  const out = new Uint8Array(pixels);
  for (let p = 0; p < pixels; p++) {
    if (classes === 1) {
      out[p] = mask[p]! > 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let c = 1; c < classes; c++) if (mask[c * pixels + p]! > mask[best * pixels + p]!) best = c;
    out[p] = best;
  }
  return out;
}

function lossChart(h: readonly LossPoint[]): Buffer {
  const x = h.map((p) => p.round);
  // Nodes whose privacy settings withhold their losses (the default preset does) report zeros.
  const withheld = h.every((p) => p.gL1 === 0 && p.gGan === 0 && p.dReal === 0 && p.dFake === 0);
  return lineChartPng({
    title: withheld ? 'server: round losses (withheld by the nodes: 0)' : 'server: round losses',
    xLabel: 'round',
    series: [
      { name: 'G L1', x, y: h.map((p) => p.gL1) },
      { name: 'G GAN', x, y: h.map((p) => p.gGan) },
      { name: 'D', x, y: h.map((p) => (p.dReal + p.dFake) / 2) },
    ],
  });
}
