/**
 * The shape of the code, checked: no import cycles anywhere under src/ (type-only imports excluded,
 * they vanish at run time), and code above the engine reaches it only through its public entry
 * (src/engine/index.ts) or its internal one (src/engine/internal.ts), never its files.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import t from 'tap';

const SRC = resolve(new URL('../src', import.meta.url).pathname);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Relative value imports and re-exports of every file, as absolute .ts paths. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+'(\.[^']+)'/gms)) {
      deps.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
    }
    for (const m of text.matchAll(/\bimport\(\s*'(\.[^']+)'\s*\)/g)) deps.push(resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
    graph.set(file, deps);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(relative(SRC, w));
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

t.test('the checker finds a planted cycle', async (t) => {
  const g = new Map([['/a.ts', ['/b.ts']], ['/b.ts', ['/c.ts']], ['/c.ts', ['/a.ts']], ['/d.ts', ['/a.ts']]]);
  t.equal(cycles(g).length, 1, 'one cycle');
  t.equal(cycles(g)[0]!.length, 3, 'of three files');
  t.same(cycles(new Map([['/a.ts', ['/b.ts']], ['/b.ts', []]])), [], 'and none in a chain');
});

t.test('no import cycles under src/', async (t) => {
  const found = cycles(importGraph());
  t.same(found, [], found.map((c) => c.join(' <-> ')).join('; ') || 'acyclic');
});

t.test('code above the engine imports it only through src/engine/index.ts or internal.ts', async (t) => {
  const engineDir = join(SRC, 'engine');
  const allowed = new Set([join(engineDir, 'index.ts'), join(engineDir, 'internal.ts')]);
  const reaches: string[] = [];
  for (const file of sourceFiles(SRC)) {
    if (file.startsWith(engineDir + '/')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/\bfrom\s+'(\.[^']+)'/g)) {
      const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
      if (target.startsWith(engineDir + '/') && !allowed.has(target)) reaches.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
    }
  }
  t.same(reaches, [], reaches.join('; ') || 'only through the entries');
});
