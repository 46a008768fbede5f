/** `asyndgan node`'s privacy flags: preset + overrides, "none", on/off, one-line errors. */
import t from 'tap';
import { describePrivacy, privacyFromOptions } from '../src/cli/privacy-options.js';
import { UsageError } from '../src/cli/options.js';

t.test('presets and overrides', async (t) => {
  const g = privacyFromOptions({ privacy: 'guarded' });
  t.match(g, { preset: 'guarded', clip: 0.1, noise: 1, maxLambdaL1: 100, maxBatch: 16, maxQueries: 25, queryWindow: 100, l1: true, sendLosses: false, rangeCheck: true });
  t.equal(privacyFromOptions({}).preset, 'guarded', 'default preset');
  const o = privacyFromOptions({
    privacy: 'dp', clip: '0.5', noise: '40', 'epsilon-budget': '8', delta: '1e-6', 'max-lambda-l1': '50', 'max-batch': '8',
    'max-queries': '10', 'query-window': '50', l1: 'off', losses: 'on', 'range-check': 'off',
  });
  t.match(o, { preset: 'dp', clip: 0.5, noise: 40, epsilonBudget: 8, delta: 1e-6, maxLambdaL1: 50, maxBatch: 8, maxQueries: 10, queryWindow: 50, l1: false, sendLosses: true, rangeCheck: false });
  const none = privacyFromOptions({ privacy: 'guarded', 'max-lambda-l1': 'none', 'max-queries': 'none', 'epsilon-budget': 'none' });
  t.equal(none.maxLambdaL1, Infinity);
  t.equal(none.maxQueries, undefined);
  t.equal(none.epsilonBudget, Infinity);
  t.match(describePrivacy(g), /^privacy guarded: clip 0.1, noise 1, epsilon budget none at delta 0.00001, max lambdaL1 100/);
});

t.test('bad flags are one-line usage errors naming the flag', async (t) => {
  t.throws(() => privacyFromOptions({ privacy: 'max' }), UsageError);
  t.throws(() => privacyFromOptions({ privacy: 'max' }), /--privacy must be one of off, guarded, dp, got "max"/);
  t.throws(() => privacyFromOptions({ noise: 'lots' }), /--noise must be a number, got "lots"/);
  t.throws(() => privacyFromOptions({ 'max-batch': '2.5' }), /--max-batch must be an integer or none/);
  t.throws(() => privacyFromOptions({ l1: 'yes' }), /--l1 must be on or off/);
  t.throws(() => privacyFromOptions({ privacy: 'off', noise: '2' }), /noise needs a clip norm/);
  t.throws(() => privacyFromOptions({ clip: '-1' }), /clip must be finite and positive/);
});
