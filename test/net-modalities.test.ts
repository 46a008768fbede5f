/**
 * Nodes holding different modality subsets, over real sockets with stub backends (no GPU):
 *  - the server weights each image channel over the nodes that hold it (a channel held by one
 *    node gets that node's full weight, not its share over all nodes);
 *  - the server lists its modality names in the config, refuses a hello naming an unknown one,
 *    and the node gives up with a message naming both lists;
 *  - a node whose channel order disagrees with the server's refuses the session itself.
 */
import t from 'tap';
import type {
  DiscriminatorBackend, DiscriminatorInput, DiscriminatorOutput, GeneratorBackend, GeneratorBatch, GeneratorStep,
} from '../src/net/backend.js';
import { modalityChannelsOnWire } from '../src/net/modalities.js';
import { DiscriminatorNode } from '../src/net/node.js';
import { combineChannelWeights, combineWeights } from '../src/net/aggregate.js';
import { startServer, type GeneratorServer } from '../src/net/server.js';
import { TOKENS, waitFor } from './helpers/net-harness.js';

const H = 2;
const W = 2;
const MODALITIES = ['t1', 'flair'];

/** Fakes are zeros; every combined gradient is recorded. */
class RecordingGenerator implements GeneratorBackend {
  readonly steps: GeneratorStep[][] = [];
  async generate(batch: GeneratorBatch): Promise<Float32Array> {
    return new Float32Array(batch.shape[0] * MODALITIES.length * H * W);
  }
  async applyGradients(steps: readonly GeneratorStep[]): Promise<void> {
    this.steps.push([...steps]);
  }
  async saveState(): Promise<Uint8Array> {
    return new Uint8Array();
  }
  async loadState(): Promise<void> {}
}

/** Returns `value[c]` on every element of channel c (0 on channels the node does not hold). */
class ConstantDiscriminator implements DiscriminatorBackend {
  constructor(readonly value: readonly number[]) {}
  async step(input: DiscriminatorInput): Promise<DiscriminatorOutput> {
    const [n, c, h, w] = input.fakeShape;
    const g = new Float32Array(n * c * h * w);
    for (let i = 0; i < g.length; i++) g[i] = this.value[Math.floor(i / (h * w)) % c]!;
    return { gradFakes: g, losses: { dReal: 0, dFake: 0, gGan: 0, gL1: 0 } };
  }
  async saveState(): Promise<Uint8Array> {
    return new Uint8Array();
  }
  async loadState(): Promise<void> {}
}

function masksOf(id: string, n: number) {
  return { keys: Array.from({ length: n }, (_, i) => `${id}-${i}`), data: new Float32Array(n * H * W).fill(1), shape: [n, 1, H, W] as const };
}

async function server(gen: GeneratorBackend, modalities: string[] | null = MODALITIES): Promise<GeneratorServer> {
  return startServer({
    generator: gen, tokens: TOKENS, host: '127.0.0.1', port: 0, roundTimeoutMs: 5000, checkpointEvery: 0, seed: 7, shutdownGraceMs: 500,
    replyBounds: { aggregation: 'mean' }, // exact weighted sums are asserted; beta's norm is above alpha's
    session: { maskChannels: 1, imageChannels: MODALITIES.length, height: H, width: W, batchSize: 2, lambdaL1: 100, ...(modalities ? { modalities } : {}) },
  });
}

function node(url: string, id: string, o: { n: number; grad: number[]; modalities?: string[]; modalityChannels?: number[]; onFailed?: (why: string) => void }): DiscriminatorNode {
  return new DiscriminatorNode({
    url, nodeId: id, token: TOKENS[id]!, backend: new ConstantDiscriminator(o.grad), masks: masksOf(id, o.n),
    reconnect: { initialDelayMs: 20, maxDelayMs: 50, jitter: 0 },
    privacy: 'off', // exact gradients are asserted
    ...(o.modalities ? { modalities: o.modalities } : {}),
    ...(o.modalityChannels ? { modalityChannels: o.modalityChannels } : {}),
    ...(o.onFailed ? { onFailed: o.onFailed } : {}),
  });
}

t.test('combineChannelWeights normalizes each channel over its holders', async (t) => {
  const inputs = [{ sampleCount: 30, batchCount: 2, channels: [0, 1] }, { sampleCount: 10, batchCount: 2, channels: [1] }];
  t.same(combineChannelWeights(inputs, 3, 'samples', 'balance'), [[1, 0.75, 0], [0, 0.25, 0]], 'ch0: A alone; ch1: 30/40, 10/40; ch2: nobody');
  t.same(combineChannelWeights(inputs, 2, 'equal', 'balance'), [[1, 0.5], [0, 0.5]]);
  const all = [{ sampleCount: 3, batchCount: 1 }, { sampleCount: 5, batchCount: 1 }, { sampleCount: 9, batchCount: 1 }];
  const w = combineWeights(all, 'samples', 'balance');
  t.same(combineChannelWeights(all, 2, 'samples', 'balance'), w.map((x) => [x, x]), 'every node holds every channel: the plain weights');
});

t.test('modalityChannelsOnWire: case-insensitive, errors name both lists', async (t) => {
  t.same(modalityChannelsOnWire(['t1', 't1c', 'T2', 'flair'], ['t2', 'T1']), [2, 0]);
  t.throws(() => modalityChannelsOnWire(['t1', 't2'], ['t1', 'dwi']), /unknown modality "dwi": this node holds \[t1, dwi\], the server's generator makes \[t1, t2\]/);
  t.throws(() => modalityChannelsOnWire(['t1', 't2'], ['t1', 'T1']), /named twice/);
});

t.test('server: a channel held by one node gets its full weight, a shared one the sample-weighted mean', async (t) => {
  const gen = new RecordingGenerator();
  const srv = await server(gen);
  t.teardown(() => srv.stop());
  t.same(srv.coordinator.config.modalities, MODALITIES, 'the config lists the modality names');
  // alpha holds t1 + flair (30 samples), beta only flair (10 samples): its t1 gradient is 0.
  const a = node(srv.url, 'alpha', { n: 30, grad: [1, 1], modalities: ['t1', 'flair'] });
  const b = node(srv.url, 'beta', { n: 10, grad: [0, 3], modalities: ['FLAIR'] });
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await a.start();
  await b.start();
  // The first rounds may run before beta has joined; take the first round both answered.
  const both = () => srv.coordinator.metrics().recentRounds.find((r) => r.onTime.length === 2 && r.lateApplied.length === 0);
  await waitFor(() => both() !== undefined, 10000, 'a round answered by both nodes');
  const summary = both()!;
  const k = summary.round;
  t.same(summary.channelWeights, { [`alpha@${k}`]: [1, 0.75], [`beta@${k}`]: [0, 0.25] }, 'per-channel weights in the summary');
  t.same(summary.weights, { [`alpha@${k}`]: 0.75, [`beta@${k}`]: 0.25 }, 'the per-node weights (for the losses) stay n_j / sum n');

  t.equal(gen.steps[k - 1]!.length, 1, 'one batch in that step');
  const [step] = gen.steps[k - 1]!;
  const g = step!.gradFakes;
  const plane = H * W;
  const rows = step!.batch.shape[0];
  t.equal(rows, 4, 'two masks from each node');
  // Rows are in node order (alpha, beta), 2 each.
  const channel = (row: number, c: number) => [...g.subarray((row * 2 + c) * plane, (row * 2 + c + 1) * plane)];
  for (const row of [0, 1]) {
    t.same(channel(row, 0), [1, 1, 1, 1], `alpha row ${row}, t1: alpha's gradient at full weight (was 0.75 before)`);
    t.same(channel(row, 1), [0.75, 0.75, 0.75, 0.75], `alpha row ${row}, flair: 30/40 x 1`);
  }
  for (const row of [2, 3]) {
    t.same(channel(row, 0), [0, 0, 0, 0], `beta row ${row}, t1: not held`);
    t.same(channel(row, 1), [0.75, 0.75, 0.75, 0.75], `beta row ${row}, flair: 10/40 x 3`);
  }
});

t.test('an unknown modality name: the server refuses the hello, the node gives up naming both lists', async (t) => {
  const gen = new RecordingGenerator();
  const srv = await server(gen);
  t.teardown(() => srv.stop());
  let reason: string | undefined;
  const a = node(srv.url, 'alpha', { n: 4, grad: [1, 0], modalities: ['t1', 'dwi'], onFailed: (why) => (reason = why) });
  t.teardown(() => a.stop());
  await a.start();
  await waitFor(() => a.state === 'failed', 5000, 'the node to give up');
  t.match(reason, /invalid_field: capabilities\.modalities: unknown modality "dwi": this node holds \[t1, dwi\], the server's generator makes \[t1, flair\]/);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(a.stats.connects, 1, 'no reconnect after the refusal');
  t.equal(srv.coordinator.metrics().nodes.find((n) => n.id === 'alpha')?.masks ?? 0, 0, 'no masks accepted');
});

t.test('the node refuses a server whose channel order differs from the one its discriminator reads', async (t) => {
  const gen = new RecordingGenerator();
  const srv = await server(gen);
  t.teardown(() => srv.stop());
  let reason: string | undefined;
  // This node's data has flair as channel 0; the server's generator makes [t1, flair].
  const a = node(srv.url, 'alpha', { n: 4, grad: [1, 0], modalities: ['flair'], modalityChannels: [0], onFailed: (why) => (reason = why) });
  t.teardown(() => a.stop());
  await a.start();
  await waitFor(() => a.state === 'failed', 5000, 'the node to give up');
  t.match(reason, /modality order differs: this node reads \[flair@0\], the server's generator makes \[t1, flair\]/);
  t.equal(gen.steps.length, 0, 'no round was answered');
});

t.test('without server names, modality tags stay informational (every channel counts)', async (t) => {
  const gen = new RecordingGenerator();
  const srv = await server(gen, null);
  t.teardown(() => srv.stop());
  t.equal(srv.coordinator.config.modalities, undefined);
  const a = node(srv.url, 'alpha', { n: 4, grad: [1, 2], modalities: ['anything'] });
  t.teardown(() => a.stop());
  await a.start();
  await waitFor(() => gen.steps.length >= 1, 10000, 'one generator step');
  t.same([...gen.steps[0]![0]!.gradFakes.subarray(0, 8)], [1, 1, 1, 1, 2, 2, 2, 2]);
});
