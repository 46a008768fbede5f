import t from 'tap';
import {
  blit,
  composeGrid,
  createImage,
  drawLine,
  drawText,
  fillRect,
  fitText,
  FONT_CHARS,
  fromFloat,
  getPixel,
  imageToPng,
  LABEL_PALETTE,
  labelColor,
  labelsToImage,
  measureText,
  upscaleNearest,
  type Rgb,
  type RgbImage,
} from '../src/io/image.js';
import { decodePng } from '../src/io/png.js';

/** Pixels as rows of '#' (not background) and '.' (background) for compact comparisons. */
function ascii(img: RgbImage, bg: Rgb = [255, 255, 255]): string[] {
  const rows: string[] = [];
  for (let y = 0; y < img.height; y++) {
    let r = '';
    for (let x = 0; x < img.width; x++) {
      const [a, b, c] = getPixel(img, x, y);
      r += a === bg[0] && b === bg[1] && c === bg[2] ? '.' : '#';
    }
    rows.push(r);
  }
  return rows;
}

function inkCount(img: RgbImage, x0 = 0, y0 = 0, x1 = img.width, y1 = img.height, bg: Rgb = [255, 255, 255]): number {
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const [a, b, c] = getPixel(img, x, y);
      if (a !== bg[0] || b !== bg[1] || c !== bg[2]) n++;
    }
  }
  return n;
}

t.test('fromFloat maps ranges, clamps, handles NaN and both layouts', async (t) => {
  const g = fromFloat([-1, 0, 1, 2, -3, NaN], 3, 2, '-1..1');
  t.same([...g.data].filter((_, i) => i % 3 === 0), [0, 128, 255, 255, 0, 0], 'gray values');
  t.same(getPixel(g, 1, 0), [128, 128, 128], 'gray is replicated to RGB');
  t.same([...fromFloat([0, 0.5, 1, 0.25], 2, 2, '0..1').data].filter((_, i) => i % 3 === 0), [0, 128, 255, 64]);
  // CHW: plane R = [1, 0], plane G = [0, 1], plane B = [0, 0] for a 2x1 image.
  const chw = fromFloat([1, 0, 0, 1, 0, 0], 2, 1, '0..1');
  t.same([getPixel(chw, 0, 0), getPixel(chw, 1, 0)], [[255, 0, 0], [0, 255, 0]]);
  const hwc = fromFloat([1, 0, 0, 0, 1, 0], 2, 1, '0..1', { layout: 'hwc' });
  t.same([getPixel(hwc, 0, 0), getPixel(hwc, 1, 0)], [[255, 0, 0], [0, 255, 0]]);
  const auto = fromFloat([10, 20, 30, 40], 4, 1, 'auto');
  t.same([...auto.data].filter((_, i) => i % 3 === 0), [0, 85, 170, 255]);
  t.same(getPixel(fromFloat([5, 5], 2, 1, 'auto'), 0, 0), [128, 128, 128], 'constant image is mid-gray');
  t.throws(() => fromFloat([1, 2, 3, 4, 5], 2, 2), /5 values do not make a 2x2 image/);
  t.throws(() => fromFloat([1, 2, 3, 4], 2, 2, '0..1', { channels: 3 }), /4 values do not make a 2x2 image with 3/);
});

t.test('label colours: background black, palette distinct, large labels stable', async (t) => {
  t.same(labelColor(0), [0, 0, 0]);
  const dist = (a: Rgb, b: Rgb): number => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
  let minD = Infinity;
  for (let i = 0; i < LABEL_PALETTE.length; i++) for (let j = i + 1; j < LABEL_PALETTE.length; j++) minD = Math.min(minD, dist(LABEL_PALETTE[i]!, LABEL_PALETTE[j]!));
  t.ok(minD > 50, `palette colours are well separated (min distance ${minD.toFixed(1)})`);
  for (let k = 21; k < 200; k++) {
    t.not(labelColor(k).join(), labelColor(k + 1).join(), `labels ${k} and ${k + 1} differ`);
    t.ok(labelColor(k).every((c) => Number.isInteger(c) && c >= 0 && c <= 255));
  }
  t.same(labelColor(4001), labelColor(4001), 'deterministic');
  const img = labelsToImage(Float32Array.of(0, 1, 2, 1.0000001), 2, 2);
  t.same([getPixel(img, 0, 0), getPixel(img, 1, 0), getPixel(img, 0, 1), getPixel(img, 1, 1)], [LABEL_PALETTE[0], LABEL_PALETTE[1], LABEL_PALETTE[2], LABEL_PALETTE[1]]);
  t.throws(() => labelsToImage([0, -1], 2, 1), /label -1 at pixel 1/);
  t.throws(() => labelsToImage([0, NaN], 2, 1), /label NaN/);
  t.throws(() => labelsToImage([0], 2, 1), /1 labels for a 2x1 image/);
});

t.test('upscaleNearest makes blocks', async (t) => {
  const img = createImage(2, 1, [0, 0, 0]);
  fillRect(img, 1, 0, 1, 1, [200, 100, 50]);
  const up = upscaleNearest(img, 3);
  t.same([up.width, up.height], [6, 3]);
  t.same(ascii(up, [0, 0, 0]), ['...###', '...###', '...###']);
  t.same(getPixel(up, 4, 2), [200, 100, 50]);
  t.throws(() => upscaleNearest(img, 1.5), /positive integer/);
});

t.test('the font covers the required characters with distinct glyphs', async (t) => {
  const required = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz .,:;!?-+=_/\\()[]%\'"#<>*';
  for (const ch of required) t.ok(FONT_CHARS.includes(ch), `glyph for ${JSON.stringify(ch)}`);
  // Render each glyph alone; no two may look the same (catches copy-paste mistakes in the table).
  const seen = new Map<string, string>();
  for (const ch of FONT_CHARS) {
    const img = createImage(12, 12);
    drawText(img, ch, 1, 1);
    const key = ascii(img).join('/');
    if (ch !== ' ') t.ok(inkCount(img) > 0, `${JSON.stringify(ch)} has ink`);
    t.notOk(seen.has(key), `${JSON.stringify(ch)} differs from ${JSON.stringify(seen.get(key))}`);
    seen.set(key, ch);
  }
});

t.test('drawText draws the glyph bitmaps exactly, scaled, aligned and rotated', async (t) => {
  const img = createImage(8, 9);
  drawText(img, 'T', 1, 1);
  t.same(ascii(img), [
    '........',
    '.#####..',
    '...#....',
    '...#....',
    '...#....',
    '...#....',
    '...#....',
    '...#....',
    '........',
  ]);
  const two = createImage(12, 16);
  drawText(two, 'L', 1, 1, { scale: 2, color: [255, 0, 0] });
  t.same(ascii(two).slice(1, 15), [...Array(12).fill('.##.........'), '.##########.', '.##########.']);
  t.same(getPixel(two, 1, 1), [255, 0, 0]);

  t.same(measureText('T', 1), { width: 5, height: 7 });
  t.same(measureText('Ti', 2), { width: (5 + 1 + 3) * 2, height: 14 }, 'proportional width plus 1 px spacing');
  t.same(measureText('', 1).width, 0);

  const r = createImage(20, 9);
  drawText(r, 'T', 19, 1, { align: 'right' });
  t.equal(ascii(r)[1], '..............#####.', 'right-aligned ends at x');
  const c = createImage(21, 9);
  drawText(c, 'T', 10.5, 1, { align: 'center' });
  t.equal(ascii(c)[1], '........#####........', 'centred on x');

  // Rotated 90 degrees counter-clockwise: the top bar of 'T' becomes a vertical bar on the left.
  const rot = createImage(9, 8);
  drawText(rot, 'T', 1, 6, { rotate: 90 });
  t.same(ascii(rot), ['.........', '.........', '.#.......', '.#.......', '.#######.', '.#.......', '.#.......', '.........']);

  // Unknown characters still take space and leave a mark.
  const u = createImage(10, 9);
  t.ok(drawText(u, '\u00e9', 1, 1) > 0);
  t.ok(inkCount(u) > 0);
});

t.test('fitText shortens with ..', async (t) => {
  t.equal(fitText('short', 100), 'short');
  const cut = fitText('a rather long caption', 40);
  t.ok(cut.endsWith('..'));
  t.ok(measureText(cut).width <= 40);
  t.equal(fitText('abc', 1), '');
});

t.test('drawLine: anti-aliased, clipped, right thickness', async (t) => {
  const img = createImage(20, 10);
  drawLine(img, 2, 5, 18, 5, [0, 0, 0], 2);
  // A 2-px horizontal line on the pixel boundary y=5 covers rows 4 and 5 fully.
  t.same(getPixel(img, 10, 4), [0, 0, 0]);
  t.same(getPixel(img, 10, 5), [0, 0, 0]);
  t.same(getPixel(img, 10, 2), [255, 255, 255]);
  t.same(getPixel(img, 10, 7), [255, 255, 255]);
  const diag = createImage(20, 20);
  drawLine(diag, 0, 0, 20, 20, [0, 0, 0], 1);
  const partial = [...diag.data].some((v) => v > 0 && v < 255);
  t.ok(partial, 'edges are blended');
  t.ok(getPixel(diag, 10, 10)[0] < 80, 'centre of the diagonal is dark');
  t.same(getPixel(diag, 18, 2), [255, 255, 255]);
  t.doesNotThrow(() => drawLine(diag, -50, -50, 100, 100, [0, 0, 0], 3), 'off-canvas coordinates are clipped');
});

t.test('blit copies with clipping', async (t) => {
  const dst = createImage(4, 3);
  const src = createImage(3, 2, [0, 0, 0]);
  blit(dst, src, 2, 2);
  t.same(ascii(dst), ['....', '....', '..##']);
  blit(dst, src, -2, -1);
  t.same(ascii(dst), ['#...', '....', '..##']);
});

t.test('composeGrid lays tiles out row-major with padding and captions', async (t) => {
  const colors: Rgb[] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10], [200, 200, 0]];
  const tiles = colors.map((c) => createImage(5, 4, c));
  const g = composeGrid(tiles, { cols: 3, padding: 2 });
  t.same([g.width, g.height], [2 + 3 * (5 + 2), 2 + 2 * (4 + 2)]);
  for (let i = 0; i < tiles.length; i++) {
    const x = 2 + (i % 3) * 7;
    const y = 2 + Math.floor(i / 3) * 6;
    t.same(getPixel(g, x, y), colors[i], `tile ${i} top-left`);
    t.same(getPixel(g, x + 4, y + 3), colors[i], `tile ${i} bottom-right`);
    t.same(getPixel(g, x + 5, y), [255, 255, 255], `padding right of tile ${i}`);
  }
  t.same(getPixel(g, 2 + 2 * 7 + 2, 2 + 6 + 1), [255, 255, 255], 'missing 6th tile is background');

  const scaled = composeGrid(tiles.slice(0, 2), { scale: 3, padding: 0 });
  t.same([scaled.width, scaled.height], [30, 12]);

  const titled = composeGrid(tiles.slice(0, 2), { titles: ['ab', 'cd'], padding: 2, title: 'Sheet', rowLabels: ['row'], colLabels: ['x', 'y'] });
  const plain = composeGrid(tiles.slice(0, 2), { padding: 2 });
  t.ok(titled.height > plain.height && titled.width > plain.width, 'text adds room');
  // The tiles sit below all the text: the last rows hold the tile colours.
  // (the captions are wider than the 5-pixel tiles, so the columns widen and the tiles sit centred in them)
  const lastRow = [...Array(titled.width).keys()].map((x) => getPixel(titled, x, titled.height - 3));
  t.ok(lastRow.some((p) => p[0] === colors[1]![0] && p[1] === colors[1]![1] && p[2] === colors[1]![2]), 'tile 1 in the bottom rows');
  t.ok(inkCount(titled, 0, 0, titled.width, titled.height - 2 - 4) > 40, 'text was drawn above the tiles');

  t.throws(() => composeGrid([createImage(2, 2), createImage(3, 2)]), /tile 1 is 3x2, tile 0 is 2x2/);
  t.throws(() => composeGrid([]), /no tiles/);
});

t.test('imageToPng round-trips through the PNG decoder', async (t) => {
  const img = fromFloat(Float32Array.from({ length: 3 * 6 * 5 }, (_, i) => Math.sin(i)), 6, 5, '-1..1');
  const back = decodePng(imageToPng(img));
  t.same([back.width, back.height, back.channels], [6, 5, 3]);
  t.ok(Buffer.from(back.data).equals(Buffer.from(img.data)));
});
