/**
 * End to end over real sockets: a malicious server (the project's GeneratorServer with a bisecting
 * generator backend) attacks a real `asyndgan node` process holding phantom center 0 (48 slices,
 * 4 modalities, 32x32). Both halves in one test, so it can fail either way:
 *  - `--privacy off`: the sign oracle works; the reconstruction beats the attacker's best
 *    legitimate guess (the population mean image) by well over 10 dB;
 *  - no privacy flag (the default preset, the recommended one): the same attacker, within the
 *    node's batch limit, gains at most a few dB.
 * The real images are loaded here only to score.
 */
import t from 'tap';
import { runActiveAttack, type ActiveAttackResult } from '../src/audit/active.js';
import { meanImage, scoreReconstruction } from '../src/audit/scores.js';
import { loadDataSource } from '../src/cli/data-source.js';

const SIZE = 32;

t.test('a malicious server reconstructs a node\'s images with privacy off, and not with the default preset', async (t) => {
  const data = await loadDataSource('phantom', { size: SIZE, nodes: 3, seed: 1 });
  const victim = data.nodes[0]!;
  const prior = meanImage(data.test.slices.map((s) => s.image));
  const attack = (batchSize: number, rounds: number, privacyFlags: string[]) => runActiveAttack({
    maskChannels: data.test.numClasses, modalities: data.test.modalities, size: SIZE, batchSize, lambdaL1: 100, rounds, repeats: 1,
    roundTimeoutMs: 20000, prior,
    nodeArgs: ['--data', 'phantom', '--index', '0', '--nodes', '3', '--size', String(SIZE), '--ndf', '4', '--seed', '1', ...privacyFlags],
  });
  const score = (r: ActiveAttackResult) => {
    // The strongest of the attack's estimators (an upper bound on this attacker).
    let best = -Infinity;
    for (const est of r.estimates.values()) {
      const keys = victim.slices.filter((s) => est.has(s.key));
      if (keys.length === 0) continue;
      const s = scoreReconstruction(keys.map((k) => est.get(k.key)!), keys.map((k) => k.image), { 'population mean': prior }, { channels: 4, height: SIZE, width: SIZE });
      best = Math.max(best, s.gain);
    }
    return best;
  };

  // Off: every mask every round, 8 bisection steps (about 53 dB when noise-free).
  const off = await attack(victim.slices.length, 8, ['--privacy', 'off']);
  const offGain = score(off);
  t.ok(offGain > 15, `privacy off: gain ${offGain.toFixed(1)} dB over the population mean (want > 15)`);

  // Default preset (no --privacy flag): the attacker must stay within its batch limit (16).
  const def = await attack(16, 12, []);
  t.ok(def.answeredReplies > 0, `the defended node answered ${def.answeredReplies} times (the attack was not just refused)`);
  t.equal(def.reported.privacyPreset, 1, 'a node started without --privacy runs the guarded preset');
  const defGain = score(def);
  t.ok(defGain <= 3, `default preset: gain ${defGain.toFixed(1)} dB (want <= 3)`);
  t.ok(offGain - defGain > 10, 'the defence is what makes the difference');
});
