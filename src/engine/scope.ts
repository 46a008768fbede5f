/**
 * Memory scopes. JavaScript cannot tell us when a tensor is unreachable, so GPU memory is released
 * by scope: every tensor created inside `tidy(fn)` is disposed when `fn` returns, except the
 * tensors it returns (handed to the enclosing scope) and those passed to `keep()`.
 * Values saved for backward are retained by the autograd graph, so they outlive the scope and
 * are released by `backward()` or `releaseGraph()`.
 */
import type { Tensor } from './tensor.js';

const scopes: Set<Tensor>[] = [];

/** @internal Called by the Tensor constructor. */
export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Exempts tensors from disposal by the enclosing scopes (e.g. parameters, optimizer state). */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

/** Anything a tidy function may return; tensors found in it survive the scope. */
export type Tidyable = Tensor | Tensor[] | Record<string, unknown> | number | string | void | null | undefined;

/**
 * Runs `fn` and disposes every tensor it created that is not returned or kept. Works with async
 * functions too (the scope spans the awaited work), but do not interleave two async tidies.
 */
export function tidy<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (err) {
    release(scopes.pop()!, undefined);
    throw err;
  }
  if (result instanceof Promise) {
    const scope = scopes[scopes.length - 1]!;
    return result.then(
      (value) => {
        removeScope(scope);
        release(scope, value);
        return value;
      },
      (err) => {
        removeScope(scope);
        release(scope, undefined);
        throw err;
      },
    ) as T;
  }
  release(scopes.pop()!, result);
  return result;
}

function removeScope(scope: Set<Tensor>): void {
  const i = scopes.lastIndexOf(scope);
  if (i >= 0) scopes.splice(i, 1);
}

function release(scope: Set<Tensor>, result: unknown): void {
  const survivors = new Set<Tensor>();
  collect(result, survivors, 0);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) parent?.add(t);
    else t.dispose();
  }
}

function collect(value: unknown, out: Set<Tensor>, depth: number): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('binding' in value && 'shape' in value && 'dispose' in value) {
    out.add(value as Tensor);
    const g = (value as Tensor).grad;
    if (g) out.add(g);
    return;
  }
  for (const v of Array.isArray(value) ? value : Object.values(value)) collect(v, out, depth + 1);
}
