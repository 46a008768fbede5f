/**
 * The onnxruntime peer (onnxruntime-node 1.30, installed with ONNXRUNTIME_NODE_INSTALL=skip: its
 * CPU and WebGPU execution providers ship in the package). Forward passes only (onnxruntime cannot
 * train here). One-node models built by ./onnx.ts with the weights as initializers; each run feeds
 * the input from the CPU and returns the output to the CPU (onnxruntime-node offers no
 * device-resident inputs for the WebGPU EP), so its times include those transfers.
 */
import type * as ORT from 'onnxruntime-node';
import type { Runner } from './harness.js';
import { convModel, matmulModel } from './onnx.js';
import type { Workload } from './workloads.js';

export type OrtEp = 'webgpu' | 'cpu';

let ort: typeof ORT | null | undefined;

export async function loadOrt(): Promise<typeof ORT | string> {
  if (ort === undefined) {
    try {
      ort = (await import('onnxruntime-node')) as typeof ORT;
    } catch (err) {
      ort = null;
      return `onnxruntime-node not installed (${(err as Error).message.split('\n')[0]})`;
    }
  }
  return ort ?? 'onnxruntime-node not installed';
}

function randomArray(n: number, seed: number, scale = 1): Float32Array {
  // xorshift32 -> uniform(-1, 1): enough for timing.
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = ((s / 0x100000000) * 2 - 1) * scale;
  }
  return out;
}

export async function ortRunner(ep: OrtEp, w: Workload, mode: string): Promise<Runner | string> {
  if (mode !== 'fwd') return 'forward only';
  const o = await loadOrt();
  if (typeof o === 'string') return o;
  let model: Uint8Array;
  let feeds: Record<string, ORT.Tensor>;
  if (w.kind === 'conv') {
    const s = w.spec;
    model = convModel(s, randomArray(s.co * s.ci * s.k * s.k, 2, 0.05));
    feeds = { x: new o.Tensor('float32', randomArray(s.n * s.ci * s.h * s.w, 1), [s.n, s.ci, s.h, s.w]) };
  } else if (w.kind === 'matmul') {
    model = matmulModel(w.m, w.k, w.n, randomArray(w.k * w.n, 2));
    feeds = { a: new o.Tensor('float32', randomArray(w.m * w.k, 1), [w.m, w.k]) };
  } else {
    return 'not exported to ONNX';
  }
  let session: ORT.InferenceSession;
  try {
    session = await o.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  } catch (err) {
    return `onnxruntime ${ep} EP failed: ${(err as Error).message.split('\n')[0]}`;
  }
  let outs: ORT.InferenceSession.OnnxValueMapType | null = null;
  return {
    async run() {
      outs = await session.run(feeds);
    },
    after() {
      for (const v of Object.values(outs ?? {})) (v as { dispose?: () => void }).dispose?.();
      outs = null;
    },
    async dispose() {
      await session.release();
    },
  };
}
