/** Shared helpers for engine tests: engine start-up and numeric comparison. */
import { init, type Engine } from '../../src/engine/index.js';
import { Rng } from '../../src/engine/random.js';

export async function gpu(): Promise<Engine> {
  return init();
}

/** Max |a - b| / (atol + rtol * |b|) <= 1 for every element; reports the worst element. */
export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-4, atol = 1e-5) {
  if (actual.length !== expected.length) return { ok: false, msg: `length ${actual.length} != ${expected.length}` };
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    const r = Number.isNaN(a) || Number.isNaN(b) ? Infinity : Math.abs(a - b) / (atol + rtol * Math.abs(b));
    if (r > worst) {
      worst = r;
      at = i;
    }
  }
  return {
    ok: worst <= 1,
    msg: at < 0 ? 'equal' : `worst at ${at}: got ${actual[at]}, expected ${expected[at]} (ratio ${worst.toFixed(2)})`,
  };
}

/** Deterministic test data. */
export function randomArray(n: number, seed: number, low = -1, high = 1): Float32Array {
  return new Rng(seed).uniformArray(n, low, high);
}
