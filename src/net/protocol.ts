/**
 * The AsynDGAN wire protocol, version 2: message shapes, error codes and limits.
 * Version 2 adds the node's privacy refusals (`config_refused`, `query_refused`,
 * `privacy_budget_spent`) and the server's defences against hostile peers (`identity_in_use`,
 * `quota_exceeded`, `rate_limited`); docs/PROTOCOL.md lists what changed since version 1.
 *
 * Everything a peer may send is declared here, so "what can leave a hospital" is a
 * question answered by reading this file: the node-to-server messages carry masks,
 * gradients with respect to fakes, scalar losses and metrics, and nothing else.
 * There is deliberately no field able to carry a real image. docs/PROTOCOL.md is the
 * prose version of this file for implementers in other languages.
 */

/** Version spoken by this implementation. A peer announcing another version is refused. */
export const PROTOCOL_VERSION = 2;

/**
 * Element types a tensor may travel in, all IEEE 754, little-endian:
 *  - 'f32'  binary32;
 *  - 'f16'  binary16, value = element (underflows below 6e-8: unfit for gradients);
 *  - 'f16s' scaled binary16: value = element * `scale`, one positive finite scale per tensor. The
 *           sender picks scale = 2^(ceil(log2(max |x|)) - 15), so the largest magnitude lands just
 *           under 2^15 and a tensor of 1e-8 gradients keeps 11 significant bits instead of
 *           flushing to zero; half the bytes of f32. Sent only to peers that list it in
 *           `capabilities.dtypes` (added after version 2 shipped: older peers never receive it).
 */
export type Dtype = 'f32' | 'f16' | 'f16s';
export const DTYPES: readonly Dtype[] = ['f32', 'f16', 'f16s'];
/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { f32: 4, f16: 2, f16s: 2 };

/** A tensor on the wire: row-major (C order) elements, little-endian bytes. */
export interface WireTensor {
  dtype: Dtype;
  /** Dimensions, each a non-negative safe integer; product * DTYPE_BYTES[dtype] === data.byteLength. */
  shape: number[];
  /** Raw little-endian element bytes (msgpack `bin`). */
  data: Uint8Array;
  /**
   * Required with 'f16s' and refused with any other dtype: the factor every element is multiplied
   * by, a finite number > 0 with scale * 65504 finite in f32 (so no decoded value can overflow).
   */
  scale?: number;
}

/**
 * Augmentation applied by the server to a mask before running the generator. The node
 * must apply the same transform to the real image it pairs with that key, so the
 * discriminator compares like with like. Unknown fields are a validation error (an
 * ignored augmentation would silently mis-train).
 */
export interface AugParams {
  /** Mirror along the width axis (x -> W-1-x). */
  flipH?: boolean;
  /** Mirror along the height axis (y -> H-1-y). */
  flipV?: boolean;
}

/** What a node can do, announced in hello. */
export interface Capabilities {
  /** Dtypes the node can decode and encode; must include 'f32'. */
  dtypes: Dtype[];
  /**
   * Names of the modalities (image channels) this node holds, e.g. ['t1', 't2']. When the server
   * lists `config.modalities`, every name must be one of them (case-insensitive; the hello is
   * refused otherwise) and the node's gradient counts only on those channels. Absent: all channels.
   */
  modalities?: string[];
}

/** Session configuration the server hands to each node in `welcome`. */
export interface SessionConfig {
  /** Channels of a mask (generator input). */
  maskChannels: number;
  /** Channels of an image (generator output, discriminator input besides the mask). */
  imageChannels: number;
  height: number;
  width: number;
  /** Weight of the L1 term in the generator loss the node differentiates. */
  lambdaL1: number;
  /** Largest number of samples in one roundRequest to this node. */
  batchSize: number;
  /** Dtype of `fakes` the server sends this node; the node may answer in any dtype it announced. */
  wireDtype: Dtype;
  /** Frames larger than this (bytes) are refused by the server. */
  maxFrameBytes: number;
  /** Replies later than this after the request are treated as late (ms). */
  roundTimeoutMs: number;
  /** Late replies older than this many rounds are dropped. */
  maxStaleness: number;
  sampling: SamplingMode;
  weighting: WeightingMode;
  /** Names of the generator's output channels, in channel order (imageChannels entries), when the server has them. */
  modalities?: string[];
  /**
   * What mask values the server accepts: 'one-hot' (each pixel's maskChannels values are 0 or 1
   * and sum to 1) or 'binary' (each value is 0 or 1). Absent: 'one-hot' when maskChannels >= 2,
   * 'binary' for a single channel.
   */
  maskEncoding?: MaskEncoding;
}

/** How masks encode their classes; see SessionConfig.maskEncoding. */
export type MaskEncoding = 'one-hot' | 'binary';
export const MASK_ENCODINGS: readonly MaskEncoding[] = ['one-hot', 'binary'];

/** How the server draws masks each round. */
export type SamplingMode = 'balance' | 'uniform';
/** How the server weights the node gradients it combines. */
export type WeightingMode = 'samples' | 'equal';

/** Discriminator and generator losses computed by the node for one round (means over its batch). */
export interface Losses {
  /** BCE-with-logits of D on real images against label 1 (before the D step). */
  dReal: number;
  /** BCE-with-logits of D on fakes against label 0 (before the D step). */
  dFake: number;
  /** BCE-with-logits of D on fakes against label 1 (after the D step): the generator's GAN loss. */
  gGan: number;
  /** Mean absolute error between fakes and real images, NOT multiplied by lambdaL1. */
  gL1: number;
}

// ---- node -> server ----------------------------------------------------------------

/** First frame of every connection, node to server. */
export interface HelloMsg {
  type: 'hello';
  protocolVersion: number;
  nodeId: string;
  token: string;
  capabilities: Capabilities;
}

/** Masks (generator conditions) the node contributes. May be sent again to add or replace keys. */
export interface MaskUploadMsg {
  type: 'maskUpload';
  /** One unique key per mask, so later requests can name the sample. */
  keys: string[];
  /** Shape [keys.length, maskChannels, height, width]. */
  masks: WireTensor;
  /** n_j: number of training samples the node holds (used for 'samples' weighting). */
  sampleCount: number;
}

/** The node's answer to a roundRequest: d(loss)/d(fakes) and its losses. */
export interface GradientReplyMsg {
  type: 'gradientReply';
  round: number;
  /** Exactly the keys of the request, same order. */
  keys: string[];
  /** Same shape as the request's fakes; finite values only. */
  grad: WireTensor;
  losses: Losses;
}

// ---- server -> node ----------------------------------------------------------------

/** Server's reply to a valid hello. */
export interface WelcomeMsg {
  type: 'welcome';
  protocolVersion: number;
  sessionId: string;
  nodeId: string;
  /** Last finished round on the server. */
  round: number;
  config: SessionConfig;
  /** Mask keys the server already holds for this node (e.g. after a reconnect); no need to resend them. */
  knownKeys: string[];
}

/** Server's acknowledgement of a maskUpload. */
export interface MaskAckMsg {
  type: 'maskAck';
  /** Number of masks accepted from this upload. */
  accepted: number;
  /** Masks now held for this node. */
  total: number;
}

/** Work for one round: the node's own fakes only. */
export interface RoundRequestMsg {
  type: 'roundRequest';
  round: number;
  keys: string[];
  /** Shape [keys.length, imageChannels, height, width]. */
  fakes: WireTensor;
  /** Augmentation applied to each key's mask (same length as keys), if any. */
  aug?: AugParams[];
}

// ---- either direction ----------------------------------------------------------------

/** Informational counters; never required, never answered. */
export interface StatusMsg {
  type: 'status';
  /** Sender's view of the last finished round. */
  round: number;
  /** Named finite numbers, e.g. {dSteps: 12}. */
  metrics: Record<string, number>;
}

/** Machine-readable error codes carried by `error` frames. */
export const ERROR_CODES = [
  'bad_frame', // not msgpack, trailing bytes, or not a map
  'frame_too_large', // larger than maxFrameBytes
  'unknown_type', // `type` missing or not a known message type for this direction
  'invalid_field', // a field is missing, of the wrong type, or out of range
  'shape_mismatch', // tensor shape disagrees with its data, the session config or the request
  'non_finite', // NaN or +-Inf in a tensor or loss
  'unsupported_version', // protocolVersion is not PROTOCOL_VERSION (fatal)
  'auth_failed', // unknown nodeId or wrong token (fatal)
  'not_authenticated', // anything but hello before welcome (fatal)
  'unexpected', // valid message at the wrong time, e.g. a second hello, a reply to a round not asked
  'stale', // late reply dropped because its staleness exceeds maxStaleness
  'too_many_errors', // abuse limit reached; connection closes (fatal)
  'replaced', // another connection authenticated with the same nodeId (fatal)
  'identity_in_use', // a connection is already authenticated as this nodeId; the newcomer is refused (fatal)
  'quota_exceeded', // a byte or count budget (masks per node, masks in total, connections) is spent
  'rate_limited', // too many failed logins from this address; retry later (fatal)
  'config_refused', // node to server: a session parameter exceeds the node's own limits (fatal)
  'query_refused', // node to server: this request is declined (key asked too often, fakes out of range); carries round
  'privacy_budget_spent', // node to server: the node's epsilon budget is spent; it answers no more rounds (fatal)
  'internal', // the receiver failed while processing a valid message
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Error report. `fatal: true` means the sender closes the connection right after. */
export interface ErrorMsg {
  type: 'error';
  code: ErrorCode;
  message: string;
  /** Path of the offending field, e.g. "grad.shape[1]", when known. */
  field?: string;
  /** `type` of the offending message, when known. */
  offendingType?: string;
  /** Round the error relates to, when known. */
  round?: number;
  fatal: boolean;
}

/** Polite close, either direction. */
export interface GoodbyeMsg {
  type: 'goodbye';
  reason: string;
  /**
   * Why, for programs (server to node): 'training_done' means the run is over and reconnecting is
   * pointless; absent (or another value) means a shutdown the node may wait out by reconnecting.
   */
  code?: string;
}

/** goodbye.code when the server has trained its last round. */
export const GOODBYE_TRAINING_DONE = 'training_done';

/** Messages a node may send. Note: no member has a field for real images. */
export type NodeToServer = HelloMsg | MaskUploadMsg | GradientReplyMsg | StatusMsg | ErrorMsg | GoodbyeMsg;
/** Messages a server may send. */
export type ServerToNode = WelcomeMsg | MaskAckMsg | RoundRequestMsg | StatusMsg | ErrorMsg | GoodbyeMsg;
export type Message = NodeToServer | ServerToNode;
export type MessageType = Message['type'];

export const NODE_TO_SERVER_TYPES: readonly NodeToServer['type'][] = [
  'hello', 'maskUpload', 'gradientReply', 'status', 'error', 'goodbye',
];
export const SERVER_TO_NODE_TYPES: readonly ServerToNode['type'][] = [
  'welcome', 'maskAck', 'roundRequest', 'status', 'error', 'goodbye',
];

/** Which side is receiving: decides which message types are acceptable. */
export type Direction = 'toServer' | 'toNode';

/** Default largest frame: 64 MiB (a 16 x 3 x 256 x 256 f32 batch is 12 MiB). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** Structural limits applied by validation, independent of session state. */
export interface ValidationLimits {
  maxFrameBytes: number;
  /** Most keys in one message. */
  maxKeys: number;
  /** Longest key, node id, token (UTF-16 code units). */
  maxKeyLength: number;
  maxStringLength: number;
  /** Most entries in status.metrics / capabilities lists. */
  maxListEntries: number;
}

export const DEFAULT_LIMITS: Readonly<ValidationLimits> = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  maxKeys: 65536,
  maxKeyLength: 256,
  maxStringLength: 4096,
  maxListEntries: 64,
};

/** A protocol violation, carrying what is needed to build an `error` frame. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly offendingType: string | undefined;
  readonly fatal: boolean;
  constructor(code: ErrorCode, message: string, opts: { field?: string; offendingType?: string; fatal?: boolean } = {}) {
    // No stack trace: these are expected (one per bad frame, possibly hostile traffic), their
    // stack says nothing, and capturing it costs more than validating the frame.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'ProtocolError';
    this.code = code;
    this.field = opts.field;
    this.offendingType = opts.offendingType;
    this.fatal = opts.fatal ?? false;
  }
}

/** Build the error frame describing `e` (anything thrown while handling a frame). */
export function errorMessageFor(e: unknown, extra: { offendingType?: string; round?: number; fatal?: boolean } = {}): ErrorMsg {
  const pe = e instanceof ProtocolError ? e : undefined;
  const msg: ErrorMsg = {
    type: 'error',
    code: pe ? pe.code : 'internal',
    message: truncate(e instanceof Error ? e.message : String(e), 1000),
    fatal: extra.fatal ?? pe?.fatal ?? false,
  };
  const field = pe?.field;
  const offendingType = pe?.offendingType ?? extra.offendingType;
  if (field !== undefined) msg.field = field;
  if (offendingType !== undefined) msg.offendingType = offendingType;
  if (extra.round !== undefined) msg.round = extra.round;
  return msg;
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}
