/**
 * `node --import tsx tools/fedavg-bytes.ts [--size 256 --ngf 64 --ndf 64 --blocks 9] [--nodes 3] [--batch-size 1] [--rounds 3]`
 *
 * Bytes on the wire per round of AsynDGAN and of FedAvg-GAN for one architecture, MEASURED on the
 * real transports (uWebSockets.js server, `ws` clients, msgpack frames, counted frame by frame by
 * the servers) but with stand-in arithmetic, so that the paper's size runs on a CPU in seconds:
 * the AsynDGAN server's generator returns random fakes and the nodes random finite gradients;
 * the FedAvg sites send back the global model plus noise. Frame sizes depend only on the shapes
 * (no compression), so the counts are those of real training at that size; tools/fedavg-sweep.ts
 * cross-checks them at 32x32 against real runs. Prints one line per algorithm and a JSON summary.
 */
import { init } from '../src/engine/index.js';
import { startServer } from '../src/net/server.js';
import { DiscriminatorNode } from '../src/net/node.js';
import type { DiscriminatorBackend, GeneratorBackend } from '../src/net/backend.js';
import { FedAvgNode, FedAvgServer, modelLayout, readModel, type LocalGan } from '../src/fedavg/index.js';
import { DEFAULT_GAN_CONFIG, Pix2pixTrainer } from '../src/train/pix2pix.js';
import { toolArgs } from './tool-args.js';

const USAGE = `
usage: node --import tsx tools/fedavg-bytes.ts [options]
  bytes on the wire per round of AsynDGAN and FedAvg-GAN (real transports, stand-in arithmetic)

  --size N --ngf N --ndf N --blocks N   architecture (256, 64, 64, 9)
  --classes N --modalities N            mask classes and image channels (4, 4)
  --nodes N        sites (3)
  --batch-size N   masks per node per round (1)
  --rounds N       rounds of each algorithm (3)
  --masks N        masks each AsynDGAN node uploads (8)
`;

const v = toolArgs('tools/fedavg-bytes.ts', USAGE, {
  size: { type: 'string', default: '256' },
  ngf: { type: 'string', default: '64' },
  ndf: { type: 'string', default: '64' },
  blocks: { type: 'string', default: '9' },
  classes: { type: 'string', default: '4' },
  modalities: { type: 'string', default: '4' },
  nodes: { type: 'string', default: '3' },
  'batch-size': { type: 'string', default: '1' },
  rounds: { type: 'string', default: '3' },
  masks: { type: 'string', default: '8' },
});
const size = Number(v.size);
const classes = Number(v.classes);
const channels = Number(v.modalities);
const nodes = Number(v.nodes);
const batch = Number(v['batch-size']);
const rounds = Number(v.rounds);
const ids = [...Array(nodes).keys()].map((i) => `site-${i}`);
const tokens = Object.fromEntries(ids.map((id) => [id, `token-${id}-0123456789`]));
const noise = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, () => (Math.random() - 0.5) * s);
const MAX_FRAME = 256 * 2 ** 20;

async function asyndgan(): Promise<{ perRound: number[]; total: number }> {
  const generator: GeneratorBackend = {
    generate: async (b) => noise(b.shape[0] * channels * size * size, 2),
    applyGradients: async () => {},
    saveState: async () => new Uint8Array(0),
    loadState: async () => {},
  };
  const perRound: number[] = [];
  const server = await startServer({
    generator, tokens, port: 0, session: { maskChannels: classes, imageChannels: channels, height: size, width: size, batchSize: batch, lambdaL1: 100 },
    minNodes: nodes, maxRounds: rounds, checkpointEvery: 0, maxFrameBytes: MAX_FRAME, onRound: (s) => perRound.push(s.bytesIn + s.bytesOut), shutdownGraceMs: 200,
  });
  const n = Number(v.masks);
  const plane = size * size;
  const masks = new Float32Array(n * classes * plane);
  for (let k = 0; k < n; k++) for (let p = 0; p < plane; p++) masks[(k * classes + (p % classes)) * plane + p] = 1; // one-hot
  const list = ids.map((id) => {
    const backend: DiscriminatorBackend = {
      step: async (input) => ({ gradFakes: noise(input.fakes.length, 1e-3), losses: { dReal: 0.7, dFake: 0.7, gGan: 0.7, gL1: 0.3 } }),
      saveState: async () => new Uint8Array(0),
      loadState: async () => {},
    };
    return new DiscriminatorNode({
      url: server.url, nodeId: id, token: tokens[id]!, backend, privacy: 'off', maxFrameBytes: MAX_FRAME,
      masks: { keys: [...Array(n).keys()].map((k) => `${id}-${k}`), data: masks, shape: [n, classes, size, size] },
    });
  });
  await Promise.all(list.map((x) => x.start()));
  await server.coordinator.waitForRound(rounds, 600_000);
  const m = server.metrics();
  await server.stop();
  await Promise.all(list.map((x) => x.stop()));
  return { perRound, total: m.totals.bytesIn + m.totals.bytesOut };
}

async function fedavg(): Promise<{ perRound: number[]; total: number; params: { G: number; D: number } }> {
  await init();
  const cfg = { ...DEFAULT_GAN_CONFIG, ngf: Number(v.ngf), ndf: Number(v.ndf), blocks: Number(v.blocks) };
  const t = new Pix2pixTrainer(cfg, classes, channels);
  const lg = await modelLayout(t.generator);
  const ld = await modelLayout(t.discriminator);
  const initial = { G: await readModel(t.generator, lg.names), D: await readModel(t.discriminator, ld.names) };
  const params = { G: t.generator.numParameters(), D: t.discriminator.numParameters() };
  t.generator.dispose();
  t.discriminator.dispose();
  const perRound: number[] = [];
  const layouts = { G: lg.layout, D: ld.layout };
  const server = await FedAvgServer.start({
    tokens, port: 0, initial, layouts, minNodes: nodes, maxRounds: rounds, checkpointEvery: 0, maxFrameBytes: MAX_FRAME, shutdownGraceMs: 200,
    session: { localSteps: 1, batchSize: batch, lambdaL1: 100, lr: 2e-4, beta1: 0.5, totalSteps: rounds, decaySteps: 0 },
    onRound: (s) => perRound.push(s.bytesIn + s.bytesOut),
  });
  const list = ids.map((id) => {
    let w = initial;
    const gan: LocalGan = {
      layouts, sampleCount: 10,
      load: (m) => (w = m),
      train: async () => ({ dReal: 0.7, dFake: 0.7, gGan: 0.7, gL1: 0.3 }),
      read: async () => ({ G: w.G.map((x) => x.map((y) => y + (Math.random() - 0.5) * 1e-4)), D: w.D.map((x) => x.map((y) => y + (Math.random() - 0.5) * 1e-4)) }),
      saveState: async () => new Uint8Array(0),
      loadState: async () => {},
    };
    return new FedAvgNode({ url: server.url, nodeId: id, token: tokens[id]!, gan, maxFrameBytes: MAX_FRAME });
  });
  await Promise.all(list.map((x) => x.start()));
  await server.coordinator.waitForRound(rounds, 600_000);
  const m = server.metrics();
  await server.stop();
  await Promise.all(list.map((x) => x.stop()));
  return { perRound, total: m.totals.bytesIn + m.totals.bytesOut, params };
}

const mean = (x: number[]): number => x.reduce((s, y) => s + y, 0) / Math.max(1, x.length);
const a = await asyndgan();
const f = await fedavg();
const mib = (b: number): string => (b / 2 ** 20).toFixed(3);
console.log(`${size}x${size}, ngf ${v.ngf}, ndf ${v.ndf}, ${v.blocks} blocks, ${nodes} nodes, batch ${batch}: G ${f.params.G} parameters, D ${f.params.D}`);
console.log(`asyndgan: ${mib(mean(a.perRound))} MiB per round (= per generator update), ${mib(a.total)} MiB in ${rounds} rounds incl. the one-off mask upload`);
console.log(`fedavg-gan: ${mib(mean(f.perRound))} MiB per round = ${mib(mean(f.perRound) / 16)} MiB per generator update at E = 16; ratio to asyndgan per update: E=1 ${(mean(f.perRound) / mean(a.perRound)).toFixed(1)}x, E=4 ${(mean(f.perRound) / 4 / mean(a.perRound)).toFixed(1)}x, E=16 ${(mean(f.perRound) / 16 / mean(a.perRound)).toFixed(1)}x`);
console.log(JSON.stringify({ size, ngf: Number(v.ngf), ndf: Number(v.ndf), blocks: Number(v.blocks), nodes, batch, params: f.params, asyndganPerRound: mean(a.perRound), fedavgPerRound: mean(f.perRound), asyndganTotal: a.total, fedavgTotal: f.total }));
process.exit(0);
