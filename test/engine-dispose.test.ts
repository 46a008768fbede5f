/** The engine's lifecycle: dispose() frees the device, init() afterwards gives a fresh, working engine. */
import t from 'tap';
import * as E from '../src/engine/index.js';

t.test('dispose frees the engine and init creates a new one', async (t) => {
  const first = await E.init();
  const x = E.tensor([1, 2, 3], [3]);
  t.same([...(await E.relu(E.addScalar(x, -2)).read())], [0, 0, 1]);
  t.ok(first.pool.stats.created > 0, 'the first engine allocated buffers');
  await first.dispose();
  t.equal(first.isDisposed, true);
  t.throws(() => E.engine(), /not initialized \(or disposed\)/, 'ops cannot reach a disposed engine');
  await first.dispose(); // idempotent
  const second = await E.init();
  t.not(second, first, 'init after dispose creates a new engine');
  t.same([...(await E.mul(E.tensor([2, 3], [2]), E.tensor([4, 5], [2])).read())], [8, 15], 'and it computes');
  await second.dispose();
});

t.test('the convolution kernel family is a public option, validated', async (t) => {
  const e = await E.init({ convKernels: 'tiled' });
  t.equal(e.convKernels, 'tiled');
  await e.dispose();
  await t.rejects(E.init({ convKernels: 'fast' as E.ConvKernels }), /convKernels .* must be one of auto, subgroup, tiled, got "fast"/);
});
