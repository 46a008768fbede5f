/**
 * The benchmark workloads: convolutions (the NOTES.md reference shapes and the AsynDGAN networks'
 * own layer shapes at 256x256, ngf = ndf = 64, batch 1), matmul, batch/instance norm, Adam over
 * the generator's 11.4M parameters, and the G and D training steps. Each workload lists its modes;
 * a case is one (workload, mode). Order matters: cases run in this order, and the total time
 * budget of tools/bench.ts skips whatever is left when it runs out.
 */
import { DEFAULT_GAN, stepFlops, type GanShape } from './gan-step.js';
import { convOutSide, type ConvSpec } from './onnx.js';

export type ConvMode = 'fwd' | 'dgrad' | 'wgrad' | 'train';
export type NormMode = 'fwd' | 'train';

export type Workload =
  | { kind: 'conv'; name: string; spec: ConvSpec; modes: ConvMode[]; quick?: boolean }
  | { kind: 'matmul'; name: string; m: number; k: number; n: number; quick?: boolean }
  | { kind: 'norm'; name: string; norm: 'batch' | 'instance'; shape: [number, number, number, number]; modes: NormMode[]; quick?: boolean }
  | { kind: 'adam'; name: string; quick?: boolean }
  | { kind: 'gan'; name: string; gan: GanShape; part: 'generator' | 'discriminator'; quick?: boolean };

const conv = (ci: number, co: number, side: number, k: number, stride: number, pad: number): ConvSpec => ({
  n: 1, ci, co, h: side, w: side, k, stride, pad,
});

const ALL: ConvMode[] = ['fwd', 'dgrad', 'wgrad'];

/** The NOTES.md reference convolution (first: the last line of the report comes from it). */
export const CONV3X3 = 'conv3x3 64->64 @128';

export function workloads(gan: GanShape = DEFAULT_GAN): Workload[] {
  return [
    { kind: 'conv', name: CONV3X3, spec: conv(64, 64, 128, 3, 1, 1), modes: ['fwd', 'dgrad', 'wgrad', 'train'], quick: true },
    { kind: 'conv', name: 'conv7x7 3->64 @256', spec: conv(3, 64, 256, 7, 1, 3), modes: ALL },
    { kind: 'matmul', name: 'matmul 1024^3', m: 1024, k: 1024, n: 1024 },
    { kind: 'matmul', name: 'matmul 256^3', m: 256, k: 256, n: 256, quick: true },
    { kind: 'norm', name: 'batchnorm [1,256,64,64]', norm: 'batch', shape: [1, 256, 64, 64], modes: ['fwd', 'train'], quick: true },
    { kind: 'norm', name: 'batchnorm [1,64,256,256]', norm: 'batch', shape: [1, 64, 256, 256], modes: ['fwd', 'train'] },
    { kind: 'norm', name: 'instancenorm [1,256,64,64]', norm: 'instance', shape: [1, 256, 64, 64], modes: ['fwd', 'train'] },
    { kind: 'norm', name: 'instancenorm [1,64,256,256]', norm: 'instance', shape: [1, 64, 256, 256], modes: ['fwd', 'train'] },
    { kind: 'adam', name: 'Adam, G params (11.4M)' },
    {
      kind: 'gan',
      name: `G step @${gan.size} ngf ${gan.ngf}`,
      gan,
      part: 'generator',
      quick: true,
    },
    { kind: 'gan', name: `D step @${gan.size} ndf ${gan.ndf}`, gan, part: 'discriminator', quick: true },
    // Last: the per-layer shapes, which take longest (tfjs's weight gradients) and are the first
    // to be cut by the total time budget.
    // Generator (resnet_9blocks, ngf 64, 256x256): stride-2 downsamplings, a residual-block conv
    // (reflection-padded in G; zero padding here, same work), the 7x7 output conv.
    { kind: 'conv', name: 'G down1 3x3/2 64->128 @256', spec: conv(64, 128, 256, 3, 2, 1), modes: ALL },
    { kind: 'conv', name: 'G down2 3x3/2 128->256 @128', spec: conv(128, 256, 128, 3, 2, 1), modes: ALL },
    { kind: 'conv', name: 'G block 3x3 256->256 @64', spec: conv(256, 256, 64, 3, 1, 1), modes: ALL },
    { kind: 'conv', name: 'G out 7x7 64->3 @256', spec: conv(64, 3, 256, 7, 1, 3), modes: ALL },
    // PatchGAN discriminator (ndf 64, input mask + image = 4 channels, 256x256): 4x4 kernels.
    { kind: 'conv', name: 'D c1 4x4/2 4->64 @256', spec: conv(4, 64, 256, 4, 2, 1), modes: ALL },
    { kind: 'conv', name: 'D c2 4x4/2 64->128 @128', spec: conv(64, 128, 128, 4, 2, 1), modes: ALL },
    { kind: 'conv', name: 'D c3 4x4/2 128->256 @64', spec: conv(128, 256, 64, 4, 2, 1), modes: ALL },
    { kind: 'conv', name: 'D c4 4x4 256->512 @32', spec: conv(256, 512, 32, 4, 1, 1), modes: ALL },
  ];
}

export function convOut(s: ConvSpec): [number, number] {
  return [convOutSide(s.h, s.k, s.stride, s.pad), convOutSide(s.w, s.k, s.stride, s.pad)];
}

export function convFlops(s: ConvSpec): number {
  const [oh, ow] = convOut(s);
  return 2 * s.n * s.co * oh * ow * s.ci * s.k * s.k;
}

/** Nominal flops per element: norm forward ~8 (stats 3, normalize 2, affine 2, +1), backward ~12. */
const NORM_FWD = 8;
const NORM_BWD = 12;
/** Nominal flops per parameter of one Adam update. */
export const ADAM_FLOPS = 12;

/** Nominal flops of one run of a case (see docs/BENCHMARKS.md). */
export function caseFlops(w: Workload, mode: string, adamParams = 0): number {
  switch (w.kind) {
    case 'conv':
      return convFlops(w.spec) * (mode === 'train' ? 3 : 1);
    case 'matmul':
      return 2 * w.m * w.k * w.n;
    case 'norm': {
      const n = w.shape.reduce((a, b) => a * b, 1);
      return n * (mode === 'train' ? NORM_FWD + NORM_BWD : NORM_FWD);
    }
    case 'adam':
      return ADAM_FLOPS * adamParams;
    case 'gan':
      return stepFlops(w.gan)[w.part];
  }
}

export function modesOf(w: Workload): string[] {
  switch (w.kind) {
    case 'conv':
    case 'norm':
      return w.modes;
    case 'gan':
    case 'adam':
      return ['step'];
    case 'matmul':
      return ['fwd'];
  }
}
