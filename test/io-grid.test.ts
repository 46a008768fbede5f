// Grid text is never cut off: column labels and captions wrap at spaces, a column widens for a word
// wider than its tile, and every label's ink equals that of its words drawn alone (a label shortened
// with '..', as 'synthetic t..' was, fails this). The colour legend draws one swatch per class.
import t from 'tap';
import { composeGrid, createImage, drawText, getPixel, labelColor, measureText, wrapText, widestWord, type RgbImage } from '../src/io/index.js';

function ink(img: RgbImage, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = Math.max(0, y0); y < Math.min(img.height, y1); y++) {
    for (let x = Math.max(0, x0); x < Math.min(img.width, x1); x++) {
      const [r, g, b] = getPixel(img, x, y);
      if (r < 128 && g < 128 && b < 128) n++;
    }
  }
  return n;
}
/** Ink of `text`'s words, each drawn alone (spaces carry none). */
function wordInk(text: string): number {
  return text.split(' ').reduce((sum, w) => {
    const img = createImage(measureText(w).width + 2, 12);
    drawText(img, w, 1, 1);
    return sum + ink(img, 0, 0, img.width, img.height);
  }, 0);
}

t.test('wrapText breaks at spaces within the width; a long word keeps its own line', async (t) => {
  const w = measureText('synthetic').width;
  t.same(wrapText('synthetic t1c', w), ['synthetic', 't1c']);
  t.same(wrapText('held-out masks', 5), ['held-out', 'masks']);
  t.same(wrapText('a b c', 1000), ['a b c']);
  t.equal(widestWord('held-out masks'), measureText('held-out').width);
});

t.test('column labels on 32-pixel tiles: drawn in full, columns no narrower than the widest word', async (t) => {
  const labels = ['mask', 'real t1c', 'synthetic t1c', 'held-out masks'];
  const tiles = labels.map(() => createImage(32, 32, [40, 160, 220])); // blue: no ink
  const pad = 4;
  const g = composeGrid(tiles, { cols: labels.length, colLabels: labels, padding: pad });
  const cw = Math.max(32, ...labels.map((l) => widestWord(l)));
  t.equal(g.width, pad + labels.length * (cw + pad), 'every column as wide as the widest word ("synthetic", "held-out")');
  t.ok(cw > 32, `the tiles alone (32 px) would cut "synthetic" (${measureText('synthetic').width} px)`);
  const labelBand = g.height - pad - 32;
  labels.forEach((l, c) => {
    const x = pad + c * (cw + pad);
    t.equal(ink(g, x, 0, x + cw, labelBand), wordInk(l), `"${l}" drawn whole`);
  });
  t.notMatch(wrapText('synthetic t1c', cw).join(' '), /\.\./);
});

t.test('a legend: one swatch per class in its colour, with its name', async (t) => {
  const names = ['background', 'white matter', 'grey matter', 'csf', 'tumour core', 'edema'];
  const tiles = [createImage(16, 16, [255, 255, 255])];
  const legend = names.map((label, k) => ({ label, color: labelColor(k) }));
  const g = composeGrid(tiles, { legend, padding: 4 });
  const without = composeGrid(tiles, { padding: 4 });
  t.ok(g.height > without.height, 'the legend adds rows under the grid');
  t.ok(g.width >= Math.max(...names.map((n) => measureText(n).width)), 'the widest entry fits');
  const all = [...Array(g.height - without.height).keys()].flatMap((dy) => [...Array(g.width).keys()].map((x) => getPixel(g, x, without.height + dy).join(',')));
  for (const [k, n] of names.entries()) t.ok(all.includes(labelColor(k).join(',')), `swatch for ${n}`);
  // The names' ink, plus the black background swatch's inside (5x5 within its grey border).
  t.equal(ink(g, 0, without.height, g.width, g.height), names.reduce((s, n) => s + wordInk(n), 0) + 25, 'every name drawn whole');
});
