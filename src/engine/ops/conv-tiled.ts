/**
 * The GPU-shaped convolution kernels (shaders/conv2d_tiled.wgsl): workgroup-tiled implicit GEMM
 * for forward, data gradient and weight gradient. conv.ts chooses between these and the
 * CPU-shaped subgroup kernels (conv2d.wgsl) by adapter; both compute the same functions.
 */
import { noGrad } from '../autograd.js';
import { engine, MAX_GROUPS } from '../engine.js';
import { ShapeError } from '../errors.js';
import { Params } from '../params.js';
import { Tensor } from '../tensor.js';
import { convFlops, type ConvGeometry } from './conv-geometry.js';
import { sum } from './reduce.js';

const FILE = 'conv2d_tiled.wgsl';
const BK = 16;

/** @internal Tuning knobs for benchmarks. */
export const tiledTuning = {
  /** Workgroups a dispatch should reach before a larger tile is chosen (about 1-2 per SM). */
  targetGroups: 120,
  /** Weight gradient: minimum K tiles per split (each split writes a partial [M, N] sum). */
  minTilesPerSplit: 8,
  /** Force a tile shape (rows per invocation x columns per invocation), or null. */
  tile: null as [4 | 8, 4 | 8] | null,
};

interface Gemm {
  m: number;
  n: number;
  k: number;
}

interface Phase {
  rh: number;
  rw: number;
  kh0: number;
  khs: number;
  nkh: number;
  kw0: number;
  kws: number;
  nkw: number;
  pa: number;
  pc: number;
}

const NO_PHASE: Phase = { rh: 0, rw: 0, kh0: 0, khs: 1, nkh: 0, kw0: 0, kws: 1, nkw: 0, pa: 0, pc: 0 };


/** The largest tile whose grid still reaches `targetGroups` workgroups (else the smallest). */
function tileFor(m: number, n: number, z = 1): [number, number] {
  if (tiledTuning.tile) return tiledTuning.tile;
  const options: [number, number][] = [[8, 8], [4, 8], [8, 4]];
  for (const [tmr, tnr] of options) {
    if (tmr === 8 && m <= 64) continue; // a 128-row tile would be mostly padding
    const groups = Math.ceil(m / (16 * tmr)) * Math.ceil(n / (16 * tnr)) * z;
    if (groups >= tiledTuning.targetGroups) return [tmr, tnr];
  }
  return [4, 4];
}

function params(g: ConvGeometry, gemm: Gemm, kPerSplit: number, ph: Phase): Uint8Array {
  return new Params(32)
    .u32(gemm.m, gemm.n, gemm.k, kPerSplit, g.nb, g.ci, g.h, g.w, g.co, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw)
    .i32(g.ph, g.pw)
    .u32(g.dh, g.dw, ph.rh, ph.rw, ph.kh0, ph.khs, ph.nkh, ph.kw0, ph.kws, ph.nkw, ph.pa, ph.pc)
    .data();
}

function grid(gemm: Gemm, tmr: number, tnr: number, z: number): [number, number, number] {
  const x = Math.ceil(gemm.n / (16 * tnr));
  const y = Math.ceil(gemm.m / (16 * tmr));
  if (x > MAX_GROUPS || y > MAX_GROUPS || z > MAX_GROUPS) {
    throw new ShapeError(`conv2d: problem too large for one dispatch (${x} x ${y} x ${z} workgroups)`);
  }
  return [Math.max(x, 1), Math.max(y, 1), Math.max(z, 1)];
}

/** @internal Whether the data gradient of this geometry has the tap structure the kernel needs. */
export function tiledDataGradSupported(g: ConvGeometry): boolean {
  // Strided and dilated at once: the taps reaching a phase are not one arithmetic progression.
  return (g.sh === 1 || g.dh === 1) && (g.sw === 1 || g.dw === 1);
}

/** Split-K count for a GEMM: enough workgroups to fill the GPU, at least minTilesPerSplit K tiles each. */
function splitsFor(gemm: Gemm, tiles: number): { nsplit: number; kPerSplit: number } {
  const kTiles = Math.ceil(gemm.k / BK);
  const want = Math.ceil(tiledTuning.targetGroups / Math.max(tiles, 1));
  const splits = Math.max(1, Math.min(want, Math.floor(kTiles / tiledTuning.minTilesPerSplit)));
  const kPerSplit = Math.max(BK, Math.ceil(kTiles / splits) * BK);
  return { nsplit: Math.max(1, Math.ceil(gemm.k / kPerSplit)), kPerSplit };
}

/** @internal Y = conv(X, W) + bias, split along K (partials summed) when the output is small. */
export function tiledForward(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry): Tensor {
  const gemm = { m: g.co, n: g.nb * g.oh * g.ow, k: g.ci * g.kh * g.kw };
  const [tmr, tnr] = tileFor(gemm.m, gemm.n);
  const tiles = Math.ceil(gemm.m / (16 * tmr)) * Math.ceil(gemm.n / (16 * tnr));
  const { nsplit, kPerSplit } = tiles * 2 < tiledTuning.targetGroups ? splitsFor(gemm, tiles) : { nsplit: 1, kPerSplit: gemm.k };
  const shape = [g.nb, g.co, g.oh, g.ow];
  const y = Tensor.empty(nsplit > 1 ? [nsplit, gemm.m * gemm.n] : shape);
  engine().launch({
    file: FILE,
    constants: { MODE: 0, TMR: tmr, TNR: tnr, HAS_BIAS: bias ? 1 : 0, REFLECT: g.reflect ? 1 : 0 },
    params: params(g, gemm, kPerSplit, NO_PHASE),
    buffers: [w.binding(), x.binding(), (bias ?? w).binding(), y.binding()],
    workgroups: grid(gemm, tmr, tnr, nsplit),
    cost: { flops: convFlops(g), bytes: 4 * (x.size + w.size + y.size) },
    tag: 'fwd',
  });
  return nsplit === 1 ? y : sumSplits(y, shape);
}

/**
 * Taps t (< k) with (r + p - t*d) divisible by s: kernel tap t0 + step*j. With s > 1 this assumes
 * d == 1 (tiledDataGradSupported): t = (r + p) mod s, then every s-th tap.
 */
function taps(r: number, p: number, k: number, s: number): { t0: number; step: number; n: number } {
  if (s === 1) return { t0: 0, step: 1, n: k };
  const t0 = (r + p) % s;
  return { t0, step: s, n: t0 < k ? Math.ceil((k - t0) / s) : 0 };
}

/** @internal X = conv^T(Y, W) + bias, one dispatch per stride phase. */
export function tiledDataGrad(dy: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, dx: Tensor): void {
  const phases = g.sh * g.sw;
  for (let rh = 0; rh < Math.min(g.sh, g.h); rh++) {
    for (let rw = 0; rw < Math.min(g.sw, g.w); rw++) {
      const th = taps(rh, g.ph, g.kh, g.sh);
      const tw = taps(rw, g.pw, g.kw, g.sw);
      const ph: Phase = {
        rh, rw, kh0: th.t0, khs: th.step, nkh: th.n, kw0: tw.t0, kws: tw.step, nkw: tw.n,
        pa: Math.ceil((g.h - rh) / g.sh), pc: Math.ceil((g.w - rw) / g.sw),
      };
      const gemm = { m: g.ci, n: g.nb * ph.pa * ph.pc, k: g.co * ph.nkh * ph.nkw };
      const [tmr, tnr] = tileFor(gemm.m, gemm.n);
      const packed = Tensor.empty([Math.max(gemm.m * gemm.k, 1)]);
      const phaseParams = params(g, gemm, Math.max(gemm.k, 1), ph);
      if (gemm.k > 0) {
        const groups = Math.ceil((gemm.m * gemm.k) / 256);
        const gx = Math.min(groups, MAX_GROUPS);
        engine().launch({
          file: FILE,
          entry: 'pack_phase',
          params: phaseParams,
          buffers: [w.binding(), packed.binding()],
          workgroups: [gx, Math.ceil(groups / gx), 1],
          cost: { flops: 0, bytes: 8 * gemm.m * gemm.k },
          tag: 'dgrad',
        });
      }
      engine().launch({
        file: FILE,
        constants: { MODE: 1, TMR: tmr, TNR: tnr, HAS_BIAS: bias ? 1 : 0 },
        params: phaseParams,
        buffers: [packed.binding(), dy.binding(), (bias ?? w).binding(), dx.binding()],
        workgroups: grid(gemm, tmr, tnr, 1),
        cost: { flops: 2 * gemm.m * gemm.n * gemm.k, bytes: (4 * (dy.size + w.size + dx.size)) / phases },
        tag: 'dgrad',
      });
      packed.dispose();
    }
  }
}

/** @internal dW [co, ci, kh, kw], split along (b, oh, ow) into partial sums when that fills the GPU. */
export function tiledWeightGrad(x: Tensor, dy: Tensor, g: ConvGeometry): Tensor {
  const gemm = { m: g.co, n: g.ci * g.kh * g.kw, k: g.nb * g.oh * g.ow };
  const [tmr, tnr] = tileFor(gemm.m, gemm.n, Infinity);
  const tiles = Math.ceil(gemm.m / (16 * tmr)) * Math.ceil(gemm.n / (16 * tnr));
  const { nsplit, kPerSplit } = splitsFor(gemm, tiles);
  const shape = [g.co, g.ci, g.kh, g.kw];
  const out = Tensor.empty(nsplit > 1 ? [nsplit, gemm.m * gemm.n] : shape);
  engine().launch({
    file: FILE,
    constants: { MODE: 2, TMR: tmr, TNR: tnr, HAS_BIAS: 0, REFLECT: g.reflect ? 1 : 0 },
    params: params(g, gemm, kPerSplit, NO_PHASE),
    buffers: [dy.binding(), x.binding(), x.binding(), out.binding()],
    workgroups: grid(gemm, tmr, tnr, nsplit),
    cost: { flops: convFlops(g), bytes: 4 * (x.size + dy.size + out.size) },
    tag: 'wgrad',
  });
  return nsplit === 1 ? out : sumSplits(out, shape);
}

/** @internal Sums split-K partials [nsplit, size] into one tensor of `shape` (consumes `partials`). */
export function sumSplits(partials: Tensor, shape: number[]): Tensor {
  const summed = noGrad(() => sum(partials, 0));
  partials.dispose();
  const view = summed.share(shape);
  summed.dispose();
  return view;
}
