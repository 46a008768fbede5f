/**
 * `asyndgan server|node --algorithm fedavg-gan` through `runLocalFederation` (server and two node
 * processes of the CLI on loopback, tiny model, 2 rounds of E = 2): the report counts generator
 * updates as rounds x E and the bytes the server counted; every round carries both sites' models
 * both ways; the generator file is in the AsynDGAN server's format, marked fedavg-gan.
 * Plus the one-line refusal of an unknown --algorithm.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitAlgorithm } from '../src/cli/algorithm.js';
import { runLocalFederation } from '../src/cli/demo.js';
import { UsageError } from '../src/cli/options.js';
import { loadSafetensors } from '../src/io/safetensors.js';

t.test('--algorithm is taken off the command line', async (t) => {
  t.same(splitAlgorithm(['--algorithm', 'fedavg-gan', '--rounds', '3']), { algorithm: 'fedavg-gan', rest: ['--rounds', '3'] });
  t.same(splitAlgorithm(['--rounds=3', '--algorithm=asyndgan']), { algorithm: 'asyndgan', rest: ['--rounds=3'] });
  t.same(splitAlgorithm([]), { algorithm: 'asyndgan', rest: [] });
  t.throws(() => splitAlgorithm(['--algorithm', 'fedprox']), UsageError);
  t.throws(() => splitAlgorithm(['--algorithm']), /--algorithm must be one of asyndgan, fedavg-gan, got ""/);
});

t.test('a fedavg-gan federation of CLI processes: report, bytes, generator file', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'asyndgan-fedavg-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const error = console.error;
  console.error = () => {};
  let run;
  try {
    run = await runLocalFederation({
      algorithm: 'fedavg-gan', nodes: 2, size: 32, batchSize: 2, rounds: 2, localSteps: 2, out, progress: false,
      gan: { ngf: 4, ndf: 4, blocks: 1, decayIters: 1 },
    });
  } finally {
    console.error = error;
  }
  t.equal(run.rounds, 2);
  t.equal(run.generatorUpdates, 4, 'generator updates = rounds x E');
  t.equal(run.generatorStepsAllNodes, 8, 'local G steps over both sites');
  t.same(run.bytes.perRound.map((r) => r.round), [1, 2]);
  const server = JSON.parse(readFileSync(run.serverReport, 'utf8'));
  t.same(server.history.map((h: { onTime: string[] }) => h.onTime), [['hospital-a', 'hospital-b'], ['hospital-a', 'hospital-b']], 'both sites in every round');
  // Each way, each round: two copies of G and D in f32, plus framing.
  const g = await loadSafetensors(run.generator);
  const info = JSON.parse(g.metadata.asyndgan_generator!);
  t.equal(info.algorithm, 'fedavg-gan');
  t.equal(info.trainer, 'federated');
  t.same(info.federation, { rounds: 2, nodes: 2, nodeIds: ['hospital-a', 'hospital-b'] });
  const paramsG = Number(g.metadata.parameters);
  for (const r of run.bytes.perRound) {
    t.ok(r.in > 2 * paramsG * 4 && r.out > 2 * paramsG * 4, `round ${r.round}: ${r.in} B in, ${r.out} B out: more than two generators each way`);
  }
  t.equal(run.bytes.total, run.bytes.totalIn + run.bytes.totalOut);
  t.ok(run.bytes.total >= run.bytes.perRound.reduce((s, r) => s + r.in + r.out, 0), 'total includes the rounds');
  t.equal(run.bytes.perGeneratorUpdate, run.bytes.total / 4);
  t.ok(run.wallSeconds > 0);
});
