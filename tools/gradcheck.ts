/**
 * `npm run gradcheck`: checks every op's backward against central finite differences.
 * Ends with `gradcheck: N ops, F failed` (N counts ops, not cases). Exit code 1 on any failure.
 * Filter with `--op name` (repeatable).
 */
import { init } from '../src/engine/index.js';
import { allCases } from '../test/specs/cases.js';
import { checkCase } from '../test/specs/harness.js';

const wanted = process.argv.flatMap((a, i, all) => (all[i - 1] === '--op' ? [a] : []));
await init();
const cases = allCases.filter((c) => wanted.length === 0 || wanted.includes(c.op));
const failedOps = new Set<string>();
const ops = new Set<string>();
const started = Date.now();
for (const [i, c] of cases.entries()) {
  ops.add(c.op);
  let line: string;
  try {
    const r = await checkCase(c);
    if (!r.ok) failedOps.add(c.op);
    line = `${r.ok ? 'ok  ' : 'FAIL'} ${c.op} (${c.name}): ${r.message}`;
  } catch (err) {
    failedOps.add(c.op);
    line = `FAIL ${c.op} (${c.name}): threw ${(err as Error).stack ?? err}`;
  }
  console.log(`[${i + 1}/${cases.length}] ${line}`);
}
console.log(`gradcheck: ${cases.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`gradcheck: ${ops.size} ops, ${failedOps.size} failed${failedOps.size ? ` (${[...failedOps].join(', ')})` : ''}`);
process.exitCode = failedOps.size > 0 ? 1 : 0;
