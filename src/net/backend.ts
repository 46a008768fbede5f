/**
 * What the network layer needs from the models. The server and node are written against
 * these interfaces only, so they work (and are tested) without the tensor engine; the real
 * generator and discriminator implement them later.
 *
 * Layout of every tensor here: Float32Array, row-major [n, C, H, W].
 */
import type { AugParams, Losses, SessionConfig } from './protocol.js';

/** [n, C, H, W] */
export type Shape4 = readonly [number, number, number, number];

/**
 * One generator batch: the masks fed to `generate`. The same object comes back in
 * `GeneratorStep.batch`, so a backend may cache activations keyed by object identity
 * (e.g. in a WeakMap) and must recompute the forward pass for a batch it no longer holds.
 */
export interface GeneratorBatch {
  /** Round that produced this batch. */
  readonly round: number;
  readonly masks: Float32Array;
  readonly shape: Shape4;
  /**
   * Rows per node, in order (they sum to shape[0]); set under the vote modes of aggregation, so
   * that a backend may run one forward pass per node and back-propagate each node's vote through
   * its own rows only. Undefined: one batch.
   */
  readonly segments?: readonly number[];
}

/** Gradient for one earlier `generate` call, already weighted by the server. */
export interface GeneratorStep {
  readonly batch: GeneratorBatch;
  /**
   * d(total loss)/d(fakes), shape [batch.shape[0], imageChannels, H, W]. Rows of nodes that
   * did not answer are zero (correct: their outputs are not part of the loss).
   */
  readonly gradFakes: Float32Array;
  /** The rows of `batch` this gradient covers (`gradFakes` then holds those rows only). Default: all rows. */
  readonly rows?: { readonly offset: number; readonly count: number };
}

/**
 * How `applyVotes` combines the votes' parameter gradients:
 *  - 'trimmed-mean': coordinate-wise, drop the `trim` smallest and largest values and average the
 *    rest (trim = floor((m - 1) / 2): the median);
 *  - 'median-trust': weigh vote i by `weights[i]` times its alignment with the coordinate-wise
 *    median (aggregate.ts `medianTrustCoefficients`).
 */
export type VoteRule = { kind: 'trimmed-mean'; trim: number } | { kind: 'median-trust'; weights: readonly number[] };

/** What `applyVotes` reports. */
export interface VoteOutcome {
  /** 'median-trust': each vote's trust in [0, 1] (0: it pointed away from the median and was not used). */
  trust?: number[];
}

/**
 * Thrown by `applyGradients` when it refused a step whose update or optimizer moments would not
 * be finite; the generator's weights and moments are unchanged. The server logs it and goes on.
 */
export class GeneratorStepSkipped extends Error {
  override readonly name = 'GeneratorStepSkipped';
}

/** The central generator. Calls are never concurrent: the server awaits each before the next. */
export interface GeneratorBackend {
  /** Fakes [n, imageChannels, H, W] for the batch's masks. */
  generate(batch: GeneratorBatch): Promise<Float32Array>;
  /**
   * Back-propagate the sum of all `steps` through the generator (each at its own batch's
   * activations; a late step refers to an earlier batch) and take ONE optimizer step.
   * Never called with an empty array.
   */
  applyGradients(steps: readonly GeneratorStep[]): Promise<void>;
  /**
   * The robust step behind the vote modes of aggregation ('coordinate-median', 'median-trust'):
   * each vote is one reply, unweighted: d(that node's loss)/d(fakes) at its `rows` of the batch. Back-propagate every vote on its own, combine the m parameter gradients by
   * `rule`, and take ONE optimizer step. Optional: a server configured for a vote mode refuses to
   * start with a backend that lacks it. Returns each vote's trust under 'median-trust'.
   */
  applyVotes?(votes: readonly GeneratorStep[], rule: VoteRule): Promise<VoteOutcome | void>;
  /** Everything needed to resume (weights, optimizer moments, step counter). */
  saveState(): Promise<Uint8Array>;
  loadState(bytes: Uint8Array): Promise<void>;
}

/** Input of one discriminator round on a node. */
export interface DiscriminatorInput {
  readonly round: number;
  /** Keys of the samples, in order; the backend looks up its real images by key. */
  readonly keys: readonly string[];
  /** The node's masks for these keys, already augmented with `aug`: [n, maskChannels, H, W]. */
  readonly masks: Float32Array;
  /** Fakes from the server: [n, imageChannels, H, W]. */
  readonly fakes: Float32Array;
  readonly fakeShape: Shape4;
  /** Per key: apply to the real image too (see applyAugmentation), so real and fake match. */
  readonly aug: readonly AugParams[] | undefined;
}

/** Result of one discriminator round. */
export interface DiscriminatorOutput {
  /**
   * d(L_G)/d(fakes), same shape as fakes, where L_G = gGan + lambdaL1 * gL1 and each term is
   * a mean over this batch. Must be finite (the server rejects NaN/Inf).
   */
  readonly gradFakes: Float32Array;
  readonly losses: Losses;
}

/** A hospital's discriminator. Its real images and weights never leave it. */
export interface DiscriminatorBackend {
  /** Called with the server's session config on every welcome (e.g. to read lambdaL1). */
  configure?(config: SessionConfig): void | Promise<void>;
  /** One D update on real vs fake, then the generator-loss gradient w.r.t. the fakes. */
  step(input: DiscriminatorInput): Promise<DiscriminatorOutput>;
  saveState(): Promise<Uint8Array>;
  loadState(bytes: Uint8Array): Promise<void>;
}
