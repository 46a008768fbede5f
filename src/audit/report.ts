/** Audit outputs: the JSON report and a PNG grid of real | reconstruction | legitimate baseline. */
import { composeGrid, fromFloat, saveImagePng, writeJsonAtomic, type RgbImage } from '../io/index.js';

export interface GridRow {
  label: string;
  real: Float32Array;
  estimate: Float32Array;
  baseline: Float32Array;
}

/** One row per image; per modality three tiles: real, the attack's reconstruction, the baseline. */
export async function writeAuditGrid(path: string, rows: readonly GridRow[], modalities: readonly string[], size: number, title: string, baselineName: string): Promise<void> {
  const plane = size * size;
  const tiles: RgbImage[] = [];
  for (const r of rows) {
    modalities.forEach((_, m) => {
      for (const im of [r.real, r.estimate, r.baseline]) tiles.push(fromFloat(im.subarray(m * plane, (m + 1) * plane), size, size, '-1..1'));
    });
  }
  const colLabels = modalities.flatMap((m) => [`real ${m}`, `attack ${m}`, `${baselineName} ${m}`]);
  await saveImagePng(path, composeGrid(tiles, { cols: colLabels.length, colLabels, rowLabels: rows.map((r) => r.label), title, scale: size < 96 ? 2 : 1 }));
}

export async function writeAuditJson(path: string, report: unknown): Promise<void> {
  await writeJsonAtomic(path, report);
}
