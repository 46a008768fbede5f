/**
 * The PyTorch peer of `npm run bench` (tools/bench/torch.ts): it runs the same G/D steps on
 * request and times them; without torch it says so in one line with the install command.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { startTorch, torchRunner, TORCH_INSTALL } from '../tools/bench/torch.js';
import { DEFAULT_GAN } from '../tools/bench/gan-step.js';

t.test('no python: one line, no throw', async (t) => {
  const r = await startTorch({ python: '/dev/null/python3' });
  t.type(r, 'string');
  t.match(r as string, /no \/dev\/null\/python3/);
  t.notOk((r as string).includes('\n'), 'one line');
});

t.test('python without torch: the install command', async (t) => {
  // `sh` as the interpreter: its `-c "import torch"` fails as a python without torch would, even
  // on a machine that has torch.
  const r = await startTorch({ python: 'sh', threads: 1 }).catch((e) => String(e));
  t.type(r, 'string');
  t.ok((r as string).includes(TORCH_INSTALL), `names the install command: ${r as string}`);
});

const hasTorch = spawnSync('python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
t.test('with torch: a tiny G step and D step run and report times', { skip: hasTorch ? false : 'python3 has no torch' }, async (t) => {
  const peer = await startTorch({ threads: 1 });
  if (typeof peer === 'string') throw new Error(peer);
  t.teardown(() => peer.close());
  t.match(peer.version, /^\d+\.\d+/);
  const gan = { ...DEFAULT_GAN, size: 32, ngf: 4, ndf: 4, blocks: 1 };
  for (const part of ['generator', 'discriminator'] as const) {
    const r = await torchRunner(peer, { kind: 'gan', name: part, gan, part }, 'step');
    if (typeof r === 'string') throw new Error(r);
    await r.run();
    const reply = await peer.request({ op: 'run' });
    t.ok(typeof reply.ms === 'number' && (reply.ms as number) > 0, `${part} step took ${String(reply.ms)} ms`);
  }
  await t.rejects(peer.request({ op: 'nope' }), /unknown op/, 'a bad request is an error, and the peer lives on');
  t.ok((await peer.request({ op: 'run' })).ok, 'still answering');
  const notImpl = await torchRunner(peer, { kind: 'adam', name: 'adam' }, 'step');
  t.type(notImpl, 'string', 'workloads it does not implement are skipped with a reason');
});
