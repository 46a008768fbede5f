/**
 * Batch normalization and instance normalization (NCHW), with PyTorch semantics.
 *
 * Both share the kernels of shaders/norm.wgsl: statistics are reduced per (plane, chunk) by one
 * workgroup each (two-pass mean / squared deviations inside the chunk), then merged per channel
 * with Chan's formula (one thread per channel). The forward is then (x - mean) * scale + bias per
 * element with scale = weight * invstd per group. The backward reduces sum(dy) and sum(dy * xhat)
 * the same way and applies dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)) per element.
 */
import { record } from '../autograd.js';
import { engine, grid, MAX_GROUPS } from '../engine.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { fmtShape, launch1d, rank } from './launch.js';

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

export interface BatchNormOptions {
  /** Batch statistics (and running-stat update) when true; running statistics when false. */
  training: boolean;
  /** Weight of the new batch statistics in the running averages (PyTorch default 0.1). */
  momentum?: number;
  eps?: number;
}

export interface InstanceNormOptions {
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

function normParams(g: Geometry, f: Flags): Uint8Array {
  const unbias = g.count > 1 ? g.count / (g.count - 1) : 1;
  return new Params()
    .u32(g.n, g.c, g.hw, g.splits, g.chunk, g.perInstance ? 1 : 0, (f.hasWeight ? 1 : 0) | (f.hasBias ? 2 : 0), f.training ? 1 : 0)
    .f32(f.eps, f.momentum, unbias)
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

/**
 * Batch normalization over (N, H, W) per channel of an NCHW tensor, as torch.nn.functional.batch_norm.
 * Training: normalizes with the batch mean and biased variance, and (when running stats are given)
 * updates them in place: running = (1 - momentum) * running + momentum * batch, with the unbiased
 * variance for runningVar. Eval: normalizes with runningMean / runningVar (required).
 * Gradients flow to x, weight and bias in both modes (in eval the statistics are constants).
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
  return out;
}

/**
 * Instance normalization (torch.nn.functional.instance_norm without running stats): each (n, c)
 * plane is normalized by its own mean and biased variance over H * W, then scaled by weight[c]
 * and shifted by bias[c] when given. Gradients flow to x, weight and bias.
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
  const params = normParams(g, { hasWeight: weight !== null, hasBias: bias !== null, training: true, eps: opts.eps ?? 1e-5, momentum: 0 });
  const stats = batchStats(x, g, params, weight, bias);
  const y = applyStats(x, g, params, stats);
  const out = record(op, y, [x, weight, bias], [x, stats], (dy, [sx, st]) =>
    normBackward(sx!, dy, st!, g, params, true, [x.requiresGrad, !!weight?.requiresGrad, !!bias?.requiresGrad]),
  );
  stats.dispose();
  return out;
}
