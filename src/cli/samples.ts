/**
 * PNG sample sheets, with a colour legend for the mask classes:
 * - writeSampleGrid: one row per slice with its mask, then real and synthetic image per modality
 *   (for whoever holds the real images: `train`, the loopback demo);
 * - writeSyntheticGrid: masks and synthetic images only (the federation's server, which never
 *   sees a real image).
 */
import type { Slice } from '../data/index.js';
import { composeGrid, fromFloat, labelColor, labelsToImage, saveImagePng, type LegendEntry, type RgbImage } from '../io/index.js';

export interface SampleRow {
  /** Row label, e.g. "node 1". */
  label: string;
  slice: Slice;
  /** Synthetic image [M*H*W] for the slice's mask. */
  fake: Float32Array;
}

/** A row without real images: a label map [H*W] and the synthetic image [M*H*W] made from it. */
export interface SyntheticRow {
  label: string;
  mask: ArrayLike<number>;
  fake: Float32Array;
}

export async function writeSampleGrid(path: string, rows: readonly SampleRow[], width: number, height: number, title: string, classNames?: readonly string[]): Promise<void> {
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
  const legend = classLegend(rows.map((r) => r.slice.mask), classNames);
  await saveImagePng(path, composeGrid(tiles, { cols: colLabels.length, colLabels, rowLabels: rows.map((r) => r.label), title, scale: width < 96 ? 2 : 1, legend }));
}

export async function writeSyntheticGrid(
  path: string, rows: readonly SyntheticRow[], modalities: readonly string[], width: number, height: number, title: string, classNames?: readonly string[],
): Promise<void> {
  const plane = width * height;
  const tiles: RgbImage[] = [];
  for (const row of rows) {
    tiles.push(labelsToImage(row.mask, width, height));
    modalities.forEach((_, m) => tiles.push(fromFloat(row.fake.subarray(m * plane, (m + 1) * plane), width, height, '-1..1')));
  }
  const colLabels = ['mask', ...modalities.map((m) => `synthetic ${m}`)];
  const legend = classLegend(rows.map((r) => r.mask), classNames);
  await saveImagePng(path, composeGrid(tiles, { cols: colLabels.length, colLabels, rowLabels: rows.map((r) => r.label), title, scale: width < 96 ? 2 : 1, legend }));
}

/** One legend entry per class that appears in the masks: its colour and its name (or "class k"). */
export function classLegend(masks: readonly ArrayLike<number>[], classNames?: readonly string[]): LegendEntry[] {
  const present = new Set<number>();
  for (const m of masks) for (let p = 0; p < m.length; p++) present.add(Math.round(m[p]!));
  return [...present].sort((a, b) => a - b).map((k) => ({ label: classNames?.[k] ?? `class ${k}`, color: labelColor(k) }));
}
