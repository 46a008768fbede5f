/**
 * The active reconstruction attack: a malicious server against one real `asyndgan node` process.
 * The server is the project's own GeneratorServer (real sockets, real protocol) with a
 * BisectionGenerator as its generator, asking the victim about every one of its masks each round.
 * Returns the attacker's reconstructions only; scoring against the real images happens elsewhere.
 */
import { randomBytes } from 'node:crypto';
import { GeneratorServer, silentLogger, type ServerMetrics } from '../net/index.js';
import { BisectionGenerator } from './bisection-generator.js';
import { ESTIMATORS } from './sign-estimators.js';
import { startNodeProcess } from './node-process.js';

export interface ActiveAttackOptions {
  /** Session geometry the server announces (public). */
  maskChannels: number;
  modalities: readonly string[];
  size: number;
  /** Masks the server asks about per round (the victim's whole share when it has no more). */
  batchSize: number;
  /** The lambdaL1 the malicious session config names. */
  lambdaL1: number;
  rounds: number;
  repeats: number;
  roundTimeoutMs: number;
  /** Victim node flags after --server/--id (data, index, model, privacy). */
  nodeArgs: readonly string[];
  /** The attacker's guess with no replies (e.g. the population mean image). */
  prior: Float32Array;
  onRound?: (round: number) => void;
}

export interface ActiveAttackResult {
  /** Per estimator name (ESTIMATORS), per key: the reconstruction. */
  estimates: Map<string, Map<string, Float32Array>>;
  answers: Record<string, number>;
  rounds: number;
  answeredReplies: number;
  emptyReplies: number;
  /** The victim's status metrics as last reported (epsilon etc., when the node reports them). */
  reported: Record<string, number>;
  nodeExitCode: number | null;
  nodeLog: string;
  metrics: ServerMetrics;
}

export async function runActiveAttack(o: ActiveAttackOptions): Promise<ActiveAttackResult> {
  const id = 'victim';
  const token = randomBytes(16).toString('hex');
  let server: GeneratorServer | undefined;
  const attacker = new BisectionGenerator(
    { imageShape: [o.modalities.length, o.size, o.size], repeats: o.repeats },
    () => server!.coordinator.registry.get(id)?.masks ?? new Map(),
  );
  server = await GeneratorServer.start({
    generator: attacker,
    tokens: { [id]: token },
    session: { maskChannels: o.maskChannels, imageChannels: o.modalities.length, modalities: o.modalities, height: o.size, width: o.size, batchSize: o.batchSize, lambdaL1: o.lambdaL1 },
    roundTimeoutMs: o.roundTimeoutMs,
    maxStaleness: 0,
    checkpointEvery: 0,
    maxRounds: o.rounds,
    seed: 1,
    log: silentLogger,
    shutdownGraceMs: 500,
    onRound: (s) => o.onRound?.(s.round),
  });
  const victim = startNodeProcess({ url: server.url, id, token, args: [...o.nodeArgs, '--quiet'] });
  let exitCode: number | null = null;
  void victim.exited.then((c) => (exitCode = c));
  try {
    // Ends when the rounds are done or the victim quits (e.g. its privacy budget is spent).
    // A node that keeps refusing (and reconnecting) must not hang the audit: give up after every
    // round could have timed out once, plus start-up time.
    const deadlineMs = o.rounds * o.roundTimeoutMs + 120_000;
    await Promise.race([server.coordinator.waitForRound(o.rounds, deadlineMs).catch(() => undefined), victim.exited]);
    if (exitCode !== null && server.round === 0) {
      throw new Error(`the victim node exited with code ${exitCode} before answering:\n${victim.log().slice(-2000)}`);
    }
  } finally {
    await server.stop();
    await victim.stop();
  }
  const metrics = server.metrics();
  const estimates = new Map(ESTIMATORS.map((e) => [e.name, new Map(attacker.keys().map((k) => [k, attacker.estimate(k, o.prior, e.priorWeight)]))]));
  const answers: Record<string, number> = Object.fromEntries(attacker.keys().map((k) => [k, attacker.answers(k)]));
  return {
    estimates, answers, rounds: metrics.round, answeredReplies: attacker.answeredReplies, emptyReplies: attacker.emptyReplies,
    reported: metrics.nodes.find((n) => n.id === id)?.stats.reported ?? {}, nodeExitCode: exitCode, nodeLog: victim.log(), metrics,
  };
}
