/**
 * Training scalars for machines: one JSON object per line (JSONL) appended to a file in the run
 * folder, e.g. {"step":120,"time":"2026-12-01T22:00:00.000Z","gL1":0.21,...}; optionally the same
 * scalars as TensorBoard events (tfevents.ts). Appending one line at a time keeps a crash from
 * losing more than the line being written; `jq`, pandas.read_json(lines=True) and spreadsheets read it.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { TensorBoardWriter } from './tfevents.js';

export class ScalarLog {
  private readonly tensorboard: TensorBoardWriter | undefined;
  /** @param path the JSONL file; @param tensorboardDir also write TensorBoard events there. */
  constructor(readonly path: string, tensorboardDir?: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.tensorboard = tensorboardDir ? new TensorBoardWriter(tensorboardDir) : undefined;
  }

  /** Where TensorBoard events go (undefined: not written). */
  get tensorboardPath(): string | undefined {
    return this.tensorboard?.path;
  }

  write(step: number, scalars: Record<string, number>, extra: Record<string, string | number> = {}): void {
    const now = Date.now();
    appendFileSync(this.path, JSON.stringify({ step, time: new Date(now).toISOString(), ...extra, ...scalars }) + '\n');
    this.tensorboard?.scalars(step, scalars, now);
  }
}

/** The conventional places in a run folder: OUT/scalars.jsonl and OUT/tensorboard/. */
export function runScalarLog(out: string, tensorboard: boolean, name = 'scalars'): ScalarLog {
  return new ScalarLog(join(out, `${name}.jsonl`), tensorboard ? join(out, 'tensorboard') : undefined);
}
