/**
 * Reverse-mode automatic differentiation over a tape. Each differentiable op records a GradNode on
 * its output; `backward()` walks the graph in reverse topological order, accumulates gradients,
 * stores them on the leaves' `.grad`, and releases the values the graph saved as it goes.
 */
import { ShapeError } from './errors.js';
import { keep } from './scope.js';
import type { Tensor } from './tensor.js';
import { accumulate, fill } from './primitives.js';

/** @internal One recorded op: how to map the output's gradient to its inputs' gradients. */
export interface GradNode {
  readonly op: string;
  /** Inputs in op order; null where no gradient is needed. */
  readonly inputs: readonly (Tensor | null)[];
  /** Values kept alive for backward (shared views; released with the node). */
  readonly saved: readonly Tensor[];
  /**
   * Gradients for each input (null where not needed), given the output gradient. For each input k
   * in `absorbs`, `pending[k]` is the gradient already accumulated for it (if any): the returned
   * gradient of that input must then include it (added in the backward's last kernel instead of a
   * separate accumulation launch); the caller releases `pending`.
   */
  backward(grad: Tensor, pending: readonly (Tensor | undefined)[]): readonly (Tensor | null)[];
  /** The inputs whose pending gradients `backward` can add in (see `backward`). */
  readonly absorbs?: readonly number[];
}

let gradDepth = 0;

/** Whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradDepth === 0;
}

/** Runs `fn` without recording a graph (inference, optimizer updates, evaluation). */
export function noGrad<T>(fn: () => T): T {
  gradDepth++;
  try {
    const r = fn();
    if (r instanceof Promise) {
      return r.finally(() => gradDepth--) as T;
    }
    gradDepth--;
    return r;
  } catch (err) {
    gradDepth--;
    throw err;
  }
}

/** True when an op with these inputs must record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradDepth === 0 && inputs.some((t) => t?.requiresGrad);
}

/**
 * @internal Records `out = op(inputs)` on the tape when any input requires a gradient. `saved`
 * tensors are shared (retained) so they outlive the caller's scope until backward releases them.
 */
export function record(
  op: string,
  out: Tensor,
  inputs: readonly (Tensor | null | undefined)[],
  saved: readonly Tensor[],
  backward: (grad: Tensor, saved: readonly Tensor[], pending: readonly (Tensor | undefined)[]) => readonly (Tensor | null)[],
  absorbs?: readonly number[],
): Tensor {
  if (!needsGrad(...inputs)) return out;
  const keptValues = saved.map((t) => keep(t.share()));
  out.requiresGrad = true;
  out.node = {
    op,
    inputs: inputs.map((t) => (t && t.requiresGrad ? t : null)),
    saved: keptValues,
    backward: (g, pending) => backward(g, keptValues, pending),
    ...(absorbs === undefined || absorbs.length === 0 ? {} : { absorbs }),
  };
  return out;
}

/**
 * Back-propagates from `root`. Without `grad`, `root` must hold one element (a loss) and is seeded
 * with 1; with `grad` (e.g. d(loss)/d(output) received from elsewhere) it must match root's shape.
 * Gradients accumulate into leaves' `.grad`; the graph is released afterwards.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward(): ${root} does not require grad (no parameter upstream?)`);
  if (grad && (grad.shape.length !== root.shape.length || grad.shape.some((d, i) => d !== root.shape[i]))) {
    throw new ShapeError(`backward(): gradient shape [${grad.shape}] does not match output shape [${root.shape}]`);
  }
  if (!grad && root.size !== 1) {
    throw new ShapeError(`backward(): output has shape [${root.shape}]; pass a gradient for non-scalar outputs`);
  }
  const order = topologicalOrder(root);
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    const seed = grad ? grad.share(root.shape) : fill(root.shape, 1);
    grads.set(root, seed);
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      const g = grads.get(t);
      grads.delete(t);
      if (!g) {
        releaseNode(t);
        continue;
      }
      const node = t.node;
      if (!node) {
        // A leaf: accumulate into .grad, which outlives every scope.
        if (t.grad) {
          accumulate(t.grad, g);
          g.dispose();
        } else {
          t.grad = keep(g.shape === t.shape ? g : reshapeOwned(g, t.shape));
        }
        continue;
      }
      // The pending gradients of the absorbing inputs, except an input that also fills another slot.
      const absorbed: (Tensor | undefined)[] = [];
      for (const k of node.absorbs ?? []) {
        const ain = node.inputs[k];
        if (ain && node.inputs.indexOf(ain) === node.inputs.lastIndexOf(ain)) absorbed[k] = grads.get(ain);
      }
      const inputGrads = node.backward(g, absorbed);
      g.dispose();
      node.inputs.forEach((input, k) => {
        const gi = inputGrads[k];
        if (!input || !gi) {
          gi?.dispose();
          return;
        }
        const prev = grads.get(input);
        if (prev && prev === absorbed[k]) {
          // gi already includes prev.
          prev.dispose();
          grads.set(input, gi);
        } else if (prev) {
          accumulate(prev, gi);
          gi.dispose();
        } else {
          grads.set(input, gi);
        }
      });
      releaseNode(t);
    }
  });
}

/** Releases the graph behind `t` without computing gradients (e.g. after an inference pass). */
export function releaseGraph(t: Tensor): void {
  for (const n of topologicalOrder(t)) releaseNode(n);
}

function reshapeOwned(g: Tensor, shape: readonly number[]): Tensor {
  const v = g.share(shape);
  g.dispose();
  return v;
}

function releaseNode(t: Tensor): void {
  if (!t.node) return;
  for (const s of t.node.saved) s.dispose();
  t.node = null;
}

function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: generator graphs are deep enough to make recursion risky.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [t, k] = top;
    const inputs = t.node?.inputs ?? [];
    if (k < inputs.length) {
      top[1]++;
      const next = inputs[k];
      if (next && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}
