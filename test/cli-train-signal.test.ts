// Ctrl-C (SIGINT) and SIGTERM on `asyndgan train`: the run stops at the next step, saves its
// training state and a generator, says where in one line, exits 0, and --resume continues from there.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runUntilSignal, savedIteration } from './helpers/cli.js';

const tiny = ['--size', '16', '--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2', '--batch-size', '1'];

const trainUntilSignal = (args: string[], signal: NodeJS.Signals, ready: RegExp) =>
  runUntilSignal('train', args, signal, ready, 240_000);

t.test('SIGINT saves state and generator, says where, exits 0; --resume continues; SIGTERM too', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'asyndgan-sig-')), 'run');
  // 1000 iterations, checkpoints only every 100000: what is saved comes from the signal.
  const common = [...tiny, '--iters', '1000', '--checkpoint-every', '100000', '--out', out];
  const first = await trainUntilSignal(common, 'SIGINT', /train +\d+% \d+\/1000/);
  t.equal(first.code, 0, 'exit 0 after SIGINT');
  const line = /SIGINT at iteration (\d+)\/1000: saved (\S+) and (\S+) \(continue with --resume\)/.exec(first.stderr);
  t.ok(line, 'one line says the iteration and both files');
  const iter = Number(line![1]);
  const shown = Number(/train +\d+% (\d+)\/1000/.exec(first.stderr)![1]);
  t.ok(iter >= shown && shown > 0 && iter < 1000, `stopped after the first progress line (${shown}), before the end (iteration ${iter})`);
  t.equal(line![2], join(out, 'train_state.safetensors'));
  t.equal(line![3], join(out, 'generator.safetensors'));
  t.equal(await savedIteration(join(out, 'train_state.safetensors')), iter, 'train_state holds the iteration reached');
  t.ok(existsSync(join(out, 'generator.safetensors')), 'generator written');
  t.notOk(existsSync(join(out, 'samples.png')), 'no end-of-run pictures for an interrupted run');
  t.notMatch(first.stderr, /^\s+at /m, 'no stack trace');

  const second = await trainUntilSignal([...common, '--resume'], 'SIGTERM', new RegExp(`resumed at iteration ${iter}[\\s\\S]*train +\\d+% (\\d+)/1000[\\s\\S]*train +\\d+%`));
  t.match(second.stderr, new RegExp(`resumed at iteration ${iter}\\b`), 'resume starts where SIGINT stopped');
  t.equal(second.code, 0, 'exit 0 after SIGTERM');
  const again = /SIGTERM at iteration (\d+)\/1000/.exec(second.stderr);
  t.ok(again && Number(again[1]) > iter, `the resumed run went on from ${iter} (to ${again?.[1]})`);
  t.equal(await savedIteration(join(out, 'train_state.safetensors')), Number(again![1]), 'saved again on SIGTERM');
});
