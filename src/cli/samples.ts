/** PNG sample sheets: one row per slice with its mask, then real and synthetic image per modality. */
import type { Slice } from '../data/index.js';
import { composeGrid, fromFloat, labelsToImage, saveImagePng, type RgbImage } from '../io/index.js';

export interface SampleRow {
  /** Row label, e.g. "node 1". */
  label: string;
  slice: Slice;
  /** Synthetic image [M*H*W] for the slice's mask. */
  fake: Float32Array;
}

export async function writeSampleGrid(path: string, rows: readonly SampleRow[], width: number, height: number, title: string): Promise<void> {
  const modalities = rows[0]?.slice.modalities ?? [];
  const plane = width * height;
  const tiles: RgbImage[] = [];
  for (const row of rows) {
    tiles.push(labelsToImage(row.slice.mask, width, height));
    modalities.forEach((_, m) => {
      tiles.push(fromFloat(row.slice.image.subarray(m * plane, (m + 1) * plane), width, height, '-1..1'));
      tiles.push(fromFloat(row.fake.subarray(m * plane, (m + 1) * plane), width, height, '-1..1'));
    });
  }
  const colLabels = ['mask', ...modalities.flatMap((m) => [`real ${m}`, `synthetic ${m}`])];
  const scale = width < 96 ? 2 : 1;
  await saveImagePng(
    path,
    composeGrid(tiles, { cols: colLabels.length, colLabels, rowLabels: rows.map((r) => r.label), title, scale }),
  );
}
