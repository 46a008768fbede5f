/**
 * 2-D convolution and transposed convolution (NCHW, PyTorch semantics), forward and backward.
 *
 * Everything runs on implicit-GEMM kernels with three modes: forward, data gradient and weight
 * gradient. Two kernel families compute them: shaders/conv2d.wgsl, shaped for CPU adapters
 * (subgroup shuffles, no workgroup memory), and shaders/conv2d_tiled.wgsl (conv-tiled.ts), a
 * workgroup-tiled GEMM for GPUs; `engine().convKernels` picks one ('auto': by adapter). A transposed convolution is the data gradient of the
 * convolution whose output is its input, so:
 *
 * | computation                   | kernel mode                                     |
 * |-------------------------------|-------------------------------------------------|
 * | conv2d forward                | forward                                         |
 * | conv2d d/dx                   | data gradient                                   |
 * | conv2d d/dw                   | weight gradient (x, dy)                         |
 * | convTranspose2d forward       | data gradient                                   |
 * | convTranspose2d d/dx          | forward (of the output gradient)                |
 * | convTranspose2d d/dw          | weight gradient (roles swapped: dout, x)        |
 *
 * Bias gradients are sums of the output gradient over (batch, height, width).
 */
import { availableParallelism } from 'node:os';
import { record } from '../autograd.js';
import { subgroupMinSize } from '../device.js';
import { engine, MAX_GROUPS } from '../engine.js';
import { KernelError, ShapeError } from '../errors.js';
import { Params } from '../params.js';
import type { Binding } from '../recorder.js';
import { Tensor } from '../tensor.js';
import { sumSplits, tiledDataGrad, tiledDataGradSupported, tiledForward, tiledWeightGrad } from './conv-tiled.js';
import { conv2dGeometry, convFlops, pair, type Conv2dOptions, type ConvGeometry, type ConvTranspose2dOptions } from './conv-geometry.js';
export { conv2dGeometry, type Conv2dOptions, type ConvGeometry, type ConvTranspose2dOptions, type Pair } from './conv-geometry.js';
import { accumulate, fill } from '../primitives.js';
import { fmtShape, rank } from './launch.js';
import { pad2dBackwardRaw } from './pad.js';
import { activationBackwardRaw, activationForwardRaw } from './elementwise.js';
import { sum } from './reduce.js';

const FILE = 'conv2d.wgsl';
/** Invocations per workgroup of the fast kernel. */
const WG = 64;
/** Longest register window of the fast kernel (WMAX in the shader). */
const WMAX = 20;
/** Widest kernel the fast kernel unrolls (taps 0..6). */
const KW_MAX = 7;
/** Worker threads of a software adapter (llvmpipe runs LP_NUM_THREADS, by default one per core). */
const SOFTWARE_THREADS = (() => {
  const env = Number(process.env.LP_NUM_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
})();

/**
 * Weight-gradient splits aim for this many workgroups: one per CPU thread (lavapipe runs one
 * worker per core), not more, since every split adds a partial sum to read back and a summing
 * dispatch. Measured on 2 cores: 8 instead of 32 made a 64x64 G+D step 14% faster (182 -> 157 ms)
 * and the 128x128 conv3x3 weight gradient no slower (34.4 -> 33.1 ms); 2 instead of 8 was as fast
 * and saves 3 summing launches per G step (153 -> 150, 2026-12-02).
 */
const WGRAD_TARGET_GROUPS = SOFTWARE_THREADS;
/**
 * Forward and data-gradient launches of at most this many FLOPs read the weights in their
 * canonical layout (DIRECTW) instead of packing them first. Packing costs one launch (0.2-0.4 ms
 * on lavapipe, whatever the size); direct reads cost more load instructions, 20-40% of a large
 * convolution's time (3x3 64->64 at 128x128, 7x7 3->64 at 256x256). Measured on a 64x64 ngf 16
 * G step (all its convolutions are below 2^25 FLOPs): 57 fewer launches, conv kernels plus
 * packing 217 -> 191 ms of GPU time under load.
 */
const DIRECT_WEIGHTS_MAX_FLOPS = 2 ** 25;
/** Reflect-padded weight gradients take block windows (XV) from rows this wide (see xvConstants). */
const XV_REFLECT_MIN_WIDTH = 32;
/** Cooperative loads only where padding a row to whole strips adds at most this factor. */
const COOP_MAX_PADDING = 1.25;

function checkSubgroups(): void {
  const gpu = engine().gpu;
  const min = subgroupMinSize(gpu) ?? 8;
  if (!gpu.features.has('subgroups') || min < 8) {
    throw new KernelError(
      `conv2d/matmul kernels need the WebGPU "subgroups" feature with subgroups of >= 8 invocations ` +
        `(adapter ${gpu.adapterName}: subgroups ${gpu.features.has('subgroups') ? `min size ${min}` : 'unavailable'})`,
      [FILE],
    );
  }
}

/**
 * @internal Tuning knobs for benchmarks (null picks automatically). `cu` 2 processes two channels
 * per loop iteration: measured no faster on lavapipe and twice the compile time, so off.
 * `coopMaxPadding` bounds the cooperative loads' row padding (Infinity: wherever rows are
 * aligned, as tests force). `mergeWidthPhases` lets a stride-2 data gradient take both width
 * phases in one launch when their rows have the same quads (off: one launch each, for comparisons
 * and tests). `dyn` schedules tiles dynamically (null: on software adapters), `dynGroups` sets its
 * workgroups per launch (null: one per worker thread). `xv` lets weight gradients take block
 * windows, `xvMirror` with "same" reflection their mirrored columns from the carried blocks, and
 * `xvReflectMinWidth` (null: XV_REFLECT_MIN_WIDTH) from which width other reflect rows take them.
 */
export const convTuning: {
  tm: 4 | 8 | 16 | null;
  wgradTarget: number;
  cu: number | null;
  coop: boolean;
  coopMaxPadding: number;
  directMaxFlops: number;
  mergeWidthPhases: boolean;
  nbr: boolean;
  dyn: boolean | null;
  dynGroups: number | null;
  xv: boolean;
  xvReflectMinWidth: number | null;
  xvMirror: boolean;
} = {
  tm: null,
  wgradTarget: WGRAD_TARGET_GROUPS,
  cu: null,
  coop: true,
  coopMaxPadding: COOP_MAX_PADDING,
  directMaxFlops: DIRECT_WEIGHTS_MAX_FLOPS,
  mergeWidthPhases: true,
  nbr: true,
  dyn: null,
  dynGroups: null,
  xv: true,
  xvReflectMinWidth: null,
  xvMirror: true,
};

/**
 * Whether this convolution mode runs on the tiled kernels. 'auto' keeps CPU adapters on the
 * subgroup kernels. On GPUs the tiled kernels take every GEMM with at least 16 rows; with fewer
 * (3-channel images in and out, the PatchGAN's 1-channel head) most of a 64-row tile would be
 * padding, so the subgroup kernels (4 rows per invocation) keep them, except where they lack
 * parallelism: a forward with few output pixels and a long K (the head: 30x30 pixels, K = 8192),
 * which the tiled kernel splits along K, and weight gradients with many columns.
 */
function useTiled(mode: 'fwd' | 'dgrad' | 'wgrad', g: ConvGeometry): boolean {
  const e = engine();
  if (e.convKernels !== 'auto') return e.convKernels === 'tiled';
  const gpu = e.gpu;
  if (gpu.software) return false;
  if (!gpu.features.has('subgroups')) return true;
  if ((mode === 'dgrad' ? g.ci : g.co) >= 16) return true;
  const k = g.ci * g.kh * g.kw;
  if (mode === 'fwd') return g.nb * g.oh * g.ow <= 4096 && k >= 2048;
  return mode === 'wgrad' && k >= 4096;
}

function rowsPerInvocation(m: number): number {
  return convTuning.tm ?? (m > 8 ? 16 : m > 4 ? 8 : 4);
}

function weightGradSplits(g: ConvGeometry, groups: number): number {
  const rows = g.nb * g.oh;
  return Math.max(1, Math.min(rows, Math.ceil(convTuning.wgradTarget / Math.max(groups, 1))));
}

/** The same storage seen as array<vec4f> (binding size rounded up to 16 bytes). */
function vec4Binding(t: Tensor): Binding {
  return { ...t.binding(), size: Math.max(16, Math.ceil(t.size / 4) * 16) };
}

interface FastDims {
  mrows: number;
  ncols: number;
  kloop: number;
  ylen: number;
  qlen: number;
  srcC: number;
  srcH: number;
  srcW: number;
  dstH: number;
  dstW: number;
  rh: number;
  wRow: number;
  wLoop: number;
  rowsPerSplit: number;
  tm: number;
  rowPad: number;
  total?: number;
  tiles?: readonly [number, number, number];
}

function fastParams(g: ConvGeometry, d: FastDims): Uint8Array {
  return new Params(32)
    .u32(g.nb, d.mrows, d.ncols, d.kloop, g.kh, d.ylen, d.qlen, d.srcC, d.srcH, d.srcW, d.dstH, d.dstW, g.sh)
    .i32(g.ph)
    .u32(g.dh, d.rh, d.wRow, d.wLoop, g.oh, g.ow, d.rowsPerSplit, g.kw, d.tm, d.rowPad, d.total ?? 0)
    .u32(...(d.tiles ?? [0, 0, 0]))
    .data();
}

function groups3(x: number, y: number, z: number): [number, number, number] {
  if (x > MAX_GROUPS || y > MAX_GROUPS || z > MAX_GROUPS) {
    throw new ShapeError(`conv2d: problem too large for one dispatch (${x} x ${y} x ${z} workgroups)`);
  }
  return [Math.max(x, 1), Math.max(y, 1), Math.max(z, 1)];
}

let schedCounter: { device: GPUDevice; binding: Binding } | null = null;

/** The dynamic scheduler's tile counter (binding 8; WebGPU zero-fills new buffers). */
function schedBinding(): Binding {
  const device = engine().device;
  if (schedCounter?.device !== device) {
    const buffer = device.createBuffer({ label: 'conv2d tile counter', size: 16, usage: GPUBufferUsage.STORAGE });
    schedCounter = { device, binding: { buffer, size: 16 } };
  }
  return schedCounter.binding;
}

interface FastLaunch {
  /** Entry point: 'main' (modes 0, 1), 'main_phases2' (mode 1, two width phases), 'wgrad'. */
  entry: 'main' | 'main_phases2' | 'wgrad';
  constants: Record<string, number>;
  params: (tiles?: readonly [number, number, number]) => Uint8Array;
  buffers: Binding[];
  /** The static grid: columns (invocations along x), workgroup size, row tiles, z. */
  ncols: number;
  wg: number;
  gy: number;
  gz: number;
  cost: { flops: number; bytes: number };
  tag: string;
}

/**
 * Launches the fast kernel on its static grid (a workgroup per WG columns x TM rows x z) or, on
 * software adapters (DYN), as one workgroup of 8 lanes per worker thread taking tiles of 8
 * columns from a counter: see DYN in conv2d.wgsl.
 */
function launchFast(l: FastLaunch): void {
  const buffers = [...l.buffers, schedBinding()];
  const dyn = convTuning.dyn ?? engine().gpu.software;
  if (!dyn) {
    engine().launch({
      file: FILE, entry: l.entry, constants: { ...l.constants, WG: l.wg }, params: l.params(), buffers,
      workgroups: groups3(Math.ceil(l.ncols / l.wg), l.gy, l.gz), cost: l.cost, tag: l.tag,
    });
    return;
  }
  const tiles = [Math.ceil(l.ncols / 8), l.gy, l.gz] as const;
  const ntiles = tiles[0] * tiles[1] * tiles[2];
  engine().launch({
    file: FILE, entry: l.entry, constants: { ...l.constants, WG: 8, DYN: 1 }, params: l.params(tiles), buffers,
    workgroups: [Math.max(1, Math.min(ntiles, convTuning.dynGroups ?? SOFTWARE_THREADS)), 1, 1],
    cost: l.cost, tag: l.tag,
  });
}

/**
 * Weights packed for the fast kernel: [c][kh][rowPad][kw] where (row, c) = (co, ci) for the
 * forward and (ci, co) for the data gradient; rows past `mrows` are zeros. Null (the kernel reads
 * the weights directly) for convolutions of at most `convTuning.directMaxFlops`.
 */
function packWeights(w: Tensor, g: ConvGeometry, d: FastDims): Tensor | null {
  if (convFlops(g) <= convTuning.directMaxFlops) return null;
  const total = d.kloop * g.kh * d.rowPad * g.kw;
  const packed = Tensor.empty([total]);
  if (total === 0) return packed;
  const groups = Math.ceil(total / 64);
  const gx = Math.min(groups, MAX_GROUPS);
  engine().launch({
    file: FILE,
    entry: 'pack',
    constants: { KW: g.kw },
    params: fastParams(g, { ...d, total }),
    buffers: [w.binding(), packed.binding()],
    workgroups: [gx, Math.ceil(groups / gx), 1],
    cost: { flops: 0, bytes: 8 * total },
  });
  return packed;
}

/**
 * Whether a row of `quads` quads of pixels takes cooperative loads: a strip is 8 quads, so a row
 * is padded to a multiple of 8 and the padding's lanes compute nothing useful. Measured on
 * lavapipe (3x3 64->64, zero padding, 16x16: 4 quads a row padded to 8): 1.9-2.5 ms a launch with
 * COOP, 1.1-1.6 ms without.
 */
function coopPaysOff(quads: number): boolean {
  return Math.ceil(quads / 8) * 8 <= quads * convTuning.coopMaxPadding;
}

/**
 * Invocations per workgroup for `ncols` columns: WG, or fewer (a multiple of 8, the kernel's lane
 * groups) when there are fewer columns than that, so that small images do not run empty lanes.
 */
function workgroupSize(ncols: number): number {
  return ncols >= WG ? WG : Math.max(8, Math.ceil(ncols / 8) * 8);
}

/**
 * Constants of the cooperative source loads (COOP): the strip of 8 lanes x 4 pixels reads the
 * source span from x0 (x0 mod 4 = s0) in aligned blocks; lanes are `ls` blocks apart.
 */
function coopConstants(srcW: number, s0: number, ls: number, wl: number, quads: number): Record<string, number> | null {
  if (!convTuning.coop || srcW % 4 !== 0 || !coopPaysOff(quads)) return null;
  const nblk = 7 * ls + Math.floor((s0 + wl - 1) / 4) + 1;
  const nld = Math.ceil(nblk / 8);
  if (nld > 4) return null;
  return { COOP: 1, LS: ls, S0: s0, NBLK: nblk, NLD: nld };
}

const mod4 = (v: number) => ((v % 4) + 4) % 4;

/**
 * Constants of the neighbour windows (NBR in conv2d.wgsl) where they apply, else null: stride and
 * dilation 1 along the width, source rows of exactly 4 * quads elements (each lane's own quad is
 * one aligned vec4), and at most 4 window columns on either side of it (3 with reflection, whose
 * mirror images must lie in the row's first or last block). `left`: window columns before the
 * quad. Measured on the G step's residual-block convolutions (16x16, 64 -> 64, reflect) on
 * lavapipe: see docs/BENCHMARKS.md.
 */
function nbrConstants(srcW: number, quads: number, sw: number, dw: number, left: number, wl: number, reflect: boolean): Record<string, number> | null {
  const right = wl - 4 - left;
  const max = reflect ? 3 : 4;
  if (!convTuning.nbr || sw !== 1 || dw !== 1 || srcW !== 4 * quads) return null;
  if (left < 0 || right < 0 || left > max || right > max) return null;
  return { NBR: 1, HL: left };
}

// ---------------------------------------------------------------------------------------------
// Raw kernels (no autograd). X = convolution input, Y = convolution output.

/** @internal An activation applied to a convolution's output (conv2d's `activation`). */
export interface ConvActivation {
  name: 'tanh' | 'leakyRelu';
  slope: number;
}

/** The activation as a separate launch (the paths without the epilogue). */
function activateApart(y: Tensor, act: ConvActivation | undefined): Tensor {
  if (!act || y.size === 0) return y;
  const out = activationForwardRaw(act.name, y, act.slope);
  y.dispose();
  return out;
}

/** @internal Y = act(conv(X, W) + bias); the subgroup kernel applies `act` in its store. */
export function convForwardRaw(x: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, act?: ConvActivation): Tensor {
  if (useTiled('fwd', g) && g.nb * g.co * g.oh * g.ow > 0) return activateApart(tiledForward(x, w, bias, g), act);
  const y = Tensor.empty([g.nb, g.co, g.oh, g.ow]);
  if (y.size === 0) return y;
  const wl = 3 * g.sw + (g.kw - 1) * g.dw + 1;
  if (g.kw > KW_MAX || wl > WMAX) {
    naive(0, g, x, w, bias, y);
    return activateApart(y, act);
  }
  checkSubgroups();
  const tm = rowsPerInvocation(g.co);
  const quads = Math.ceil(g.ow / 4);
  const coop = g.reflect ? null : coopConstants(g.w, mod4(-g.pw), g.sw, wl, quads);
  const nbr = coop ? null : nbrConstants(g.w, quads, g.sw, g.dw, g.pw, wl, !!g.reflect);
  // With COOP a strip of 8 lanes covers 32 pixels of one row: pad the quads of a row to 8.
  const qlen = coop ? Math.ceil(quads / 8) * 8 : quads;
  const ncols = g.nb * g.oh * qlen;
  const wg = workgroupSize(ncols);
  const d: FastDims = {
    mrows: g.co, ncols, kloop: g.ci, ylen: g.oh, qlen, srcC: g.ci, srcH: g.h, srcW: g.w, dstH: g.oh,
    dstW: g.ow, rh: 0, wRow: g.ci * g.kh * g.kw, wLoop: g.kh * g.kw, rowsPerSplit: 0, tm,
    rowPad: Math.ceil(g.co / tm) * tm,
  };
  const packed = packWeights(w, g, d);
  launchFast({
    entry: 'main',
    constants: {
      MODE: 0, TM: tm, KW: g.kw, SW: g.sw, DW: g.dw, PW: g.pw, RW: 0, OFFMIN: 0, WL: wl,
      HAS_BIAS: bias ? 1 : 0, CU: convTuning.cu ?? 1, DIRECTW: packed ? 0 : 1, REFLECT: g.reflect ? 1 : 0,
      ...coop, ...nbr,
      ...(act ? { ACT: act.name === 'tanh' ? 1 : 2, ACT_SLOPE: act.slope } : {}),
    },
    params: (tiles) => fastParams(g, { ...d, tiles }),
    buffers: [x.binding(), w.binding(), (bias ?? w).binding(), y.binding(), vec4Binding(packed ?? w), vec4Binding(x), w.binding()],
    ncols, wg, gy: Math.ceil(g.co / tm), gz: 1,
    cost: { flops: convFlops(g), bytes: 4 * (x.size + w.size + y.size) },
    tag: 'fwd',
  });
  packed?.dispose();
  return y;
}

/**
 * Whether the subgroup data-gradient kernel takes this reflect-padded convolution's mirrored
 * positions itself (REFLECT in mode 1): stride 1, dilation 1 and a "same" kernel (K = 2p + 1,
 * as in ResNet blocks and pix2pix's 7x7 layers), with p <= 3 so that the mirrored columns of a
 * row's start lie in its first quad.
 */
function reflectDataGradFused(g: ConvGeometry): boolean {
  return (
    !!g.reflect && !useTiled('dgrad', g) && g.sh === 1 && g.sw === 1 && g.dh === 1 && g.dw === 1 &&
    g.kh === 2 * g.ph + 1 && g.kw === 2 * g.pw + 1 && g.pw <= 3 // (so KW <= 7, WL = 2p + 4 <= 10)
  );
}

/**
 * @internal X = conv^T(Y, W) + bias: the data gradient of a convolution (and convTranspose2d).
 * With reflection padding, `addend` (a gradient accumulated so far) is added to the result. A
 * "same" stride-1 reflect convolution takes one launch (reflectDataGradFused); other reflect
 * geometry takes the data gradient of the unpadded convolution of the padded input, folded back
 * onto the input by the reflection's backward (pad.wgsl): two launches.
 */
export function convDataGradRaw(dy: Tensor, w: Tensor, bias: Tensor | null, g: ConvGeometry, addend?: Tensor): Tensor {
  if (addend && !g.reflect) throw new KernelError('convDataGradRaw: an addend is only supported with reflection padding', [FILE]);
  const fusedReflect = reflectDataGradFused(g);
  if (g.reflect && !fusedReflect) {
    const padded: ConvGeometry = { ...g, h: g.h + 2 * g.ph, w: g.w + 2 * g.pw, ph: 0, pw: 0, reflect: false };
    const dpad = convDataGradRaw(dy, w, bias, padded);
    const dx = pad2dBackwardRaw(dpad, [g.nb, g.ci, g.h, g.w], [g.pw, g.pw, g.ph, g.ph], 'reflect', addend);
    dpad.dispose();
    return dx;
  }
  const dx = Tensor.empty([g.nb, g.ci, g.h, g.w]);
  if (dx.size === 0) return dx;
  if (useTiled('dgrad', g) && tiledDataGradSupported(g)) {
    tiledDataGrad(dy, w, bias, g, dx);
    return dx;
  }
  // One dispatch per stride phase rw along the width (pixels iw = rw + sw*b), the phases rh along
  // the height (ih = rh + sh*a) on its grid's z.
  const phases: { rw: number; offmin: number; wl: number }[] = [];
  for (let rw = 0; rw < Math.min(g.sw, g.w); rw++) {
    const offs: number[] = [];
    for (let t = 0; t < g.kw; t++) {
      const num = rw + g.pw - t * g.dw;
      if (num % g.sw === 0) offs.push(num / g.sw);
    }
    const offmin = offs.length ? Math.min(...offs) : 0;
    const wl = offs.length ? 4 + Math.max(...offs) - offmin : 0;
    phases.push({ rw, offmin, wl });
  }
  const hphases = Math.min(g.sh, g.h);
  if (g.kw > KW_MAX || phases.some((ph) => ph.wl > WMAX)) {
    naive(1, g, dy, w, bias, dx);
    return dx;
  }
  checkSubgroups();
  const tm = rowsPerInvocation(g.ci);
  const f = convFlops(g) / phases.length;
  const base: FastDims = {
    mrows: g.ci, ncols: 0, kloop: g.co, ylen: 0, qlen: 0, srcC: g.co, srcH: g.oh, srcW: g.ow, dstH: g.h,
    dstW: g.w, rh: 0, wRow: g.kh * g.kw, wLoop: g.ci * g.kh * g.kw, rowsPerSplit: 0, tm,
    rowPad: Math.ceil(g.ci / tm) * tm,
  };
  const packed = packWeights(w, g, base);
  // Rows of the first height phase, the longest (the others skip their last row if short).
  const ylen = Math.ceil(g.h / g.sh);
  const launches = phases.map(({ rw, offmin, wl }) => {
    const quads = Math.ceil(Math.ceil((g.w - rw) / g.sw) / 4);
    const coop = fusedReflect ? null : coopConstants(g.ow, mod4(offmin), 1, wl, quads);
    const nbr = coop ? null : nbrConstants(g.ow, quads, g.sw, g.dw, -offmin, wl, false);
    return { rw, offmin, wl, coop, nbr, quads, qlen: coop ? Math.ceil(quads / 8) * 8 : quads };
  });
  // Two width phases whose rows have the same quads (and the same kind of loads) share a launch:
  // the kernel holds a copy of its loop for each (NWP 2).
  const [p0, p1] = launches;
  const merged =
    convTuning.mergeWidthPhases && launches.length === 2 && p0!.qlen === p1!.qlen && !p0!.coop === !p1!.coop;
  const groups = merged ? [launches] : launches.map((l) => [l]);
  for (const group of groups) {
    const { rw, offmin, wl, coop, nbr, quads, qlen } = group[0]!;
    const second = group[1];
    const ncols = g.nb * ylen * qlen;
    const wg = workgroupSize(ncols);
    launchFast({
      entry: second ? 'main_phases2' : 'main',
      constants: {
        MODE: 1, TM: tm, KW: g.kw, SW: g.sw, DW: g.dw, PW: g.pw, RW: rw, OFFMIN: offmin, WL: wl,
        HAS_BIAS: bias ? 1 : 0, CU: convTuning.cu ?? 1, DIRECTW: packed ? 0 : 1, ...coop,
        ...nbr, // (null with two width phases: those have stride 2)
        ...(fusedReflect ? { REFLECT: 1, RL: g.w - 4 * (quads - 1), HAS_ADDEND: addend ? 1 : 0 } : {}),
        ...(second
          ? {
              NWP: 2, RW1: second.rw, OFFMIN1: second.offmin, WL1: second.wl,
              ...(second.coop ? { S01: second.coop.S0!, NBLK1: second.coop.NBLK!, NLD1: second.coop.NLD! } : {}),
            }
          : {}),
      },
      params: (tiles) => fastParams(g, { ...base, ncols, ylen, qlen, rh: hphases, tiles }),
      buffers: [
        dy.binding(), w.binding(), (bias ?? w).binding(), dx.binding(), vec4Binding(packed ?? w), vec4Binding(dy),
        (addend ?? w).binding(),
      ],
      ncols, wg, gy: Math.ceil(g.ci / tm), gz: hphases * group.length,
      cost: { flops: f * group.length, bytes: (4 * (dy.size + w.size + dx.size) * group.length) / phases.length },
      tag: 'dgrad',
    });
  }
  packed?.dispose();
  return dx;
}

/**
 * Constants of the weight gradient's block windows (XV in conv2d.wgsl) where they apply, else
 * null: one tap group, stride and dilation 1 along the width, x rows of a multiple of 4 elements.
 * The window of quad q starts at column 4q - pw: XOFF elements into block q + XBB. Measured on
 * lavapipe, 3x3 64->64 weight gradient: 128x128 43.5 -> 34.6 ms (27.8 -> 34.9 GFLOP/s); 16x16
 * 0.88 ms either way (fixed costs dominate).
 */
function xvConstants(g: ConvGeometry, wl: number): Record<string, number> | null {
  if (!convTuning.xv || g.kw > 4 || g.sw !== 1 || g.dw !== 1 || g.w % 4 !== 0) return null;
  const off = mod4(-g.pw);
  const xv = { XV: 1, XOFF: off, XBB: (-g.pw - off) / 4, XNB: Math.ceil((off + wl) / 4) };
  // "Same" rows take their mirrored columns from the carried blocks (XMIRROR).
  if (g.reflect && g.ow === g.w && g.kw === 2 * g.pw + 1 && convTuning.xvMirror) return { ...xv, XMIRROR: 1 };
  // Otherwise the first and last quads of a row load their mirrored columns one by one: on short
  // rows that is most quads (16x16 64->64: 1.14 -> 1.21 ms, no faster).
  if (g.reflect && g.w < (convTuning.xvReflectMinWidth ?? XV_REFLECT_MIN_WIDTH)) return null;
  return xv;
}

/** A gradient plus what an input already had (`pending`, same size), as one tensor. */
function plusPending(grad: Tensor, pending: Tensor | undefined): Tensor {
  if (pending) accumulate(grad, pending);
  return grad;
}

/**
 * @internal dW = sum over (b, oh, ow) of dY * X-patch: the weight gradient, shape [co, ci, kh, kw],
 * plus `addend` (a gradient accumulated so far) if given: in the subgroup kernel's store where the
 * sum is not split, by a separate launch otherwise.
 */
export function convWeightGradRaw(x: Tensor, dy: Tensor, g: ConvGeometry, addend?: Tensor): Tensor {
  const shape = [g.co, g.ci, g.kh, g.kw];
  const tapGroups = Math.ceil(g.kw / 4);
  const wl = 3 * g.sw + (Math.min(g.kw, 4) - 1) * g.dw + 1;
  if (addend && addend.size !== g.co * g.ci * g.kh * g.kw) {
    throw new ShapeError(`convWeightGradRaw: addend has ${addend.size} elements, the weight ${fmtShape(shape)}`);
  }
  if (g.nb * g.oh * g.ow === 0 || g.co * g.ci * g.kh * g.kw === 0) return addend ? addend.share(shape) : fill(shape, 0);
  if (useTiled('wgrad', g)) return plusPending(tiledWeightGrad(x, dy, g), addend);
  if (3 * g.sw + 3 * g.dw >= WMAX) {
    const dw = Tensor.empty(shape);
    naive(2, g, x, dy, null, dw);
    return plusPending(dw, addend);
  }
  checkSubgroups();
  const tm = rowsPerInvocation(g.co);
  const ncols = g.ci * g.kh * tapGroups;
  // Few columns (thin inputs): smaller workgroups waste fewer invocations.
  const wg = workgroupSize(ncols);
  const gx = Math.ceil(ncols / wg);
  const gy = Math.ceil(g.co / tm);
  const splits = weightGradSplits(g, gx * gy);
  const rowsPerSplit = Math.ceil((g.nb * g.oh) / splits);
  const nsplit = Math.ceil((g.nb * g.oh) / rowsPerSplit);
  const out = Tensor.empty(nsplit > 1 ? [nsplit, g.co * g.ci * g.kh * g.kw] : shape);
  const fused = nsplit === 1 ? addend : undefined;
  launchFast({
    entry: 'wgrad',
    constants: {
      MODE: 2, TM: tm, KW: g.kw, SW: g.sw, DW: g.dw, PW: g.pw, RW: 0, OFFMIN: 0, WL: wl, HAS_BIAS: 0,
      DYV: g.ow % 4 === 0 ? 1 : 0, REFLECT: g.reflect ? 1 : 0, ...xvConstants(g, wl), HAS_ADDEND: fused ? 1 : 0,
    },
    params: (tiles) => fastParams(g, {
      mrows: g.co, ncols, kloop: 0, ylen: g.oh, qlen: Math.ceil(g.ow / 4), srcC: g.ci, srcH: g.h,
      srcW: g.w, dstH: g.kh, dstW: g.kw, rh: 0, wRow: 0, wLoop: 0, rowsPerSplit, tm, rowPad: 0, tiles,
    }),
    buffers: [x.binding(), dy.binding(), x.binding(), out.binding(), vec4Binding(dy), vec4Binding(x), (fused ?? x).binding()],
    ncols, wg, gy, gz: nsplit,
    cost: { flops: convFlops(g), bytes: 4 * (x.size + dy.size + out.size + (fused?.size ?? 0)) },
    tag: 'wgrad',
  });
  return nsplit === 1 ? out : plusPending(sumSplits(out, shape), addend);
}

/**
 * @internal One-invocation-per-output reference kernels (mode 0 forward -> Y, 1 data gradient -> X,
 * 2 weight gradient -> W). Used for geometry the fast kernel does not cover, and by the benchmark.
 */
export function naive(mode: 0 | 1 | 2, g: ConvGeometry, a: Tensor, b: Tensor, bias: Tensor | null, out: Tensor): void {
  const total = out.size;
  const groups = Math.ceil(total / 64);
  const gx = Math.min(groups, MAX_GROUPS);
  engine().launch({
    file: FILE,
    entry: 'naive',
    constants: { MODE: mode, HAS_BIAS: bias ? 1 : 0, REFLECT: g.reflect && mode !== 1 ? 1 : 0 },
    params: new Params(16)
      .u32(g.nb, g.ci, g.h, g.w, g.co, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw)
      .i32(g.ph, g.pw)
      .u32(g.dh, g.dw, total)
      .data(),
    buffers: [a.binding(), b.binding(), (bias ?? b).binding(), out.binding()],
    workgroups: [gx, Math.ceil(groups / gx), 1],
    cost: { flops: convFlops(g), bytes: 4 * (a.size + b.size + out.size) },
    tag: ['fwd', 'dgrad', 'wgrad'][mode],
  });
}

// ---------------------------------------------------------------------------------------------
// Public ops.

function checkBias(op: string, bias: Tensor | null, channels: number): void {
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== channels)) {
    throw new ShapeError(`${op}: bias must have shape [${channels}], got ${fmtShape(bias.shape)}`);
  }
}

/**
 * 2-D convolution: x [N, Ci, H, W], w [Co, Ci, kh, kw], bias [Co] or null. Zero padding, or
 * reflection with `padMode: 'reflect'` (in the kernels' index math: no padded copy); output
 * [N, Co, OH, OW] with OH = floor((H + 2p - d(kh-1) - 1) / s) + 1 (PyTorch).
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  rank('conv2d', x, 4);
  rank('conv2d', w, 4, 'weight');
  const g = conv2dGeometry('conv2d', x.shape, w.shape, opts);
  checkBias('conv2d', bias, g.co);
  const act = convActivation(opts);
  const y = convForwardRaw(x, w, bias, g, act);
  // The kernels add the gradient an input already has (`pending`: a weight used twice in one
  // graph, as the discriminator on real and on fake images; with reflection, x): no separate
  // accumulation launch.
  const saved = act ? [x, w, y] : [x, w];
  return record('conv2d', y, [x, w, bias], saved, (gout, [sx, sw, sy], pending) => {
    // With an activation: the gradient before it, g * act'(y), one launch.
    const gy = act ? activationBackwardRaw(act.name, sy!, gout, act.slope) : gout;
    const grads = [
      x.requiresGrad ? convDataGradRaw(gy, sw!, null, g, pending[0]) : null,
      w.requiresGrad ? convWeightGradRaw(sx!, gy, g, pending[1]) : null,
      bias?.requiresGrad ? sum(gy, [0, 2, 3]) : null,
    ];
    if (gy !== gout) gy.dispose();
    return grads;
  }, g.reflect ? [0, 1] : [1]);
}

function convActivation(opts: Conv2dOptions): ConvActivation | undefined {
  const { activation, negativeSlope } = opts;
  if (activation === undefined) {
    if (negativeSlope !== undefined) throw new ShapeError('conv2d: negativeSlope needs activation: \'leakyRelu\'');
    return undefined;
  }
  if (activation !== 'tanh' && activation !== 'leakyRelu') {
    throw new ShapeError(`conv2d: unknown activation '${String(activation)}' (tanh or leakyRelu)`);
  }
  const slope = activation === 'leakyRelu' ? (negativeSlope ?? 0.01) : 0;
  if (!(slope >= 0) || !Number.isFinite(slope)) {
    throw new ShapeError(`conv2d: negativeSlope must be a finite number >= 0, got ${negativeSlope}`);
  }
  if (activation === 'tanh' && negativeSlope !== undefined) throw new ShapeError('conv2d: negativeSlope is for leakyRelu only');
  return { name: activation, slope };
}

/**
 * Transposed 2-D convolution (PyTorch ConvTranspose2d): x [N, Ci, H, W], w [Ci, Co, kh, kw],
 * bias [Co] or null; output [N, Co, (H-1)s - 2p + d(k-1) + outputPadding + 1, ...].
 */
export function convTranspose2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvTranspose2dOptions = {}): Tensor {
  const op = 'convTranspose2d';
  rank(op, x, 4);
  rank(op, w, 4, 'weight');
  const [sh, sw] = pair(op, 'stride', opts.stride, 1, 1);
  const [ph, pw] = pair(op, 'padding', opts.padding, 0, 0);
  const [dh, dw] = pair(op, 'dilation', opts.dilation, 1, 1);
  const [oph, opw] = pair(op, 'outputPadding', opts.outputPadding, 0, 0);
  if (!((oph < sh || oph < dh) && (opw < sw || opw < dw))) {
    throw new ShapeError(`${op}: outputPadding ${oph}x${opw} must be smaller than stride or dilation (${sh}x${sw}, ${dh}x${dw})`);
  }
  const [nb, cin, h, wd] = x.shape as [number, number, number, number];
  const [wcin, cout, kh, kw] = w.shape as [number, number, number, number];
  if (wcin !== cin) {
    throw new ShapeError(`${op}: input ${fmtShape(x.shape)} has ${cin} channels but weight ${fmtShape(w.shape)} expects ${wcin}`);
  }
  checkBias(op, bias, cout);
  const hout = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1;
  const wout = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1;
  if (hout < 1 || wout < 1) {
    throw new ShapeError(`${op}: input ${fmtShape(x.shape)} with weight ${fmtShape(w.shape)} gives an empty output (${hout}x${wout})`);
  }
  // The convolution this op is the transpose of: X = our output, Y = our input.
  const g: ConvGeometry = { nb, ci: cout, h: hout, w: wout, co: cin, oh: h, ow: wd, kh, kw, sh, sw, ph, pw, dh, dw };
  const out = convDataGradRaw(x, w, bias, g);
  return record(op, out, [x, w, bias], [x, w], (gout, [sx, sw_]) => [
    x.requiresGrad ? convForwardRaw(gout, sw_!, null, g) : null,
    w.requiresGrad ? convWeightGradRaw(gout, sx!, g) : null,
    bias?.requiresGrad ? sum(gout, [0, 2, 3]) : null,
  ]);
}
