import t from 'tap';
import {
  augmentMatrix,
  augmentSlice,
  identityAugment,
  sampleAugmentParams,
  validateAugmentParams,
  warpImage,
  warpImageBackward,
  warpLabels,
  type AugmentParams,
} from '../src/data/augment.js';
import { cropOrPad } from '../src/data/slices.js';
import { Rng } from '../src/engine/index.js';
import { makePhantom } from '../src/data/phantom.js';

const H = 24;
const W = 32;
const rnd = new Rng(42);
const mask = Uint8Array.from({ length: H * W }, () => rnd.int(5));
const image = Float32Array.from({ length: 2 * H * W }, () => rnd.uniform(-1, 1));
const at = (a: ArrayLike<number>, c: number, y: number, x: number, h = H, w = W) => a[c * h * w + y * w + x]!;

t.test('same seed -> same params; same params -> same bytes (also after JSON)', async (t) => {
  const cfg = { flipV: 0.5, crop: { height: 20, width: 28 } };
  const p1 = sampleAugmentParams(new Rng(9), H, W, cfg);
  const p2 = sampleAugmentParams(new Rng(9), H, W, cfg);
  t.same(p1, p2);
  t.notSame(sampleAugmentParams(new Rng(10), H, W, cfg), p1, 'another seed differs');
  const wire = JSON.parse(JSON.stringify(p1)) as AugmentParams;
  const a = warpImage(image, 2, p1);
  t.same(Buffer.from(warpImage(image, 2, p1).buffer), Buffer.from(a.buffer), 'twice identical');
  t.same(Buffer.from(warpImage(image, 2, wire).buffer), Buffer.from(a.buffer), 'identical after JSON round trip');
  t.same(Buffer.from(warpLabels(mask, wire)), Buffer.from(warpLabels(mask, p1)));
  t.equal(a.length, 2 * 20 * 28);
  // Fixed consumption: different configs leave the stream at the same place.
  const r1 = new Rng(5);
  const r2 = new Rng(5);
  sampleAugmentParams(r1, H, W, {});
  sampleAugmentParams(r2, H, W, { flipH: 0, maxRotationDeg: 30, crop: { height: 3, width: 3 } });
  t.equal(r1.state, r2.state);
});

t.test('identity and flips are exact permutations, for labels and images', async (t) => {
  const id = identityAugment(H, W);
  t.same(Buffer.from(warpLabels(mask, id)), Buffer.from(mask));
  t.same(Array.from(warpImage(image, 2, id)), Array.from(image));
  for (const [flipH, flipV] of [
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    const p = { ...id, flipH, flipV };
    const m = warpLabels(mask, p);
    const im = warpImage(image, 2, p);
    let bad = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const sy = flipV ? H - 1 - y : y;
        const sx = flipH ? W - 1 - x : x;
        if (m[y * W + x] !== mask[sy * W + sx]) bad++;
        for (let c = 0; c < 2; c++) if (at(im, c, y, x) !== at(image, c, sy, sx)) bad++;
      }
    t.equal(bad, 0, `flipH=${flipH} flipV=${flipV} exact`);
    t.same(Buffer.from(warpLabels(m, p)), Buffer.from(mask), 'flipping twice restores');
  }
});

t.test('integer translation and 90-degree rotation move pixels where expected', async (t) => {
  const p = { ...identityAugment(H, W), translateX: 3, translateY: -2 };
  const m = warpLabels(mask, p);
  const im = warpImage(image, 2, p);
  t.equal(m[5 * W + 10], mask[7 * W + 7]);
  t.equal(at(im, 1, 5, 10), at(image, 1, 7, 7));
  t.equal(m[5 * W + 1], 0, 'uncovered pixels get label 0');
  t.equal(at(im, 0, H - 1, 10), -1, 'uncovered pixels get -1');

  const N = 16;
  const sq = Float32Array.from({ length: N * N }, (_, i) => Math.sin(i));
  const sqm = Uint8Array.from({ length: N * N }, (_, i) => i % 251);
  const r = { ...identityAugment(N, N), rotation: Math.PI / 2 };
  const ri = warpImage(sq, 1, r);
  const rm = warpLabels(sqm, r);
  let err = 0;
  let bad = 0;
  for (let y = 0; y < N; y++)
    for (let x = 0; x < N; x++) {
      // +90 degrees turns the picture clockwise on screen: out[y][x] = in[N-1-x][y].
      err = Math.max(err, Math.abs(ri[y * N + x]! - sq[(N - 1 - x) * N + y]!));
      if (rm[y * N + x] !== sqm[(N - 1 - x) * N + y]) bad++;
    }
  t.ok(err < 1e-5, `image rotated (max error ${err})`);
  t.equal(bad, 0, 'labels rotated exactly');
});

t.test('random crop alone equals cropOrPad at the drawn offset', async (t) => {
  const cfg = { flipH: 0, maxRotationDeg: 0, scale: [1, 1] as [number, number], maxTranslate: 0, crop: { height: 17, width: 21 } };
  const offsets = new Set<string>();
  for (let s = 0; s < 6; s++) {
    const p = sampleAugmentParams(new Rng(s), H, W, cfg);
    offsets.add(`${p.cropTop},${p.cropLeft}`);
    const ref = cropOrPad(image, H, W, 17, 21, { channels: 2, top: p.cropTop, left: p.cropLeft });
    t.same(Array.from(warpImage(image, 2, p)), Array.from(ref), `crop at ${p.cropTop},${p.cropLeft}`);
    t.same(Array.from(warpLabels(mask, p)), Array.from(cropOrPad(mask, H, W, 17, 21, { top: p.cropTop, left: p.cropLeft })));
  }
  t.ok(offsets.size > 1, 'offsets vary with the seed');
});

/** Centroid of weights w[i] over an h x w grid. */
function centroid(w: ArrayLike<number>, h: number, wd: number): [number, number] {
  let s = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < wd; x++) {
      const v = w[y * wd + x]!;
      s += v;
      sx += v * x;
      sy += v * y;
    }
  return [sx / s, sy / s];
}

t.test('mask and image stay aligned under the same random affine', async (t) => {
  const S = 48;
  // An off-centre ellipse as mask; the image is the same ellipse as intensities (-1 / 1).
  const blob = Uint8Array.from({ length: S * S }, (_, i) => (((i % S) - 27) / 12) ** 2 + ((Math.floor(i / S) - 21) / 8) ** 2 < 1 ? 1 : 0);
  const img = Float32Array.from(blob, (v) => 2 * v - 1);
  const cfg = { flipV: 0.5, maxRotationDeg: 25, scale: [0.8, 1.25] as [number, number], maxTranslate: 0.1 };
  let worst = 0;
  for (let s = 0; s < 8; s++) {
    const p = sampleAugmentParams(new Rng(100 + s), S, S, cfg);
    const m = warpLabels(blob, p);
    const im = warpImage(img, 1, p);
    const [mx, my] = centroid(m, S, S);
    const [ix, iy] = centroid(Array.from(im, (v) => (v + 1) / 2), S, S);
    worst = Math.max(worst, Math.hypot(mx - ix, my - iy));
    let disagree = 0;
    let area = 0;
    for (let i = 0; i < S * S; i++) {
      if ((im[i]! > 0 ? 1 : 0) !== m[i]) disagree++;
      area += m[i]!;
    }
    t.ok(disagree <= 0.15 * area, `seed ${s}: threshold(image) vs mask disagree on ${disagree} of ${area} px`);
  }
  t.ok(worst < 0.2, `centroids of warped mask and warped image agree within ${worst.toFixed(3)} px`);
  // The check is sensitive: half a pixel of misregistration is detected.
  const p = { ...identityAugment(S, S), rotation: 0.2 };
  const [mx] = centroid(warpLabels(blob, p), S, S);
  const [ix] = centroid(Array.from(warpImage(img, 1, { ...p, translateX: 0.5 }), (v) => (v + 1) / 2), S, S);
  t.ok(Math.abs(mx - ix) > 0.3, `a 0.5 px shift is visible (${Math.abs(mx - ix).toFixed(3)})`);
});

t.test('warpImageBackward is the adjoint of warpImage (dot-product test)', async (t) => {
  for (let s = 0; s < 4; s++) {
    const p = sampleAugmentParams(new Rng(s), H, W, { flipV: 0.5, maxRotationDeg: 30, crop: { height: 20, width: 25 } });
    const r = new Rng(1000 + s);
    const x = Float32Array.from({ length: 2 * H * W }, () => r.normal());
    const y = Float32Array.from({ length: 2 * 20 * 25 }, () => r.normal());
    const Ax = warpImage(x, 2, p, 0); // fill 0: the warp is then linear
    const ATy = warpImageBackward(y, 2, p);
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < Ax.length; i++) lhs += Ax[i]! * y[i]!;
    for (let i = 0; i < x.length; i++) rhs += x[i]! * ATy[i]!;
    t.ok(Math.abs(lhs - rhs) < 1e-4 * (Math.abs(lhs) + 1), `<Ax,y> = ${lhs.toFixed(5)}, <x,A'y> = ${rhs.toFixed(5)}`);
  }
});

t.test('augmentSlice keeps modalities and never invents labels', async (t) => {
  const d = makePhantom({ size: 32, slicesPerNode: 1, testSlices: 0, numNodes: 1 });
  const s = d.nodes[0]!.slices[0]!;
  const p = sampleAugmentParams(new Rng(3), 32, 32, { maxRotationDeg: 20 });
  const a = augmentSlice(s, p);
  t.same(a.modalities, s.modalities);
  t.equal(a.image.length, s.image.length);
  t.ok(a.image.every((v) => v >= -1 && v <= 1));
  const orig = new Set(s.mask);
  t.ok([...new Set(a.mask)].every((l) => orig.has(l)));
  t.not(a.mask, s.mask, 'a new array, the original is untouched');
});

t.test('malformed params (e.g. from the network) are rejected', async (t) => {
  const p = identityAugment(H, W);
  t.throws(() => warpLabels(mask, { ...p, scale: 0 }), /scale must be > 0/);
  t.throws(() => warpLabels(mask, { ...p, cropTop: 1.5 }), /cropTop must be an integer/);
  t.throws(() => validateAugmentParams({ ...p, rotation: 'x' as unknown as number }), /rotation must be a finite number/);
  t.throws(() => validateAugmentParams({ ...p, flipH: 1 as unknown as boolean }), /booleans/);
  t.throws(() => warpImage(image, 2, { ...p, height: 10 }), /params expect 2x10x32/);
  t.throws(() => sampleAugmentParams(new Rng(1), H, W, { crop: { height: 30, width: 5 } }), /does not fit/);
  t.equal(augmentMatrix(p).length, 9);
});
