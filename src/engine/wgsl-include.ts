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
      const path = join(includeDir, inc);
      if (!existsSync(path)) throw new KernelError(`${name}:${i + 1}: included file not found: shaders/include/${inc}`, [file]);
      expand(`include/${inc}`, readFileSync(path, 'utf8'), [...chain, inc]);
    });
  };
  expand(file, code, [file]);
  return { code: out.join('\n'), origins };
}
