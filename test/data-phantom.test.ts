import t from 'tap';
import { makePhantom, PHANTOM_CLASSES, phantomSites, type PhantomData } from '../src/data/phantom.js';
import { classHistogram, validateDataset, type Dataset } from '../src/data/sample.js';

const allSlices = (d: PhantomData) => [...d.nodes.flatMap((n) => n.slices), ...d.test.slices];

function bytesOf(d: PhantomData): Buffer {
  return Buffer.concat(
    allSlices(d).flatMap((s) => [Buffer.from(s.mask), Buffer.from(s.image.buffer, s.image.byteOffset, s.image.byteLength)]),
  );
}

/** Mean of modality `m` over pixels of class `c` (all slices of a data set). */
function classMean(ds: Dataset, m: number, c: number): number {
  const HW = ds.height * ds.width;
  let s = 0;
  let n = 0;
  for (const sl of ds.slices)
    for (let i = 0; i < HW; i++)
      if (sl.mask[i] === c) {
        s += sl.image[m * HW + i]!;
        n++;
      }
  return n ? s / n : NaN;
}

t.test('same seed -> identical bytes, other seed -> different', async (t) => {
  const opts = { seed: 7, size: 32, slicesPerNode: 4, testSlices: 3 };
  const a = bytesOf(makePhantom(opts));
  const b = bytesOf(makePhantom(opts));
  t.ok(a.equals(b), 'two runs with seed 7 are byte-identical');
  t.equal(a.length, (3 * 4 + 3) * (32 * 32 + 4 * 32 * 32 * 4));
  const c = bytesOf(makePhantom({ ...opts, seed: 8 }));
  t.notOk(a.equals(c), 'seed 8 differs');
});

t.test('adding slices or nodes does not change existing slices', async (t) => {
  const small = makePhantom({ seed: 3, size: 32, slicesPerNode: 2, testSlices: 1, modalities: ['t1'] });
  const big = makePhantom({ seed: 3, size: 32, slicesPerNode: 5, testSlices: 4, modalities: ['t1'] });
  t.same(Buffer.from(big.nodes[1]!.slices[1]!.image.buffer), Buffer.from(small.nodes[1]!.slices[1]!.image.buffer));
  t.same(Buffer.from(big.test.slices[0]!.mask), Buffer.from(small.test.slices[0]!.mask));
});

t.test('a modality subset renders exactly the same channel', async (t) => {
  const full = makePhantom({ seed: 5, size: 32, slicesPerNode: 2, testSlices: 0 });
  const t2 = makePhantom({ seed: 5, size: 32, slicesPerNode: 2, testSlices: 0, modalities: ['t2'] });
  const HW = 32 * 32;
  const s = full.nodes[2]!.slices[1]!;
  const u = t2.nodes[2]!.slices[1]!;
  t.same(u.modalities, ['t2']);
  t.equal(u.image.length, HW);
  t.same(Buffer.from(u.image.buffer), Buffer.from(s.image.slice(2 * HW, 3 * HW).buffer), 't2 channel identical');
  t.same(Buffer.from(u.mask), Buffer.from(s.mask), 'same anatomy');
});

t.test('default set at 64: valid, every class present, every slice has tumour', async (t) => {
  const d = makePhantom({ slicesPerNode: 16, testSlices: 12 });
  t.equal(d.nodes.length, 3);
  for (const ds of [...d.nodes, d.test]) {
    validateDataset(ds);
    t.equal(ds.height, 64);
    t.same(ds.modalities, ['t1', 't1c', 't2', 'flair']);
    t.same(ds.classNames, PHANTOM_CLASSES.split);
  }
  const hist = classHistogram({ ...d.test, slices: allSlices(d) });
  hist.forEach((n, c) => t.ok(n > 0, `class ${PHANTOM_CLASSES.split[c]} present (${n} px)`));
  for (const s of allSlices(d)) {
    let tumour = 0;
    for (const v of s.mask) if (v >= 6) tumour++;
    if (tumour === 0) t.fail(`slice ${s.key} has no tumour`);
    t.equal(tumour, s.meta.tumourPixels);
  }
  const keys = new Set(allSlices(d).map((s) => s.key));
  t.equal(keys.size, 3 * 16 + 12, 'keys unique across nodes and test');
});

t.test('works at 32 and 128, whole-tumour labelling', async (t) => {
  for (const size of [32, 128]) {
    const d = makePhantom({ size, slicesPerNode: 2, testSlices: 2, tumourLabels: 'whole', modalities: ['flair', 't1'] });
    for (const ds of [...d.nodes, d.test]) validateDataset(ds);
    t.equal(d.test.slices[0]!.mask.length, size * size);
    t.equal(d.test.numClasses, 7);
    const hist = classHistogram({ ...d.test, slices: allSlices(d) });
    t.ok(hist[6]! > 0 && hist[4]! > 0 && hist[1]! > 0, `tumour, wm and skull present at ${size}`);
  }
});

t.test('tumour size heterogeneity across nodes (measured)', async (t) => {
  const d = makePhantom({ seed: 11, size: 48, slicesPerNode: 20, testSlices: 20, modalities: ['t1'] });
  const mean = (ds: Dataset) => ds.slices.reduce((a, s) => a + (s.meta.tumourPixels as number), 0) / ds.slices.length;
  const m = d.nodes.map(mean);
  t.ok(m[0]! < m[1]! && m[1]! < m[2]!, `mean tumour pixels increase with node: ${m.map((v) => v.toFixed(1))}`);
  t.ok(m[2]! > 4 * m[0]!, 'large-tumour node has > 4x the tumour area of the small one');
  const radii = (ds: Dataset) => ds.slices.map((s) => s.meta.tumourRadius as number);
  t.ok(Math.max(...radii(d.nodes[0]!)) < Math.min(...radii(d.nodes[2]!)), 'radius ranges of node 0 and node 2 do not overlap');
  const tr = radii(d.test);
  t.ok(Math.min(...tr) < Math.max(...radii(d.nodes[0]!)) && Math.max(...tr) > Math.min(...radii(d.nodes[2]!)), 'test set spans small to large');

  const homo = makePhantom({ seed: 11, size: 48, slicesPerNode: 20, testSlices: 0, modalities: ['t1'], heterogeneity: { tumourSize: false } });
  const h = homo.nodes.map(mean);
  t.ok(Math.max(...h) / Math.min(...h) < 2, `without size heterogeneity the means are close: ${h.map((v) => v.toFixed(1))}`);
});

t.test('per-site intensity bias (measured) and neutral profiles', async (t) => {
  const sites = phantomSites({ seed: 2 });
  t.equal(sites.length, 3);
  // Same tumour-size distribution everywhere, so only the scanner profile differs between nodes.
  const d = makePhantom({ seed: 2, size: 32, slicesPerNode: 8, testSlices: 0, modalities: ['t1'], heterogeneity: { tumourSize: false } });
  const wm = d.nodes.map((n) => classMean(n, 0, 4));
  const spread = Math.max(...wm) - Math.min(...wm);
  t.ok(spread > 0.1, `T1 white matter mean differs between sites: ${wm.map((v) => v.toFixed(3))}`);
  const flat = makePhantom({
    seed: 2,
    size: 32,
    slicesPerNode: 8,
    testSlices: 0,
    modalities: ['t1'],
    heterogeneity: { tumourSize: false, intensity: false },
  });
  const wf = flat.nodes.map((n) => classMean(n, 0, 4));
  // Left: anatomy sampling noise only (8 slices of 32x32); it must be far below the site effect.
  t.ok(Math.max(...wf) - Math.min(...wf) < spread / 3, `neutral sites agree: ${wf.map((v) => v.toFixed(3))}`);
  t.same(
    phantomSites({ seed: 2, heterogeneity: { intensity: false } }).map((s) => s.tumourRadius),
    sites.map((s) => s.tumourRadius),
    'turning off intensity heterogeneity keeps the size ranges',
  );
});

t.test('modality contrasts differ as in real MR', async (t) => {
  const d = makePhantom({ seed: 4, size: 48, slicesPerNode: 6, testSlices: 0, heterogeneity: { intensity: false } });
  const ds: Dataset = { ...d.nodes[0]!, slices: d.nodes.flatMap((n) => n.slices) };
  const [T1, T1C, T2, FLAIR] = [0, 1, 2, 3];
  const [CSF, GM, WM, VENT, EDEMA, CORE] = [2, 3, 4, 5, 6, 7];
  const mu = (m: number, c: number) => classMean(ds, m, c);
  t.ok(mu(T1, WM) > mu(T1, GM) && mu(T1, GM) > mu(T1, CSF), 'T1: WM > GM > CSF');
  t.ok(mu(T2, CSF) > mu(T2, GM) && mu(T2, GM) > mu(T2, WM), 'T2: CSF > GM > WM');
  t.ok(mu(T2, VENT) > mu(T2, WM) + 0.5, 'T2: ventricles bright');
  t.ok(mu(FLAIR, VENT) < mu(FLAIR, WM) - 0.3, 'FLAIR: ventricles dark (fluid suppressed)');
  t.ok(mu(FLAIR, EDEMA) > mu(FLAIR, GM) + 0.3, 'FLAIR: edema bright');
  t.ok(mu(T1C, CORE) > mu(T1, CORE) + 0.2, 'T1c: enhancing core brighter than in T1');
  t.ok(Math.abs(mu(T1C, WM) - mu(T1, WM)) < 0.1, 'T1c ~ T1 outside the tumour');
});

t.test('bad options are rejected with a message', async (t) => {
  t.throws(() => makePhantom({ size: 8 }), /size/);
  t.throws(() => makePhantom({ modalities: [] }), /1 to 4/);
  t.throws(() => makePhantom({ modalities: ['t1', 't1'] }), /duplicate/);
  t.throws(() => makePhantom({ modalities: ['pd' as 't1'] }), /unknown modality 'pd'/);
  t.throws(() => makePhantom({ numNodes: 2, slicesPerNode: [1, 2, 3] }), /3 entries for 2 nodes/);
});

t.test('split statistics: centres differ in tumour size, location and scanner; the test set spans them', async (t) => {
  const { splitStats, splitStatsMarkdown, targetClassIds } = await import('../src/data/split-stats.js');
  const d = makePhantom({ seed: 1, size: 32, slicesPerNode: 24, testSlices: 36 });
  const st = splitStats(d.nodes, d.test);
  t.same(st.map((s) => s.name), ['centre 0', 'centre 1', 'centre 2', 'test']);
  t.same(st[0]!.targetClasses, ['edema', 'tumour_core']);
  const area = st.map((s) => s.targetAreaPercent.mean);
  t.ok(area[0]! < area[1]! && area[1]! < area[2]!, `tumour area grows with the centre: ${area.map((a) => a.toFixed(2))}`);
  const test = st[3]!;
  t.ok(test.targetAreaPercent.min < st[0]!.targetAreaPercent.max && test.targetAreaPercent.max > st[2]!.targetAreaPercent.min, 'test areas span small to large');
  // Location: each centre's tumour centroids sit in its own sector, so the mean directions differ.
  const dir = st.slice(0, 3).map((s) => Math.atan2(s.centroidV.mean, s.centroidU.mean));
  for (let a = 0; a < 3; a++) for (let b = a + 1; b < 3; b++) {
    const gap = Math.abs(Math.atan2(Math.sin(dir[a]! - dir[b]!), Math.cos(dir[a]! - dir[b]!)));
    t.ok(gap > 1, `centres ${a} and ${b} point ${gap.toFixed(2)} rad apart`);
  }
  const testSpread = Math.max(test.centroidU.max - test.centroidU.min, test.centroidV.max - test.centroidV.min);
  t.ok(testSpread > 0.5, `test tumours anywhere (centroid spread ${testSpread.toFixed(2)})`);
  // Scanner: the T1 mean intensity differs between centres by more than anatomy explains.
  const t1 = st.slice(0, 3).map((s) => s.intensity[0]!.mean);
  t.ok(Math.max(...t1) - Math.min(...t1) > 0.15, `T1 means per centre: ${t1.map((v) => v.toFixed(3))}`);
  t.match(splitStatsMarkdown(st), /\| centre 1 \| 24 \| 24 \|/);
  t.same(targetClassIds(['background', 'frontal', 'occipital']), [1, 2], 'no tumour classes: every foreground class');
});

t.test('the centres are fixed by siteSeed, seed draws the patients', async (t) => {
  const a = phantomSites({ seed: 1 });
  const b = phantomSites({ seed: 2 });
  t.same(b, a, 'another slice seed, the same centres');
  t.notSame(phantomSites({ siteSeed: 2 }), a, 'another siteSeed, other centres');
  const d1 = makePhantom({ seed: 1, size: 16, slicesPerNode: 1, testSlices: 0, modalities: ['t1'] });
  const d2 = makePhantom({ seed: 2, size: 16, slicesPerNode: 1, testSlices: 0, modalities: ['t1'] });
  t.notSame(Buffer.from(d1.nodes[0]!.slices[0]!.mask), Buffer.from(d2.nodes[0]!.slices[0]!.mask), 'other patients');
});
