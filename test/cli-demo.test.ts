/**
 * `asyndgan demo` with nodes holding modality subsets: the --node-modalities parser, and a tiny
 * real run (2 node processes on loopback, 2 rounds at 32x32) whose server weights each channel over
 * the nodes that hold it.
 */
import { createServer, type AddressInfo } from 'node:net';
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoCommand, parseNodeModalities } from '../src/cli/demo.js';
import { UsageError } from '../src/cli/options.js';

const ALL = ['t1', 't1c', 't2', 'flair'];

t.test('parseNodeModalities', async (t) => {
  t.same(parseNodeModalities('t1,t2;t1;flair,t2', 3, ALL), [['t1', 't2'], ['t1'], ['t2', 'flair']], 'data-set order and spelling');
  t.same(parseNodeModalities(' T1 ; ;flair', 3, ALL), [['t1'], ALL, ['flair']], 'case-insensitive; empty = all');
  t.throws(() => parseNodeModalities('t1;t2', 3, ALL), UsageError);
  t.throws(() => parseNodeModalities('t1;t2', 3, ALL), /2 subset\(s\) for 3 nodes/);
  t.throws(() => parseNodeModalities('t1;dwi;t2', 3, ALL), /node 1: unknown modality "dwi"/);
  t.throws(() => parseNodeModalities('t1,t1;t2;t2', 3, ALL), /named twice/);
});

t.test('a demo whose nodes hold different modalities runs, with per-modality discriminators', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'asyndgan-demo-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const log = console.log;
  const error = console.error;
  const printed: string[] = [];
  const errors: string[] = [];
  console.log = (...a: unknown[]) => void printed.push(a.join(' '));
  console.error = (...a: unknown[]) => void errors.push(a.join(' '));
  // --port: a port free a moment ago.
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  try {
    await demoCommand(['--data', 'phantom:t1,t2', '--nodes', '2', '--size', '32', '--rounds', '2', '--decay-iters', '1',
      '--ngf', '4', '--ndf', '4', '--blocks', '1', '--batch-size', '2', '--out', out, '--port', String(port),
      '--node-modalities', 't1,t2;t2', '--per-modality-d']);
  } finally {
    console.log = log;
    console.error = error;
  }
  t.match(printed[printed.length - 1], /^report: /);
  t.ok(errors.some((e) => e.includes(`server ws://127.0.0.1:${port}/ws (metrics: http://127.0.0.1:${port}/metrics`)), `--port ${port} used and printed`);
  const report = JSON.parse(readFileSync(join(out, 'demo-report.json'), 'utf8'));
  t.same(report.nodeModalities, { 'hospital-a': ['t1', 't2'], 'hospital-b': ['t2'] });
  t.equal(report.perModalityD, true);
  t.equal(report.parameters.discriminatorsByNode['hospital-a'], 2 * report.parameters.discriminatorsByNode['hospital-b'], 'two per-modality Ds vs one');
  const server = JSON.parse(readFileSync(join(out, 'server-report.json'), 'utf8'));
  const both = server.history.find((h: { onTime: string[] }) => h.onTime.length === 2);
  t.ok(both, 'a round answered by both nodes');
  // Replies are keyed "node@round": a slow round can also apply a node's stale reply from the
  // round before, which then shares that node's weight, so sum over every reply of a node.
  const weights = both.channelWeights as Record<string, number[]>;
  const sum = (channel: number, node?: string) =>
    Object.entries(weights).filter(([key]) => !node || key.startsWith(`${node}@`)).reduce((s, [, w]) => s + w[channel]!, 0);
  t.same(sum(0, 'hospital-b'), 0, 'hospital-b does not count on t1');
  t.ok(Math.abs(sum(0, 'hospital-a') - 1) < 1e-12, 't1 is held by hospital-a alone: full weight');
  t.ok(Math.abs(sum(1) - 1) < 1e-12, 't2 weights sum to 1');
  const info = JSON.parse((await import('../src/io/safetensors.js').then((m) => m.loadSafetensors(join(out, 'generator.safetensors')))).metadata.asyndgan_generator!);
  t.equal(info.trainer, 'federated');
  t.same(info.federation, { rounds: 2, nodes: 2, nodeIds: ['hospital-a', 'hospital-b'] });
});
