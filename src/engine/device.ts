/**
 * Adapter and device acquisition on Dawn (npm package `webgpu`).
 *
 * Dawn's JS object returned by `create()` must stay referenced for the whole process: when it is
 * garbage-collected, later GPU calls crash. We keep it in a module-level array for that reason.
 */
import { create, globals } from 'webgpu';
import { filterNativeStderr, quietDawnRequested } from './native-stderr.js';
import { NoAdapterError } from './errors.js';

/** Options for choosing the adapter. Environment variables override nothing set explicitly. */
export interface DeviceOptions {
  /** 'high-performance' (default) or 'low-power'. Env: ASYNDGAN_POWER. */
  powerPreference?: GPUPowerPreference;
  /**
   * Pick the adapter whose description/vendor/architecture contains this substring
   * (case-insensitive), e.g. 'nvidia' or 'llvmpipe'. Env: ASYNDGAN_ADAPTER.
   */
  adapter?: string;
  /** Extra Dawn toggles passed to `create()`, e.g. ['enable_dawn_features=...']. */
  dawnFlags?: string[];
  /**
   * Poll the device every this many ms while waiting for it (0: dawn.node's busy loop). Default 1
   * on CPU adapters, 0 on GPUs. Env: ASYNDGAN_POLL_MS. See Engine.pollIntervalMs.
   */
  pollIntervalMs?: number;
  /**
   * Which convolution kernel family runs: 'subgroup' (subgroup-shuffle kernels shaped for CPU
   * adapters such as lavapipe), 'tiled' (workgroup-tiled GEMM kernels for GPUs) or 'auto' (by
   * adapter, the default). Both are exact on every adapter, so either can be tested anywhere.
   * Env: ASYNDGAN_CONV_KERNELS. See Engine.convKernels.
   */
  convKernels?: ConvKernels;
  /**
   * Drop the two "maxDynamic...BuffersPerPipelineLayout artificially reduced" lines Dawn prints
   * from native code while it enumerates adapters (see native-stderr.ts). Default off; env
   * ASYNDGAN_QUIET_DAWN=1 (the CLI sets it).
   */
  quietDawnWarnings?: boolean;
}

/** The convolution kernel families (see DeviceOptions.convKernels). */
export type ConvKernels = 'auto' | 'subgroup' | 'tiled';

/** What the engine obtained: the device plus the facts callers need about it. */
export interface GpuContext {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  /** Human-readable adapter description, e.g. "llvmpipe (LLVM 19.1.7, 256 bits)". */
  readonly adapterName: string;
  /** Optional features the device was created with (subset of timestamp-query, shader-f16, subgroups). */
  readonly features: ReadonlySet<string>;
  readonly limits: GPUSupportedLimits;
  /** A CPU implementation (lavapipe, SwiftShader): kernels pick CPU-shaped variants there. */
  readonly software: boolean;
}

/**
 * Whether a workgroup of `wg` invocations always lies in one subgroup (the device has subgroups and
 * none is smaller than `wg`), so that subgroup operations can replace workgroup memory and barriers.
 */
export function oneSubgroupHolds(gpu: GpuContext, wg: number): boolean {
  return gpu.features.has('subgroups') && wg <= (subgroupMinSize(gpu) ?? 0);
}

/** The adapter's smallest subgroup size, where its info reports one. */
export function subgroupMinSize(gpu: GpuContext): number | undefined {
  return (gpu.adapter.info as { subgroupMinSize?: number } | undefined)?.subgroupMinSize;
}

const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups' as GPUFeatureName];

// Dawn's navigator-like objects: kept alive forever on purpose (see module comment).
const keepAlive: unknown[] = [];

export const INSTALL_HINT =
  'No WebGPU adapter found. asyndgan needs a GPU driver with Vulkan, or Mesa >= 23 lavapipe ' +
  '(Vulkan on the CPU). On Debian bookworm run `npm run setup` (or `bash scripts/setup-system.sh`), ' +
  'which adds bookworm-backports and runs `apt-get install -t bookworm-backports mesa-vulkan-drivers`. ' +
  "Bookworm's own Mesa 22.3 is refused by Dawn.";

function describe(info: GPUAdapterInfo | undefined): string {
  if (!info) return 'unknown adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length > 0 ? parts.join(' / ') : 'unknown adapter';
}

/** Requests an adapter and a device with every optional feature the adapter offers. */
export async function requestGpu(options: DeviceOptions = {}): Promise<GpuContext> {
  Object.assign(globalThis, globals);
  const powerPreference =
    options.powerPreference ?? (process.env.ASYNDGAN_POWER as GPUPowerPreference | undefined) ?? 'high-performance';
  const wanted = (options.adapter ?? process.env.ASYNDGAN_ADAPTER ?? '').toLowerCase();

  let gpu: GPU;
  try {
    gpu = create(options.dawnFlags ?? []);
  } catch (err) {
    throw new NoAdapterError(`${INSTALL_HINT}\nDawn failed to load: ${(err as Error).message}`);
  }
  keepAlive.push(gpu);

  let adapter: GPUAdapter | null = null;
  try {
    const request = (): Promise<GPUAdapter | null> => gpu.requestAdapter({ powerPreference });
    adapter = quietDawnRequested(options.quietDawnWarnings) ? await filterNativeStderr(request) : await request();
    if (adapter && wanted && !describe(adapter.info).toLowerCase().includes(wanted)) {
      // Dawn exposes one adapter per power preference: try the other one before giving up.
      const other = await gpu.requestAdapter({
        powerPreference: powerPreference === 'low-power' ? 'high-performance' : 'low-power',
      });
      adapter = other && describe(other.info).toLowerCase().includes(wanted) ? other : null;
      if (!adapter) throw new NoAdapterError(`No WebGPU adapter matches ASYNDGAN_ADAPTER/adapter="${wanted}".`);
    }
  } catch (err) {
    if (err instanceof NoAdapterError) throw err;
    throw new NoAdapterError(`${INSTALL_HINT}\nDawn said: ${(err as Error).message}`);
  }
  if (!adapter) throw new NoAdapterError(INSTALL_HINT);
  keepAlive.push(adapter);

  const features = OPTIONAL_FEATURES.filter((f) => adapter!.features.has(f));
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  keepAlive.push(device);
  return {
    device,
    adapter,
    adapterName: describe(adapter.info),
    features: new Set(features),
    limits: device.limits,
    software: adapter.info.isFallbackAdapter || adapter.info.architecture === 'software',
  };
}
