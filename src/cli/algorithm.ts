/**
 * `--algorithm asyndgan|fedavg-gan` for `server`, `node` and `demo`: taken off the command line
 * before the command parses it, so each algorithm keeps its own option set (and --help).
 */
import { UsageError } from './options.js';

export type Algorithm = 'asyndgan' | 'fedavg-gan';
export const ALGORITHMS: readonly Algorithm[] = ['asyndgan', 'fedavg-gan'];

/** The algorithm named by `--algorithm X` / `--algorithm=X` (default 'asyndgan') and the other arguments. */
export function splitAlgorithm(argv: readonly string[]): { algorithm: Algorithm; rest: string[] } {
  const rest: string[] = [];
  let algorithm: string = 'asyndgan';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--algorithm') {
      algorithm = argv[++i] ?? '';
    } else if (a.startsWith('--algorithm=')) algorithm = a.slice('--algorithm='.length);
    else rest.push(a);
  }
  if (!(ALGORITHMS as readonly string[]).includes(algorithm)) throw new UsageError(`--algorithm must be one of ${ALGORITHMS.join(', ')}, got "${algorithm}"`);
  return { algorithm: algorithm as Algorithm, rest };
}
