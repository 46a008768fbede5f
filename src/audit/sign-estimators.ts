/**
 * What a server can infer about a real pixel from the sign of d(loss)/d(fake) at that pixel.
 * With the L1 term the node's reply is lambda * sign(fake - real) / count plus a small GAN term
 * (plus, under a privacy preset, clipping and noise), so every (fake value q, gradient g) pair
 * with g != 0 is a noisy constraint: g > 0 says real < q, g < 0 says real > q.
 *
 * Pure functions, one pixel at a time or a whole image at a time; they never see a real image.
 */

/** Per pixel bisection bracket of one image: the real value is believed to lie in [lo, hi]. */
export interface Bracket {
  lo: Float32Array;
  hi: Float32Array;
}

/** A bracket over the generator's whole output range [-1, 1]. */
export function fullBracket(values: number): Bracket {
  return { lo: new Float32Array(values).fill(-1), hi: new Float32Array(values).fill(1) };
}

/** The query of a bisection step: each pixel's bracket midpoint. */
export function bracketMidpoints(b: Bracket): Float32Array {
  return Float32Array.from(b.lo, (lo, i) => (lo + b.hi[i]!) / 2);
}

/**
 * One bisection step from the summed gradient of the replies to the midpoint queries:
 * sum > 0 (fake above real) lowers hi to the midpoint, sum < 0 raises lo; 0 (no answer or no
 * signal) leaves the pixel as it was. Returns the number of pixels that moved.
 */
export function bisect(b: Bracket, query: Float32Array, gradSum: ArrayLike<number>): number {
  let moved = 0;
  for (let i = 0; i < query.length; i++) {
    const g = gradSum[i]!;
    if (g > 0) {
      b.hi[i] = query[i]!;
      moved++;
    } else if (g < 0) {
      b.lo[i] = query[i]!;
      moved++;
    }
  }
  return moved;
}

/**
 * The robust 1-D estimate of one pixel from m noisy sign constraints: the threshold t that
 * violates the fewest constraints (a constraint (q, g > 0) is violated when t > q, (q, g < 0)
 * when t < q; g = 0 says nothing). Among the thresholds with the fewest violations, the one
 * closest to `prior` (what the attacker would guess with no replies, e.g. the population mean),
 * so a pixel with no usable constraint stays at the prior. Noise-free constraints give the prior
 * clamped into the feasible interval [max lower bound, min upper bound].
 *
 * `priorWeight` k > 0 adds k pseudo-constraints on each side of the prior, so the estimate leaves
 * the prior only where the replies save more than k violations by doing so: a shrinkage that keeps
 * noise (a defended node) from dragging the estimate away from the prior.
 */
export function minViolationEstimate(queriesIn: ArrayLike<number>, gradsIn: ArrayLike<number>, prior: number, priorWeight = 0): number {
  let queries = queriesIn;
  let grads = gradsIn;
  if (priorWeight > 0) {
    queries = [...Array.from(queriesIn), ...Array<number>(2 * priorWeight).fill(prior)];
    grads = [...Array.from(gradsIn), ...Array<number>(priorWeight).fill(1), ...Array<number>(priorWeight).fill(-1)];
  }
  const idx: number[] = [];
  for (let i = 0; i < queries.length; i++) if (grads[i]! !== 0 && Number.isFinite(grads[i]!)) idx.push(i);
  if (idx.length === 0) return prior;
  idx.sort((a, b) => queries[a]! - queries[b]!);
  // Sweep t from -inf upwards. Below every q all "real > q" constraints are violated.
  let violations = 0;
  for (const i of idx) if (grads[i]! < 0) violations++;
  let best = violations;
  let bestT = prior;
  let bestDist = Infinity;
  const consider = (lo: number, hi: number, v: number): void => {
    const t = Math.min(hi, Math.max(lo, prior));
    const d = Math.abs(t - prior);
    if (v < best || (v === best && d < bestDist)) {
      best = v;
      bestT = t;
      bestDist = d;
    }
  };
  consider(-Infinity, queries[idx[0]!]!, violations);
  for (let k = 0; k < idx.length; ) {
    // Cross every constraint at this q value at once (ties share the point q).
    const q = queries[idx[k]!]!;
    let below = violations; // violations exactly at t = q: only strict ones count
    let after = violations;
    while (k < idx.length && queries[idx[k]!]! === q) {
      const g = grads[idx[k]!]!;
      if (g < 0) { below--; after--; } // real > q is satisfied from t >= q on
      else after++; // real < q is violated from t > q on
      k++;
    }
    consider(q, q, below);
    const next = k < idx.length ? queries[idx[k]!]! : Infinity;
    consider(q, next, after);
    violations = after;
  }
  return bestT;
}

/**
 * A whole image from its logged constraints: `queries[r]` and `grads[r]` are the r-th fake sent
 * for this image and the r-th returned gradient (same length as `prior`).
 */
export function estimateFromConstraints(queries: readonly ArrayLike<number>[], grads: readonly ArrayLike<number>[], prior: ArrayLike<number>, priorWeight = 0): Float32Array {
  if (queries.length !== grads.length) throw new RangeError(`estimateFromConstraints: ${queries.length} queries, ${grads.length} gradients`);
  const m = queries.length;
  const out = new Float32Array(prior.length);
  const q = new Float64Array(m);
  const g = new Float64Array(m);
  for (let p = 0; p < prior.length; p++) {
    for (let r = 0; r < m; r++) {
      q[r] = queries[r]![p]!;
      g[r] = grads[r]![p]!;
    }
    out[p] = minViolationEstimate(q, g, prior[p]!, priorWeight);
  }
  return out;
}

/**
 * The estimators every reconstruction attack reports: plain min-violation, and shrunk towards the
 * prior with k pseudo-constraints. The attack's headline figure is the best of them, which can
 * only overstate the attacker (the choice is made with the real images, when scoring).
 */
export const ESTIMATORS: readonly { name: string; priorWeight: number }[] = [
  { name: 'min-violation', priorWeight: 0 },
  { name: 'shrunk k=2', priorWeight: 2 },
  { name: 'shrunk k=8', priorWeight: 8 },
];
