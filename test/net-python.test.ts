/**
 * The Python reference node printed in docs/PROTOCOL.md (Appendix A), run against the real
 * server: evidence that the document alone is enough to write a node in another language.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { randomFlips } from '../src/net/augment.js';
import { LinearGenerator, TARGET_A, TARGET_B } from './helpers/net-backends.js';
import { TOKENS, startTestServer } from './helpers/net-harness.js';

const python = spawnSync('python3', ['--version']).status === 0;

t.test('reference Python node from PROTOCOL.md trains against the server', { skip: python ? false : 'python3 not available' }, async (t) => {
  const doc = readFileSync(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8');
  const m = /<!-- reference-node:begin -->\s*```python\n([\s\S]*?)```\s*<!-- reference-node:end -->/.exec(doc);
  t.ok(m, 'the document contains the reference node');
  const dir = t.testdir({});
  const script = join(dir, 'node.py');
  writeFileSync(script, m![1]!);

  const gen = new LinearGenerator(0.05);
  // f16 fakes and flip augmentation: the node must decode half floats and flip its real images.
  const server = await startTestServer(gen, { roundTimeoutMs: 5000, wireDtype: 'f16', augmentation: randomFlips({ horizontal: true, vertical: true }) });
  t.teardown(() => server.stop());
  const rounds = 150;
  const child = spawn('python3', [script, server.url, 'alpha', TOKENS.alpha!, String(rounds)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  t.equal(code, 0, `python node exited cleanly ${err ? `(stderr: ${err.slice(0, 500)})` : ''}`);
  t.match(out, new RegExp(`answered ${rounds} rounds`));
  t.equal(err, '', 'no error frames reported to the python node');
  const node = server.metrics().nodes.find((n) => n.id === 'alpha')!;
  t.equal(node.masks, 8, 'its masks arrived');
  t.equal(node.stats.framesRejected, 0, 'no frame of it was refused');
  t.ok(node.stats.repliesOnTime >= rounds - 1, `its replies were applied (${node.stats.repliesOnTime})`);
  t.ok(Math.abs(gen.a - TARGET_A) < 0.1 && Math.abs(gen.b - TARGET_B) < 0.1, `generator learned from it (a=${gen.a.toFixed(3)}, b=${gen.b.toFixed(3)})`);
  await server.stop();
});
