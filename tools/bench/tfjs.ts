/**
 * The tfjs peer: @tensorflow/tfjs 4.22 with @tensorflow/tfjs-backend-webgpu 4.22 on Dawn, given a
 * `navigator.gpu` from a second `create()` of the same `webgpu` package (two instances coexist in
 * one process: our engine keeps working after tfjs starts, checked in tools/bench.ts). The wrapper's
 * requestAdapter() hands tfjs the adapter our engine uses (same description), so both run on one
 * device type. Layout NHWC (tfjs's native one); runs end by submitting tfjs's pending commands and
 * awaiting the queue, the analogue of our `engine().sync()` (no readback on either side).
 */
import { create, globals } from 'webgpu';
import type * as TF from '@tensorflow/tfjs';
import { engine } from '../../src/engine/engine.js';
import type { Runner } from './harness.js';
import { convOut, type Workload } from './workloads.js';
import { tfjsGanRunner } from './tfjs-gan.js';

export type Tf = typeof TF;

interface WebGpuBackendLike {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
  adapterInfo?: { vendor?: string; architecture?: string };
}

export interface TfjsPeer {
  tf: Tf;
  /** Submits tfjs's recorded commands and waits for the device. */
  sync(): Promise<void>;
  /** Starts collecting validation errors of tfjs's device (a broken run must not pass as fast). */
  watchErrors(): void;
  /** The first validation error since watchErrors(), or null. */
  checkErrors(): Promise<string | null>;
  adapterName: string;
}

// Dawn's GPU objects must stay referenced for the life of the process (see NOTES.md).
const keepAlive: unknown[] = [];

function describe(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length > 0 ? parts.join(' / ') : 'unknown adapter';
}

/**
 * Starts tfjs on the webgpu backend with the adapter whose description equals `adapterName` (our
 * engine's), falling back to Dawn's high-performance adapter. Returns null (with the reason
 * printed) when the packages are missing or the backend fails.
 */
export async function startTfjs(adapterName: string): Promise<TfjsPeer | string> {
  Object.assign(globalThis, globals); // GPUBufferUsage and friends, which tfjs uses as globals
  const gpu = create([]);
  keepAlive.push(gpu);
  let chosen: GPUAdapter | null = null;
  for (const powerPreference of ['high-performance', 'low-power'] as const) {
    const a = await gpu.requestAdapter({ powerPreference });
    if (a && describe(a.info) === adapterName) {
      chosen = a;
      break;
    }
  }
  chosen ??= await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!chosen) return 'no WebGPU adapter for tfjs';
  keepAlive.push(chosen);
  const adapter = chosen;
  const nav = { gpu: { requestAdapter: async () => adapter, getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set() } };
  // tfjs-backend-webgpu looks for navigator.gpu when its module is first evaluated.
  const g = globalThis as Record<string, unknown>;
  Object.defineProperty(globalThis, 'navigator', { value: { ...((g.navigator as object | undefined) ?? {}), ...nav }, configurable: true, writable: true });
  let tf: Tf;
  try {
    tf = (await import('@tensorflow/tfjs')) as Tf;
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    return `tfjs packages not installed (${(err as Error).message.split('\n')[0]})`;
  }
  if (!(await tf.setBackend('webgpu'))) return 'tfjs webgpu backend failed to start';
  await tf.ready();
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  keepAlive.push(backend.device);
  return {
    tf,
    adapterName: describe(adapter.info),
    watchErrors() {
      backend.device.pushErrorScope('validation');
    },
    async checkErrors() {
      const err = await backend.device.popErrorScope();
      return err ? err.message.split('\n')[0]! : null;
    },
    async sync() {
      // What tfjs itself does before a readback: close its pass, submit its encoder.
      if (backend.commandEncoder) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
      // The same waiting strategy as ours (polling.ts: a 1 ms timer on CPU adapters instead of
      // dawn.node's busy loop), so that the ratios compare kernels, not ways of waiting.
      await engine().waitFor(() => backend.device.queue.onSubmittedWorkDone());
    },
  };
}

/** A tfjs runner for a case, or why there is none. */
export async function tfjsRunner(peer: TfjsPeer, w: Workload, mode: string, adamShapes: number[][]): Promise<Runner | string> {
  const { tf } = peer;
  const sync = peer.sync;
  const keep: TF.Tensor[] = [];
  const rnd = <T extends TF.Tensor>(t: T): T => {
    keep.push(t);
    return t;
  };
  const disposeAll = () => keep.forEach((t) => t.dispose());
  let outs: TF.Tensor[] = [];
  const after = () => {
    outs.forEach((t) => t.dispose());
    outs = [];
  };

  switch (w.kind) {
    case 'conv': {
      const s = w.spec;
      const [oh, ow] = convOut(s);
      const x = rnd(tf.randomNormal([s.n, s.h, s.w, s.ci]) as TF.Tensor4D);
      const f = rnd(tf.mul(tf.randomNormal([s.k, s.k, s.ci, s.co]), 0.05) as TF.Tensor4D);
      const dy = rnd(tf.randomNormal([s.n, oh, ow, s.co]) as TF.Tensor4D);
      const pad = s.pad;
      const strides: [number, number] = [s.stride, s.stride];
      // tfjs's explicit padding: [[0, 0], [top, bottom], [left, right], [0, 0]] (NHWC).
      const explicit = [[0, 0], [pad, pad], [pad, pad], [0, 0]] as TF.backend_util.ExplicitPadding;
      const run = (fn: () => TF.Tensor | TF.Tensor[]) => async () => {
        const r = fn();
        outs = Array.isArray(r) ? r : [r];
        await sync();
      };
      const fns: Record<string, () => TF.Tensor | TF.Tensor[]> = {
        fwd: () => tf.conv2d(x, f, strides, explicit),
        dgrad: () =>
          tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, {
            inputShape: x.shape, strides, pad: explicit, dataFormat: 'NHWC', dimRoundingMode: undefined,
          } as unknown as TF.NamedAttrMap) as TF.Tensor,
        wgrad: () =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
            strides, pad: explicit, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: f.shape,
          } as unknown as TF.NamedAttrMap) as TF.Tensor,
        train: () => {
          const g = tf.grads((a: TF.Tensor, b: TF.Tensor) => tf.conv2d(a as TF.Tensor4D, b as TF.Tensor4D, strides, explicit));
          return g([x, f], dy);
        },
      };
      const fn = fns[mode];
      if (!fn) return `mode ${mode} not implemented for tfjs`;
      return { run: run(fn), after, dispose: disposeAll };
    }
    case 'matmul': {
      const a = rnd(tf.randomNormal([w.m, w.k]) as TF.Tensor2D);
      const b = rnd(tf.randomNormal([w.k, w.n]) as TF.Tensor2D);
      return {
        async run() {
          outs = [tf.matMul(a, b)];
          await sync();
        },
        after,
        dispose: disposeAll,
      };
    }
    case 'norm': {
      const [n, c, h, wd] = w.shape;
      const x = rnd(tf.randomNormal([n, h, wd, c]) as TF.Tensor4D);
      const dy = rnd(tf.randomNormal([n, h, wd, c]) as TF.Tensor4D);
      const gamma = rnd(tf.randomNormal([c]) as TF.Tensor1D);
      const beta = rnd(tf.randomNormal([c]) as TF.Tensor1D);
      const eps = 1e-5;
      const bn = (xx: TF.Tensor, g: TF.Tensor, b: TF.Tensor) => {
        const m = tf.moments(xx, [0, 1, 2]);
        return tf.batchNorm(xx as TF.Tensor4D, m.mean as TF.Tensor1D, m.variance as TF.Tensor1D, b as TF.Tensor1D, g as TF.Tensor1D, eps);
      };
      const inorm = (xx: TF.Tensor) => {
        const m = tf.moments(xx, [1, 2], true);
        return tf.mul(tf.sub(xx, m.mean), tf.rsqrt(tf.add(m.variance, eps)));
      };
      let fn: () => TF.Tensor | TF.Tensor[];
      if (mode === 'fwd') fn = () => tf.tidy(() => (w.norm === 'batch' ? bn(x, gamma, beta) : inorm(x)));
      else if (w.norm === 'batch') fn = () => tf.grads((a: TF.Tensor, g: TF.Tensor, b: TF.Tensor) => bn(a, g, b))([x, gamma, beta], dy);
      else fn = () => tf.grads((a: TF.Tensor) => inorm(a))([x], dy);
      return {
        async run() {
          const r = fn();
          outs = Array.isArray(r) ? r : [r];
          await sync();
        },
        after,
        dispose: disposeAll,
      };
    }
    case 'adam': {
      const vars = adamShapes.map((s, i) => tf.variable(tf.mul(tf.randomNormal(s), 0.02), true, `p${i}`));
      const grads: Record<string, TF.Tensor> = {};
      adamShapes.forEach((s, i) => (grads[`p${i}`] = rnd(tf.mul(tf.randomNormal(s), 1e-3))));
      const opt = tf.train.adam(2e-4, 0.5, 0.999, 1e-8);
      return {
        async run() {
          opt.applyGradients(grads as unknown as Parameters<typeof opt.applyGradients>[0]);
          await sync();
        },
        dispose() {
          opt.dispose();
          vars.forEach((v) => v.dispose());
          disposeAll();
        },
      };
    }
    case 'gan':
      return tfjsGanRunner(peer, w.gan, w.part);
  }
}
