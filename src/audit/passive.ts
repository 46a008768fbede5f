/**
 * The passive reconstruction attack: an honest-but-curious server runs a normal federation (the
 * real server code and generator, N real `asyndgan node` processes) and only logs. Afterwards it
 * estimates each logged image per pixel from the sign constraints of its replies (grad > 0: real <
 * fake; grad < 0: real > fake), robustly (the threshold violating the fewest constraints), starting
 * from its generator's own output for the mask. Returns the estimates and the trained generator.
 */
import { randomBytes } from 'node:crypto';
import { Adam, noGrad, tensor, tidy } from '../engine/index.js';
import { EngineGenerator } from '../federation/generator-backend.js';
import type { ResnetGenerator } from '../models/index.js';
import { GeneratorServer, silentLogger, type ServerMetrics } from '../net/index.js';
import { makeGenerator, type GanConfig } from '../train/pix2pix.js';
import { LoggingGenerator } from './logging-generator.js';
import { startNodeProcess, type NodeProcess } from './node-process.js';
import { estimateFromConstraints } from './sign-estimators.js';

export interface PassiveAttackOptions {
  config: GanConfig;
  maskChannels: number;
  modalities: readonly string[];
  size: number;
  batchSize: number;
  rounds: number;
  roundTimeoutMs: number;
  nodes: number;
  /** Flags of node k after --server/--id (data, index, model, privacy). */
  nodeArgs: (k: number) => string[];
  onRound?: (round: number, metrics: () => ServerMetrics) => void;
}

export interface PassiveAttackResult {
  generator: ResnetGenerator;
  /** Per logged key: every fake sent and every gradient returned. */
  logged: LoggingGenerator['log'];
  /** The uploaded masks by key (what the server holds). */
  masks: Map<string, Float32Array>;
  metrics: ServerMetrics;
  nodeLogs: Record<string, string>;
  nodeIds: string[];
}

export async function runPassiveFederation(o: PassiveAttackOptions): Promise<PassiveAttackResult> {
  const ids = [...Array(o.nodes).keys()].map((i) => `hospital-${String.fromCharCode(97 + i)}`);
  const tokens = Object.fromEntries(ids.map((id) => [id, randomBytes(16).toString('hex')]));
  const g = makeGenerator(o.config, o.maskChannels, o.modalities.length);
  const optimizer = new Adam(g.namedParameters().map(([name, t]) => ({ name, tensor: t })), { lr: o.config.lr, betas: [o.config.beta1, 0.999] });
  let server: GeneratorServer | undefined;
  const allMasks = function* (): Iterable<[string, Float32Array]> {
    for (const id of ids) yield* server!.coordinator.registry.get(id)?.masks ?? [];
  };
  const logger = new LoggingGenerator(new EngineGenerator(g, optimizer, o.config), o.modalities.length * o.size * o.size, allMasks);
  server = await GeneratorServer.start({
    generator: logger, tokens,
    session: { maskChannels: o.maskChannels, imageChannels: o.modalities.length, modalities: o.modalities, height: o.size, width: o.size, batchSize: o.batchSize, lambdaL1: o.config.lambdaL1 },
    roundTimeoutMs: o.roundTimeoutMs, maxStaleness: 1, checkpointEvery: 0, maxRounds: o.rounds, seed: o.config.seed, log: silentLogger, shutdownGraceMs: 1000,
    onRound: (s) => o.onRound?.(s.round, () => server!.metrics()),
  });
  const procs: NodeProcess[] = ids.map((id, k) => startNodeProcess({ url: server!.url, id, token: tokens[id]!, args: [...o.nodeArgs(k), '--quiet'] }));
  try {
    const allExited = Promise.all(procs.map((p) => p.exited));
    await Promise.race([server.coordinator.waitForRound(o.rounds, o.rounds * o.roundTimeoutMs + 120_000).catch(() => undefined), allExited]);
  } finally {
    await server.stop();
    await Promise.all(procs.map((p) => p.stop()));
  }
  const masks = new Map(allMasks());
  return {
    generator: g, logged: logger.log, masks, metrics: server.metrics(), nodeIds: ids,
    nodeLogs: Object.fromEntries(ids.map((id, k) => [id, procs[k]!.log()])),
  };
}

/** The generator's output (eval mode) for each mask, one image per mask. */
export async function renderMasks(g: ResnetGenerator, masks: readonly Float32Array[], maskShape: readonly [number, number, number], batch = 16): Promise<Float32Array[]> {
  g.eval();
  const out: Float32Array[] = [];
  const per = maskShape[0] * maskShape[1] * maskShape[2];
  for (let i = 0; i < masks.length; i += batch) {
    const chunk = masks.slice(i, i + batch);
    const data = new Float32Array(chunk.length * per);
    chunk.forEach((m, j) => data.set(m, j * per));
    const t = noGrad(() => tidy(() => g.forward(tensor(data, [chunk.length, ...maskShape]))));
    const values = await t.read();
    t.dispose();
    const img = values.length / chunk.length;
    for (let j = 0; j < chunk.length; j++) out.push(values.slice(j * img, (j + 1) * img));
  }
  return out;
}

/** The curious server's reconstruction of one logged image, starting from `prior` (its G(mask)). */
export function passiveEstimate(logged: { fakes: Float32Array[]; grads: Float32Array[] }, prior: Float32Array, priorWeight = 0): Float32Array {
  return estimateFromConstraints(logged.fakes, logged.grads, prior, priorWeight);
}
