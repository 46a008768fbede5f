// Ctrl-C (SIGINT) and SIGTERM on `asyndgan complete`: training stops at the next iteration, saves
// its state and the completion generator, says where in one line, exits 0 without evaluating, and
// --resume continues from there.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadSafetensors } from '../src/io/safetensors.js';
import { runUntilSignal, savedIteration } from './helpers/cli.js';

const tiny = ['--size', '16', '--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2', '--batch-size', '1', '--iters', '2000'];

const completeUntilSignal = (args: string[], signal: NodeJS.Signals, ready: RegExp) =>
  runUntilSignal('complete', args, signal, ready, 120_000);

t.test('complete: SIGINT saves state and generator, says where, exits 0; --resume continues; SIGTERM too', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'asyndgan-complete-sig-')), 'run');
  const common = [...tiny, '--out', out];
  const first = await completeUntilSignal(common, 'SIGINT', /complete: train +\d+% [1-9]\d*\/2000/);
  t.equal(first.code, 0, 'exit 0 after SIGINT');
  const line = /asyndgan complete: SIGINT at iteration (\d+)\/2000: saved (\S+) and (\S+) \(continue with --resume\)/.exec(first.stderr);
  t.ok(line, 'one line says the iteration and both files');
  const iter = Number(line![1]);
  t.ok(iter > 0 && iter < 2000, `stopped early (iteration ${iter})`);
  t.equal(line![2], join(out, 'complete_state.safetensors'));
  t.equal(line![3], join(out, 'completion-generator.safetensors'));
  t.equal(await savedIteration(join(out, 'complete_state.safetensors')), iter, 'the state holds the iteration reached');
  const gen = await loadSafetensors(join(out, 'completion-generator.safetensors'));
  t.equal((JSON.parse(gen.metadata.asyndgan_completion_generator!) as { iter: number }).iter, iter, 'the generator is the one of that iteration');
  t.notOk(existsSync(join(out, 'complete.json')), 'no evaluation for an interrupted run');
  t.notMatch(first.stderr, /^\s+at /m, 'no stack trace');

  const second = await completeUntilSignal([...common, '--resume'], 'SIGTERM', new RegExp(`resumed at iteration ${iter}[\\s\\S]*complete: train +\\d+% \\d+/2000[\\s\\S]*complete: train +\\d+%`));
  t.match(second.stderr, new RegExp(`resumed at iteration ${iter}\\b`), 'resume starts where SIGINT stopped');
  t.equal(second.code, 0, 'exit 0 after SIGTERM');
  const again = /SIGTERM at iteration (\d+)\/2000/.exec(second.stderr);
  t.ok(again && Number(again[1]) > iter, `the resumed run went on from ${iter} (to ${again?.[1]})`);
  t.equal(await savedIteration(join(out, 'complete_state.safetensors')), Number(again![1]), 'saved again on SIGTERM');
});
