/**
 * The evaluation segmenter: it learns (training-set Dice of the trained U-Net beats the untrained
 * one by a stated margin on a tiny phantom set), training is reproducible from the seed, the batch
 * order covers every slice once per epoch, and argmax breaks ties towards the lower class.
 */
import t from 'tap';
import { makePhantom } from '../src/data/index.js';
import { evaluateSegmentation } from '../src/eval/metrics.js';
import { argmaxClasses, BatchOrder, Segmenter } from '../src/eval/segmenter.js';
import { gpu } from './helpers/engine.js';

t.test('argmaxClasses', async (t) => {
  // 2 images, 3 classes, 2 pixels; [n][c][pixel].
  const logits = Float32Array.of(
    1, 5, /* c1 */ 2, 5, /* c2 */ 0, 6,
    -1, 0, /* c1 */ -2, 0, /* c2 */ -3, 0,
  );
  const [a, b] = argmaxClasses(logits, 2, 3, 2);
  t.same([...a!], [1, 2]);
  t.same([...b!], [0, 0], 'ties go to the lowest class id');
  t.throws(() => argmaxClasses(logits, 2, 3, 3), /12 values/);
});

t.test('BatchOrder: seeded epochs without replacement', async (t) => {
  const o = new BatchOrder(5, 7);
  const first = [...o.next(3), ...o.next(2)];
  t.same([...first].sort(), [0, 1, 2, 3, 4], 'one epoch covers every index once');
  const second = o.next(5);
  t.same([...second].sort(), [0, 1, 2, 3, 4]);
  const again = new BatchOrder(5, 7);
  t.same([...again.next(3), ...again.next(2)], first, 'same seed, same order');
  t.notSame(new BatchOrder(5, 8).next(5), first, 'another seed, another order');
});

t.test('the segmenter learns a tiny phantom set', async (t) => {
  await gpu();
  const d = makePhantom({ size: 32, numNodes: 1, seed: 3, slicesPerNode: 8, testSlices: 4, modalities: ['t1', 't2'] });
  const train = d.nodes[0]!;
  const diceOf = async (iters: number) => {
    const seg = new Segmenter(2, train.numClasses, { iters, depth: 2, width: 8, lr: 2e-3, seed: 4 });
    try {
      const fit = await seg.fit(train, { progress: false, logEvery: 20 });
      const pred = await seg.predict(train);
      t.equal(pred.length, train.slices.length);
      const m = evaluateSegmentation(pred, train.slices.map((s) => s.mask), { width: 32, height: 32, classNames: train.classNames });
      return { dice: m.foreground.dice, fit };
    } finally {
      seg.dispose();
    }
  };
  const before = await diceOf(0);
  const after = await diceOf(60);
  t.comment(`foreground Dice on the training slices: untrained ${before.dice.toFixed(3)}, after 60 iterations ${after.dice.toFixed(3)}`);
  // Measured: ~0.06 untrained, ~0.50 trained. Margin: at least +0.25.
  t.ok(after.dice > before.dice + 0.25, `trained Dice ${after.dice} exceeds untrained ${before.dice} by > 0.25`);
  const l = after.fit.losses;
  t.equal(l.length, 3, 'losses read at 20, 40, 60');
  t.ok(l[l.length - 1]!.loss < l[0]!.loss, `loss decreases (${l.map((x) => x.loss.toFixed(3)).join(' -> ')})`);
  t.ok(after.fit.losses.every((x) => Number.isFinite(x.loss)));

  // Same config, same data -> same weights -> same loss curve.
  const replay = await diceOf(60);
  t.same(replay.fit.losses.map((x) => x.loss), l.map((x) => x.loss), 'training is reproducible from the seed');
});

t.test('shape checks', async (t) => {
  await gpu();
  const d = makePhantom({ size: 32, numNodes: 1, seed: 3, slicesPerNode: 2, testSlices: 1, modalities: ['t1'] });
  const seg = new Segmenter(2, d.test.numClasses, { iters: 1, depth: 2, width: 2 });
  await t.rejects(seg.fit(d.nodes[0]!, { progress: false }), /1 modalities, the U-Net takes 2/);
  seg.dispose();
  const deep = new Segmenter(1, d.test.numClasses, { iters: 1, depth: 6, width: 1 });
  await t.rejects(deep.fit(d.nodes[0]!, { progress: false }), /multiples of 64/);
  deep.dispose();
});
