/**
 * The engine: one GPU device with its buffer pool, pipeline cache and command stream.
 * Most programs use one engine, created by `init()` and reached by ops through `engine()`.
 */
import { requestGpu, type ConvKernels, type DeviceOptions, type GpuContext } from './device.js';
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

  /** Convolution kernel family; may be changed at any time (see DeviceOptions.convKernels). */
  convKernels: ConvKernels;

  private disposed = false;

  private constructor(readonly gpu: GpuContext, pollIntervalMs: number, convKernels: ConvKernels) {
    this.pool = new BufferPool(gpu.device);
    this.kernels = new KernelCache(gpu.device);
    this.recorder = new Recorder(gpu.device);
    this.pollIntervalMs = pollIntervalMs;
    this.convKernels = convKernels;
    this.recorder.waitFor = (work) => this.waitFor(work);
  }

  static async create(options: DeviceOptions = {}): Promise<Engine> {
    const convKernels = convKernelsOption(options.convKernels); // refuse a bad option before taking a device
    const gpu = await requestGpu(options);
    return new Engine(gpu, defaultPollInterval(gpu.software, options.pollIntervalMs), convKernels);
  }

  /** True once `dispose()` ran. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /**
   * Waits for submitted work, destroys every GPU buffer of the pool and the device, and makes
   * `init()` create a new engine. Tensors of this engine must not be used afterwards. Idempotent.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    try {
      await this.sync();
    } finally {
      this.disposed = true;
      this.pool.trim();
      this.gpu.device.destroy();
      if (current === this) current = null;
    }
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
  if (!current) throw new Error('asyndgan engine not initialized (or disposed): call `await init()` first');
  return current;
}

const CONV_KERNELS: readonly ConvKernels[] = ['auto', 'subgroup', 'tiled'];

function convKernelsOption(option: ConvKernels | undefined): ConvKernels {
  const v = option ?? (process.env.ASYNDGAN_CONV_KERNELS as ConvKernels | undefined) ?? 'auto';
  if (!CONV_KERNELS.includes(v)) throw new RangeError(`convKernels (or ASYNDGAN_CONV_KERNELS) must be one of ${CONV_KERNELS.join(', ')}, got ${JSON.stringify(v)}`);
  return v;
}

/** Largest workgroup count per grid dimension guaranteed by WebGPU. */
export const MAX_GROUPS = 65535;

/** Splits `groups` workgroups into an (x, y) grid within the per-dimension limit. */
export function grid(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(groups, 1), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}
