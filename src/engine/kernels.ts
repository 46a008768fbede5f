/**
 * Kernel registry and pipeline cache.
 *
 * Each kernel family is one WGSL file in `shaders/`, compiled once into a shader module. A pipeline
 * is specialized with WGSL `override` constants and cached under (file, entry point, constants), so
 * the steady state of training builds no pipeline. Bindings follow one convention in every shader:
 * `@group(0) @binding(0)` is the uniform parameter block (when the kernel has one), and storage
 * buffers follow at bindings 1, 2, ... in the order the op passes them. Helpers shared between
 * families live in shaders/include/ and are pulled in by `// #include "name.wgsl"` (wgsl-include.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelError } from './errors.js';
import { expandIncludes, type ExpandedSource } from './wgsl-include.js';

/** Specialization constants (WGSL `override` declarations) of one pipeline. */
export type Constants = Record<string, number>;

/** Finds `shaders/` by walking up from this file, so it works from `src/` and from `dist/src/`. */
function findShaderDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'shaders');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('asyndgan: cannot find the shaders/ directory next to the package');
}

export interface CachedPipeline {
  /** Unique per pipeline (bind-group cache keys). */
  readonly id: number;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** For error messages and profiles: "conv2d.wgsl:main". */
  readonly label: string;
  readonly file: string;
}

export class KernelCache {
  private readonly dir = findShaderDir();
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly extraSources = new Map<string, string>();
  private readonly pipelines = new Map<string, CachedPipeline>();
  /** Compilation/pipeline failures found asynchronously; thrown at the next sync point. */
  private readonly pending: Promise<KernelError | null>[] = [];
  /** Number of pipelines built so far (the steady state must not build more). */
  pipelinesBuilt = 0;

  constructor(private readonly device: GPUDevice) {}

  /**
   * Registers WGSL source under a file name, for applications that bring their own kernels
   * (launch them with `engine.launch({ file: name, ... })`). Names must not clash with shaders/.
   */
  register(file: string, code: string): void {
    if (this.modules.has(file) || this.extraSources.has(file)) throw new KernelError(`kernel ${file} already registered`, [file]);
    this.extraSources.set(file, code);
  }

  /** WGSL source of a kernel file (e.g. 'conv2d.wgsl'), its `// #include` lines expanded. */
  source(file: string): ExpandedSource {
    let code = this.extraSources.get(file);
    if (code === undefined) {
      const path = join(this.dir, file);
      if (!existsSync(path)) throw new KernelError(`shader file not found: shaders/${file}`, [file]);
      code = readFileSync(path, 'utf8');
    }
    return expandIncludes(file, code, join(this.dir, 'include'));
  }

  /** The pipeline for (file, entry, constants), built on first use. */
  get(file: string, entry: string, constants: Constants = {}): CachedPipeline {
    const key = `${file}:${entry}:${constantsKey(constants)}`;
    const hit = this.pipelines.get(key);
    if (hit) return hit;
    const label = `${file}:${entry}`;
    const module = this.module(file);
    this.device.pushErrorScope('validation');
    const pipeline = this.device.createComputePipeline({
      label,
      layout: 'auto',
      compute: { module, entryPoint: entry, constants },
    });
    this.watch(this.device.popErrorScope(), `building pipeline ${label} with constants ${constantsKey(constants)}`, file);
    const cached = { id: this.pipelinesBuilt++, pipeline, layout: pipeline.getBindGroupLayout(0), label, file };
    this.pipelines.set(key, cached);
    return cached;
  }

  /** Rejects with a KernelError if any compilation or pipeline creation so far has failed. */
  async check(): Promise<void> {
    const results = await Promise.all(this.pending.splice(0));
    const errors = results.filter((e): e is KernelError => e !== null);
    if (errors.length > 0) {
      throw new KernelError(errors.map((e) => e.message).join('\n'), errors.flatMap((e) => e.shaderFiles));
    }
  }

  private module(file: string): GPUShaderModule {
    let module = this.modules.get(file);
    if (module) return module;
    this.device.pushErrorScope('validation');
    const { code, origins } = this.source(file);
    module = this.device.createShaderModule({ label: file, code });
    // Messages point at the line a person edits: the shader's own, or an included file's.
    const where = (line: number, pos: number): string => {
      const o = origins[line - 1];
      if (!o) return `line ${line}:${pos}`;
      return o.file === file ? `line ${o.line}:${pos}` : `${o.file} line ${o.line}:${pos}`;
    };
    const compiled = module.getCompilationInfo().then((info) => {
      const errs = info.messages.filter((m) => m.type === 'error');
      return errs.length === 0
        ? null
        : new KernelError(
            `shaders/${file} failed to compile:\n` + errs.map((m) => `  ${where(m.lineNum, m.linePos)}: ${m.message}`).join('\n'),
            [file],
          );
    });
    this.pending.push(compiled);
    this.watch(this.device.popErrorScope(), 'compiling', file);
    this.modules.set(file, module);
    return module;
  }

  private watch(scope: Promise<GPUError | null>, what: string, file: string): void {
    this.pending.push(
      scope.then((err) => (err ? new KernelError(`shaders/${file}: error ${what}: ${err.message}`, [file]) : null)),
    );
  }
}

function constantsKey(c: Constants): string {
  return Object.keys(c)
    .sort()
    .map((k) => `${k}=${c[k]}`)
    .join(',');
}
