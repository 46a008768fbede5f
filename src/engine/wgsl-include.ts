/**
 * WGSL has no includes; kernel families share helpers through this one textual step. A line
 *
 *     // #include "pick_acc.wgsl"
 *
 * is replaced by the file shaders/include/pick_acc.wgsl (each file once per shader; nested
 * includes allowed). The expansion keeps, for every line of the result, the file and line it came
 * from, so compiler messages can point at the source a person edits.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KernelError } from './errors.js';

const DIRECTIVE = /^\s*\/\/\s*#include\s+"([\w.-]+)"\s*$/;

/** Includes written by TypeScript instead of a file (see defineInclude), by name. */
const GENERATED = new Map<string, string>();

/**
 * Defines the include `name` from TypeScript, e.g. named op-id constants generated from the op
 * table that also drives the launches, so WGSL and TS cannot drift apart. A shader pulls it in
 * with `// #include "name"` like a file in shaders/include/. Redefining with other text throws.
 */
export function defineInclude(name: string, code: string): void {
  const old = GENERATED.get(name);
  if (old !== undefined && old !== code) throw new KernelError(`generated include ${name} defined twice with different text`, [name]);
  GENERATED.set(name, code);
}

/** `const NAME: u32 = id;` lines for an op table, NAME = PREFIX_UPPER_SNAKE(op name). */
export function opIdConstants(prefix: string, table: Readonly<Record<string, number>>): string {
  const snake = (n: string): string => n.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  return Object.entries(table).map(([op, id]) => `const ${prefix}_${snake(op)}: u32 = ${id}u;`).join('\n');
}

export interface ExpandedSource {
  code: string;
  /** origins[i]: where line i + 1 of `code` was written. */
  origins: { file: string; line: number }[];
}

/** Expands the include directives of `code` (named `file`) from `includeDir`. */
export function expandIncludes(file: string, code: string, includeDir: string): ExpandedSource {
  const out: string[] = [];
  const origins: { file: string; line: number }[] = [];
  const seen = new Set<string>();
  const expand = (name: string, text: string, chain: string[]): void => {
    text.split('\n').forEach((line, i) => {
      const m = DIRECTIVE.exec(line);
      if (!m) {
        out.push(line);
        origins.push({ file: name, line: i + 1 });
        return;
      }
      const inc = m[1]!;
      if (chain.includes(inc)) throw new KernelError(`${name}:${i + 1}: include cycle ${[...chain, inc].join(' -> ')}`, [file]);
      if (seen.has(inc)) return;
      seen.add(inc);
      const generated = GENERATED.get(inc);
      if (generated !== undefined) {
        expand(`generated/${inc}`, generated, [...chain, inc]);
        return;
      }
      const path = join(includeDir, inc);
      if (!existsSync(path)) throw new KernelError(`${name}:${i + 1}: included file not found: shaders/include/${inc}`, [file]);
      expand(`include/${inc}`, readFileSync(path, 'utf8'), [...chain, inc]);
    });
  };
  expand(file, code, [file]);
  return { code: out.join('\n'), origins };
}
