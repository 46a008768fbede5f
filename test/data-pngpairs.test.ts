import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePng } from '../src/io/png.js';
import { loadPngPairs } from '../src/data/pngpairs.js';
import { validateDataset } from '../src/data/sample.js';

type Ch = 1 | 3 | 4;

function png(w: number, h: number, channels: Ch, f: (x: number, y: number, c: number) => number): Buffer {
  const data = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < channels; c++) data[(y * w + x) * channels + c] = f(x, y, c);
  return encodePng({ width: w, height: h, channels, data });
}

function dirs(root: string): { imagesDir: string; labelsDir: string } {
  const imagesDir = join(root, 'images');
  const labelsDir = join(root, 'labels');
  mkdirSync(imagesDir, { recursive: true });
  mkdirSync(labelsDir, { recursive: true });
  return { imagesDir, labelsDir };
}

t.test('grayscale images with binary 0/255 masks', async (t) => {
  const d = dirs(t.testdir({}));
  for (const name of ['b.png', 'a.png']) {
    writeFileSync(join(d.imagesDir, name), png(8, 6, 1, (x, y) => x * 30 + y));
    writeFileSync(join(d.labelsDir, name), png(8, 6, 1, (x) => (x >= 4 ? 255 : 0)));
  }
  writeFileSync(join(d.imagesDir, 'notes.txt'), 'ignored');
  const ds = await loadPngPairs({ ...d, labelValues: [0, 255], classNames: ['bg', 'fg'] });
  validateDataset(ds);
  t.same(ds.slices.map((s) => s.key), ['a', 'b'], 'sorted by name, extension dropped');
  t.same([ds.height, ds.width, ds.numClasses], [6, 8, 2]);
  t.same(ds.modalities, ['gray']);
  const s = ds.slices[0]!;
  t.equal(s.mask[2 * 8 + 3], 0);
  t.equal(s.mask[2 * 8 + 4], 1);
  t.ok(Math.abs(s.image[2 * 8 + 5]! - ((5 * 30 + 2) / 127.5 - 1)) < 1e-6, 'image value v -> v/127.5 - 1');
  await t.rejects(loadPngPairs(d), { message: /labels\/a\.png has label value 255; pass labelValues \(e\.g\. \[0, 255\] for binary masks\)/ });
  await t.rejects(loadPngPairs({ ...d, numClasses: 100 }), { message: /label 255 found but numClasses is 100/ });
});

t.test('RGB images (channel-major) with RGB colour label maps; RGBA alpha dropped', async (t) => {
  const d = dirs(t.testdir({}));
  writeFileSync(join(d.imagesDir, 'x.png'), png(5, 4, 4, (x, y, c) => (c === 3 ? 128 : 10 * c + x + 5 * y)));
  const colours: Array<[number, number, number]> = [
    [0, 0, 0],
    [255, 0, 0],
    [0, 255, 0],
  ];
  writeFileSync(join(d.labelsDir, 'x.png'), png(5, 4, 3, (x, _y, c) => colours[x % 3]![c]!));
  const ds = await loadPngPairs({ ...d, labelColors: colours });
  t.same(ds.modalities, ['r', 'g', 'b']);
  t.equal(ds.numClasses, 3);
  const s = ds.slices[0]!;
  const HW = 20;
  const i = 2 * 5 + 3; // (x 3, y 2)
  t.same([0, 1, 2].map((c) => Math.round((s.image[c * HW + i]! + 1) * 127.5)), [13, 23, 33]);
  t.same(Array.from(s.mask.subarray(0, 5)), [0, 1, 2, 0, 1]);
  // A colour not in the table names the file.
  writeFileSync(join(d.labelsDir, 'x.png'), png(5, 4, 3, (x, _y, c) => (x === 4 && c === 2 ? 7 : colours[0]![c]!)));
  await t.rejects(loadPngPairs({ ...d, labelColors: colours }), { message: /labels\/x\.png: colour \(0, 0, 7\) at pixel \(4, 0\) is not in labelColors/ });
  await t.rejects(loadPngPairs(d), { message: /labels\/x\.png: colour label map .* pass labelColors/ });
});

t.test('sizes: per-pair mismatch is an error, different pairs need `size`', async (t) => {
  const d = dirs(t.testdir({}));
  writeFileSync(join(d.imagesDir, 'p.png'), png(8, 8, 1, () => 0));
  writeFileSync(join(d.labelsDir, 'p.png'), png(8, 7, 1, () => 0));
  await t.rejects(loadPngPairs(d), { message: /size mismatch: .*images\/p\.png is 8x8 but .*labels\/p\.png is 8x7/ });

  writeFileSync(join(d.labelsDir, 'p.png'), png(8, 8, 1, (x) => (x < 4 ? 0 : 1)));
  writeFileSync(join(d.imagesDir, 'q.png'), png(16, 16, 1, () => 255));
  writeFileSync(join(d.labelsDir, 'q.png'), png(16, 16, 1, (x) => (x < 8 ? 0 : 2)));
  await t.rejects(loadPngPairs(d), { message: /images\/q\.png is 16x16 but .*images\/p\.png is 8x8; pass `size`/ });
  const ds = await loadPngPairs({ ...d, size: 8 });
  t.same([ds.height, ds.width, ds.numClasses], [8, 8, 3]);
  const q = ds.slices[1]!;
  t.same(Array.from(q.mask.subarray(0, 8)), [0, 0, 0, 0, 2, 2, 2, 2], 'nearest keeps the label boundary in place');
  t.ok(q.image.every((v) => v === 1), 'white stays white');
});

t.test('missing partners, unknown labels and mixed channel counts name the files', async (t) => {
  const d = dirs(t.testdir({}));
  writeFileSync(join(d.imagesDir, 'a.png'), png(4, 4, 1, () => 0));
  writeFileSync(join(d.labelsDir, 'a.png'), png(4, 4, 1, () => 1));
  writeFileSync(join(d.imagesDir, 'b.png'), png(4, 4, 1, () => 0));
  await t.rejects(loadPngPairs(d), { message: /images\/b\.png has no label map .*labels\/b\.png/ });
  writeFileSync(join(d.labelsDir, 'b.png'), png(4, 4, 1, () => 0));
  writeFileSync(join(d.labelsDir, 'c.png'), png(4, 4, 1, () => 0));
  await t.rejects(loadPngPairs(d), { message: /labels\/c\.png has no image .*images\/c\.png/ });
  writeFileSync(join(d.imagesDir, 'c.png'), png(4, 4, 3, () => 9));
  await t.rejects(loadPngPairs(d), { message: /images\/c\.png has 3 colour channel\(s\) but .*images\/a\.png has 1/ });
  writeFileSync(join(d.imagesDir, 'c.png'), png(4, 4, 1, () => 9));
  await t.rejects(loadPngPairs({ ...d, labelValues: [0, 255] }), { message: /labels\/a\.png: label value 1 at pixel \(0, 0\) is not in labelValues \[0,255\]/ });
  const ok = await loadPngPairs(d);
  t.equal(ok.slices.length, 3);
  t.equal(ok.numClasses, 2);
  writeFileSync(join(d.labelsDir, 'c.png'), Buffer.from('not a png'));
  await t.rejects(loadPngPairs(d), { message: /labels\/c\.png/ });
  await t.rejects(loadPngPairs({ imagesDir: join(d.imagesDir, 'nope'), labelsDir: d.labelsDir }), { message: /cannot list images folder .*nope/ });
});
