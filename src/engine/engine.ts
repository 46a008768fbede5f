/**
 * The engine: one GPU device with its buffer pool, pipeline cache and command stream.
 * Most programs use one engine, created by `init()` and reached by ops through `engine()`.
 */
import { requestGpu, type DeviceOptions, type GpuContext } from './device.js';
import { KernelCache, type Constants } from './kernels.js';
import { BufferPool } from './pool.js';
import { defaultPollInterval, waitGently } from './polling.js';
import { Recorder, type Binding } from './recorder.js';

/** A kernel launch: which WGSL file/entry, its specialization, parameters, buffers and grid. */
export interface Launch {
  /** Shader file in `shaders/`, e.g. 'elementwise.wgsl'. */
  file: string;
  entry?: string;
  constants?: Constants;
  /** Packed uniform block (binding 0), see Params. */
  params?: Uint8Array;
  /** Storage buffers, bindings 1.. in order. */
  buffers: Binding[];
  workgroups: readonly [number, number?, number?];
  /** Work done, for the profiler's GFLOP/s and GB/s. */
  cost?: { flops: number; bytes: number };
  /** Distinguishes launches of one entry point in profiles, e.g. 'wgrad': "conv2d.wgsl:main[wgrad]". */
  tag?: string;
}

export class Engine {
  readonly pool: BufferPool;
  readonly kernels: KernelCache;
  readonly recorder: Recorder;

  /**
   * How often the device is polled while the engine waits for it, in ms (see polling.ts); 0 is
   * dawn.node's busy loop. Default: 1 on CPU adapters, whose cores the busy loop would steal, 0 on
   * GPUs. Option `pollIntervalMs`, env ASYNDGAN_POLL_MS.
   */
  pollIntervalMs: number;

  private constructor(readonly gpu: GpuContext, pollIntervalMs: number) {
    this.pool = new BufferPool(gpu.device);
    this.kernels = new KernelCache(gpu.device);
    this.recorder = new Recorder(gpu.device);
    this.pollIntervalMs = pollIntervalMs;
    this.recorder.waitFor = (work) => this.waitFor(work);
  }

  static async create(options: DeviceOptions = {}): Promise<Engine> {
    const gpu = await requestGpu(options);
    return new Engine(gpu, defaultPollInterval(gpu.software, options.pollIntervalMs));
  }

  get device(): GPUDevice {
    return this.gpu.device;
  }

  /** Records a kernel dispatch into the current command stream. */
  launch(l: Launch): void {
    const kernel = this.kernels.get(l.file, l.entry ?? 'main', l.constants);
    this.recorder.dispatch(kernel, l.params ?? null, l.buffers, l.workgroups, l.cost, l.tag);
  }

  /** Runs `work`, which awaits the device, with this engine's polling (see pollIntervalMs). */
  waitFor<T>(work: () => Promise<T>): Promise<T> {
    return waitGently(this.pollIntervalMs, work);
  }

  /** Submits recorded work without waiting. */
  flush(): void {
    this.recorder.flush();
  }

  /** Submits recorded work, waits for the GPU, and throws any kernel or GPU error. */
  async sync(): Promise<void> {
    this.recorder.flush();
    await this.waitFor(() => this.kernels.check());
    await this.recorder.sync();
  }
}

let current: Engine | null = null;

/** Creates the process-wide engine (once; later calls return the same engine). */
export async function init(options: DeviceOptions = {}): Promise<Engine> {
  current ??= await Engine.create(options);
  return current;
}

/** The engine created by `init()`. */
export function engine(): Engine {
  if (!current) throw new Error('asyndgan engine not initialized: call `await init()` first');
  return current;
}

/** Largest workgroup count per grid dimension guaranteed by WebGPU. */
export const MAX_GROUPS = 65535;

/** Splits `groups` workgroups into an (x, y) grid within the per-dimension limit. */
export function grid(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}
