/**
 * Batch normalization and instance normalization (NCHW), with PyTorch semantics.
 *
 * Both share the kernels of shaders/norm.wgsl: statistics are reduced per (plane, chunk) by one
 * workgroup each (two-pass mean / squared deviations inside the chunk), then merged per channel
 * with Chan's formula (one thread per channel). The forward is then (x - mean) * scale + bias per
 * element with scale = weight * invstd per group. The backward reduces sum(dy) and sum(dy * xhat)
 * the same way and applies dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) per element.
 *
 * In training, groups of at most NORM_FUSED_MAX elements take the fused kernels instead: one
 * dispatch forward (statistics, running averages, normalization, optional residual add and
 * ReLU / leaky ReLU) and one backward, instead of 4 + 3 plus the activation's and the add's own.
 * Larger groups keep the split reductions and apply the residual and activation as separate ops.
 */
import { record } from '../autograd.js';
import { oneSubgroupHolds } from '../device.js';
import { engine, grid, MAX_GROUPS } from '../engine.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { add, leakyRelu, relu } from './elementwise.js';
import { fmtShape, launch1d, rank, sameShape } from './launch.js';

const FILE = 'norm.wgsl';
/** Elements per chunk when a plane is split over several workgroups. */
export const NORM_CHUNK = 8192;
/** Planes up to this size are reduced by one workgroup each (no split). */
export const NORM_MAX_UNSPLIT = 12288;
/**
 * Workgroup size of the chunk reductions. 64 measured best on lavapipe (fewer coroutines per
 * barrier, per-workgroup cost amortized over more elements) and suits GPUs' wave sizes.
 */
const REDUCE_WG = 64;
/** Workgroup size of the per-element kernels (the shader's default WG) and elements per invocation. */
const ELEM_WG = 256;
const ELEMS = 8;
/**
 * Workgroup width of the fused kernels on CPU adapters: one 8-wide SIMD row on lavapipe, so a
 * workgroup is one vector loop, and one subgroup: its sums need no barrier (norm_subgroup.wgsl).
 * Measured on a 64x64 ngf 16 G step (52 fused launches, 2026-12-02, workgroup sums): norm
 * kernels 17.5 -> 12.2 ms (16 wide: 11.7 ms), the unprofiled step 101.5 -> 93.0 ms (16 wide: 96.4).
 */
const FUSED_WG_CPU = 8;
/** Training groups up to this many elements use the fused one-workgroup-per-channel kernels. */
export const NORM_FUSED_MAX = 16384;
/**
 * @internal For benchmarks and tests: `fusedMax` 0 turns the fused kernels off (the split path for
 * every size); `subgroupSums` false keeps the fused kernels on workgroup-memory sums where the
 * subgroup ones would run (norm_subgroup.wgsl); `vec4` false keeps them on scalar accesses where
 * planes allow vec4 ones.
 */
export const normTuning = { fusedMax: NORM_FUSED_MAX, subgroupSums: true, vec4: true };

/**
 * The fused kernels' shader for a workgroup of `wg`: norm_subgroup.wgsl (sums by subgroupAdd, no
 * barrier) where one subgroup holds the whole workgroup, else norm.wgsl (workgroup memory).
 */
function fusedFile(wg: number): string {
  return normTuning.subgroupSums && oneSubgroupHolds(engine().gpu, wg) ? 'norm_subgroup.wgsl' : FILE;
}
/** ACT override of the fused kernels. */
const ACT = { none: 0, relu: 1, leakyRelu: 2 } as const;

/** What the fused norm kernels apply after normalizing: y = act(norm(x) + residual). */
export interface NormEpilogue {
  /** Activation applied last (default none). */
  activation?: 'relu' | 'leakyRelu';
  /** Negative slope of 'leakyRelu' (default 0.01, as PyTorch); must be >= 0 to fuse. */
  negativeSlope?: number;
  /** Added to the normalized output before the activation (same shape as x). */
  residual?: Tensor | null;
}

export interface BatchNormOptions extends NormEpilogue {
  /** Batch statistics (and running-stat update) when true; running statistics when false. */
  training: boolean;
  /** Weight of the new batch statistics in the running averages (PyTorch default 0.1). */
  momentum?: number;
  eps?: number;
}

export interface InstanceNormOptions extends NormEpilogue {
  eps?: number;
}

interface Geometry {
  n: number;
  c: number;
  hw: number;
  splits: number;
  chunk: number;
  perInstance: boolean;
  /** Workgroup size of the reduction kernels. */
  wg: number;
  /** Number of statistic groups: C (batch norm) or N * C (instance norm). */
  groups: number;
  /** Elements per group. */
  count: number;
}

function geometry(x: Tensor, perInstance: boolean): Geometry {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const hw = h * w;
  const splits = hw > NORM_MAX_UNSPLIT ? Math.ceil(hw / NORM_CHUNK) : 1;
  const chunk = splits > 1 ? NORM_CHUNK : hw;
  return {
    n,
    c,
    hw,
    splits,
    chunk,
    perInstance,
    wg: REDUCE_WG,
    groups: perInstance ? n * c : c,
    count: perInstance ? hw : n * hw,
  };
}

interface Flags {
  hasWeight: boolean;
  hasBias: boolean;
  training: boolean;
  eps: number;
  momentum: number;
}

function normParams(g: Geometry, f: Flags, slope = 0): Uint8Array {
  const unbias = g.count > 1 ? g.count / (g.count - 1) : 1;
  return new Params()
    .u32(g.n, g.c, g.hw, g.splits, g.chunk, g.perInstance ? 1 : 0, (f.hasWeight ? 1 : 0) | (f.hasBias ? 2 : 0), f.training ? 1 : 0)
    .f32(f.eps, f.momentum, unbias, slope)
    .data();
}

function checkVector(op: string, what: string, t: Tensor | null, c: number, x: Tensor): void {
  if (t && (t.shape.length !== 1 || t.shape[0] !== c)) {
    throw new ShapeError(`${op}: ${what} must have shape [${c}] for input ${fmtShape(x.shape)}, got ${fmtShape(t.shape)}`);
  }
}

/** Grid of the per-element kernels: (blocks of a plane, planes), planes past 65535 going to z. */
function planeGrid(g: Geometry): [number, number, number] {
  const planes = g.n * g.c;
  const z = Math.ceil(planes / MAX_GROUPS);
  return [Math.max(1, Math.ceil(g.hw / (ELEM_WG * ELEMS))), Math.max(1, Math.ceil(planes / z)), Math.max(1, z)];
}

/** Per-channel launch (one thread per channel). */
function perChannel(g: Geometry, entry: string, params: Uint8Array, buffers: Tensor[], flops: number, bytes: number): void {
  launch1d(g.c, { file: FILE, entry, params, buffers: buffers.map((t) => t.binding()), cost: { flops, bytes } });
}

/** Batch statistics of x into a new stats tensor [5 * groups] (see norm.wgsl). */
function batchStats(x: Tensor, g: Geometry, params: Uint8Array, weight: Tensor | null, bias: Tensor | null): Tensor {
  const e = engine();
  const blocks = g.n * g.c * g.splits;
  const part = Tensor.empty([2 * blocks]);
  e.launch({
    file: FILE,
    entry: 'stats_partial',
    constants: { WG: g.wg },
    params,
    buffers: [x.binding(), part.binding()],
    workgroups: grid(blocks),
    cost: { flops: 4 * x.size, bytes: 8 * x.size },
  });
  const stats = Tensor.empty([5 * g.groups]);
  // An absent weight/bias is never read: bind `part` in its place.
  perChannel(g, 'stats_finalize', params, [part, weight ?? part, bias ?? part, stats], 8 * blocks, 8 * blocks + 20 * g.groups);
  part.dispose();
  return stats;
}

/** y = (x - mean[group]) * scale[group] + bias[group]. */
function applyStats(x: Tensor, g: Geometry, params: Uint8Array, stats: Tensor): Tensor {
  const y = Tensor.empty(x.shape);
  engine().launch({
    file: FILE,
    entry: 'normalize',
    params,
    buffers: [x.binding(), stats.binding(), y.binding()],
    workgroups: planeGrid(g),
    cost: { flops: 3 * x.size, bytes: 8 * x.size },
  });
  return y;
}

/**
 * Gradients of y = normalize(x) * w + b given dy. `training`: statistics depend on x (full
 * backward through mean and variance); otherwise they are constants (eval-mode batch norm).
 */
function normBackward(
  x: Tensor,
  dy: Tensor,
  stats: Tensor,
  g: Geometry,
  params: Uint8Array,
  training: boolean,
  need: [boolean, boolean, boolean],
): (Tensor | null)[] {
  const [needX, needW, needB] = need;
  let gsum: Tensor | null = null;
  let dw: Tensor | null = null;
  let db: Tensor | null = null;
  if (needW || needB || (needX && training)) {
    const blocks = g.n * g.c * g.splits;
    const part = Tensor.empty([2 * blocks]);
    engine().launch({
      file: FILE,
      entry: 'grad_partial',
      constants: { WG: g.wg },
      params,
      buffers: [x.binding(), dy.binding(), stats.binding(), part.binding()],
      workgroups: grid(blocks),
      cost: { flops: 5 * x.size, bytes: 8 * x.size },
    });
    gsum = Tensor.empty([2 * g.groups]);
    dw = Tensor.empty([g.c]);
    db = Tensor.empty([g.c]);
    perChannel(g, 'grad_finalize', params, [part, gsum, dw, db], 2 * blocks, 8 * blocks + 8 * g.groups + 8 * g.c);
    part.dispose();
  }
  let dx: Tensor | null = null;
  if (needX) {
    dx = Tensor.empty(x.shape);
    engine().launch({
      file: FILE,
      entry: 'grad_apply',
      params,
      workgroups: planeGrid(g),
      // In eval mode gsum is not read: bind the stats in its place.
      buffers: [x.binding(), dy.binding(), stats.binding(), (gsum ?? stats).binding(), dx.binding()],
      cost: { flops: training ? 6 * x.size : x.size, bytes: training ? 12 * x.size : 8 * x.size },
    });
  }
  gsum?.dispose();
  if (!needW) dw?.dispose();
  if (!needB) db?.dispose();
  return [dx, needW ? dw : null, needB ? db : null];
}

/** Checks the epilogue and tells whether the fused kernels take this call. */
function fusable(op: string, x: Tensor, g: Geometry, training: boolean, e: NormEpilogue): boolean {
  if (e.residual) sameShape(`${op} residual`, x, e.residual);
  const slope = e.negativeSlope ?? 0.01;
  if (e.activation === 'leakyRelu' && !(slope >= 0)) return false;
  // With both, the residual's gradient would be the masked dy: a second output; compose instead.
  if (e.residual && e.activation) return false;
  return training && g.count <= normTuning.fusedMax && g.c <= MAX_GROUPS;
}

/** The epilogue as separate ops (groups too large to fuse, eval mode). */
function epilogue(y: Tensor, e: NormEpilogue): Tensor {
  let out = y;
  if (e.residual) out = add(y, e.residual);
  if (e.activation) {
    const pre = out;
    out = e.activation === 'relu' ? relu(pre) : leakyRelu(pre, e.negativeSlope ?? 0.01);
    if (pre !== y) pre.dispose();
  }
  if (out !== y) y.dispose();
  return out;
}

/**
 * The fused training path: one dispatch forward, one backward. The backward recomputes act'(y)
 * from the saved output (y > 0 <=> pre-activation > 0 for ReLU and leaky ReLU with slope >= 0).
 */
function fusedNorm(
  op: string, x: Tensor, weight: Tensor | null, bias: Tensor | null, running: [Tensor, Tensor] | null,
  g: Geometry, flags: Flags, e: NormEpilogue,
): Tensor {
  const act = ACT[e.activation ?? 'none'];
  // REDUCE_WG (64), not 256: groups are often small (a 7x7 plane), and on lavapipe a 256-wide
  // workgroup costs about its width whatever the work (measured: [1,128,7,7] fwd+bwd 8.3 -> 4.2 ms).
  // On CPU adapters narrower still (FUSED_WG_CPU).
  const fusedWg = engine().gpu.software ? FUSED_WG_CPU : g.wg;
  const file = fusedFile(fusedWg);
  // Planes of a multiple of 4 elements take vec4 accesses (see norm_fused.wgsl).
  const vec4 = g.hw % 4 === 0 && normTuning.vec4;
  const params = normParams(g, flags, e.negativeSlope ?? 0.01);
  const residual = e.residual ?? null;
  const stats = Tensor.empty([5 * g.groups]);
  const y = Tensor.empty(x.shape);
  // Absent inputs are bound to x (never read); absent running stats to scratch (never written).
  const scratch = running ? null : [Tensor.empty([1]), Tensor.empty([1])];
  const [rm, rv] = running ?? scratch!;
  engine().launch({
    file,
    entry: vec4 ? 'fused_forward4' : 'fused_forward',
    constants: { WG: fusedWg, ACT: act, RESIDUAL: residual ? 1 : 0, RUNNING: running ? 1 : 0 },
    params,
    buffers: [x, weight ?? x, bias ?? x, stats, residual ?? x, y, rm!, rv!].map((t) => t.binding()),
    workgroups: [g.c, 1, 1],
    cost: { flops: 8 * x.size, bytes: 4 * (3 * x.size + (residual ? x.size : 0)) },
    tag: 'fwd',
  });
  scratch?.forEach((t) => t.dispose());
  // The backward adds the gradients weight and bias already have (`pending`: a layer used twice in
  // one graph, as the discriminator on real and on fake images): no accumulation launches.
  const out = record(op, y, [x, weight, bias, residual], act ? [x, stats, y] : [x, stats], (dy, [sx, st, sy], pending) => {
    // dw and db live until the next zeroGrad. Taken while a small scratch buffer holds the oldest
    // free one of their size class (as the split path's partial sums do), they leave the pool's
    // assignment the same from step to step; without it, it drifted for ~20 steps and every step
    // created new bind groups (measured: test/models-training's pix2pix loop).
    const scratchForOrder = Tensor.empty([2 * g.c]);
    const dw = Tensor.empty([g.c]);
    const db = Tensor.empty([g.c]);
    scratchForOrder.dispose();
    const dx = Tensor.empty(x.shape);
    const [, pw, pb] = pending;
    engine().launch({
      file,
      entry: vec4 ? 'fused_backward4' : 'fused_backward',
      constants: { WG: fusedWg, ACT: act, ADDEND: (pw ? 1 : 0) | (pb ? 2 : 0) },
      params,
      buffers: [sx!, sy ?? sx!, dy, st!, dx, dw, db, pw ?? sx!, pb ?? sx!].map((t) => t.binding()),
      workgroups: [g.c, 1, 1],
      cost: { flops: 14 * x.size, bytes: 4 * (5 * x.size + (act ? 2 * x.size : 0)) },
      tag: 'bwd',
    });
    const keepIf = (t: Tensor, need: boolean | undefined): Tensor | null => (need ? t : (t.dispose(), null));
    return [keepIf(dx, x.requiresGrad), keepIf(dw, weight?.requiresGrad), keepIf(db, bias?.requiresGrad), residual?.requiresGrad ? dy.share() : null];
  }, [1, 2]);
  stats.dispose();
  return out;
}

/**
 * Batch normalization over (N, H, W) per channel of an NCHW tensor, as torch.nn.functional.batch_norm.
 * Training: normalizes with the batch mean and biased variance, and (when running stats are given)
 * updates them in place: running = (1 - momentum) * running + momentum * batch, with the unbiased
 * variance for runningVar. Eval: normalizes with runningMean / runningVar (required).
 * Gradients flow to x, weight and bias in both modes (in eval the statistics are constants).
 * `opts.residual` / `opts.activation` give act(bn(x) + residual) (fused in training, see NormEpilogue).
 */
export function batchNorm2d(
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  opts: BatchNormOptions,
): Tensor {
  const op = 'batchNorm2d';
  rank(op, x, 4);
  const g = geometry(x, false);
  checkVector(op, 'weight', weight, g.c, x);
  checkVector(op, 'bias', bias, g.c, x);
  checkVector(op, 'runningMean', runningMean, g.c, x);
  checkVector(op, 'runningVar', runningVar, g.c, x);
  if ((runningMean === null) !== (runningVar === null)) {
    throw new ShapeError(`${op}: pass both runningMean and runningVar, or neither`);
  }
  const training = opts.training;
  if (!training && !runningMean) throw new ShapeError(`${op}: eval mode (training: false) needs runningMean and runningVar`);
  if (training && g.count <= 1) {
    throw new ShapeError(`${op}: expected more than 1 value per channel when training, got input ${fmtShape(x.shape)}`);
  }
  const flags: Flags = { hasWeight: weight !== null, hasBias: bias !== null, training, eps: opts.eps ?? 1e-5, momentum: opts.momentum ?? 0.1 };
  if (fusable(op, x, g, training, opts)) {
    return fusedNorm(op, x, weight, bias, runningMean && runningVar ? [runningMean, runningVar] : null, g, flags, opts);
  }
  const params = normParams(g, flags);

  let stats: Tensor;
  if (training) {
    stats = batchStats(x, g, params, weight, bias);
    if (runningMean && runningVar) {
      perChannel(g, 'running_update', params, [stats, runningMean, runningVar], 6 * g.c, 24 * g.c);
    }
  } else {
    stats = Tensor.empty([5 * g.groups]);
    const rm = runningMean!;
    perChannel(g, 'eval_stats', params, [rm, weight ?? rm, bias ?? rm, stats, runningVar!], 6 * g.c, 36 * g.c);
  }
  const y = applyStats(x, g, params, stats);
  const out = record(op, y, [x, weight, bias], [x, stats], (dy, [sx, st]) =>
    normBackward(sx!, dy, st!, g, params, training, [x.requiresGrad, !!weight?.requiresGrad, !!bias?.requiresGrad]),
  );
  stats.dispose();
  return epilogue(out, opts);
}

/**
 * Instance normalization (torch.nn.functional.instance_norm without running stats): each (n, c)
 * plane is normalized by its own mean and biased variance over H * W, then scaled by weight[c]
 * and shifted by bias[c] when given. Gradients flow to x, weight and bias.
 * `opts.residual` / `opts.activation` give act(in(x) + residual) (fused, see NormEpilogue).
 */
export function instanceNorm2d(x: Tensor, weight: Tensor | null, bias: Tensor | null, opts: InstanceNormOptions = {}): Tensor {
  const op = 'instanceNorm2d';
  rank(op, x, 4);
  const g = geometry(x, true);
  checkVector(op, 'weight', weight, g.c, x);
  checkVector(op, 'bias', bias, g.c, x);
  if (g.hw <= 1) {
    throw new ShapeError(`${op}: expected more than 1 spatial element per plane, got input ${fmtShape(x.shape)}`);
  }
  const flags: Flags = { hasWeight: weight !== null, hasBias: bias !== null, training: true, eps: opts.eps ?? 1e-5, momentum: 0 };
  if (fusable(op, x, g, true, opts)) return fusedNorm(op, x, weight, bias, null, g, flags, opts);
  const params = normParams(g, flags);
  const stats = batchStats(x, g, params, weight, bias);
  const y = applyStats(x, g, params, stats);
  const out = record(op, y, [x, weight, bias], [x, stats], (dy, [sx, st]) =>
    normBackward(sx!, dy, st!, g, params, true, [x.requiresGrad, !!weight?.requiresGrad, !!bias?.requiresGrad]),
  );
  stats.dispose();
  return epilogue(out, opts);
}
