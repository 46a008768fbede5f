// Every op's backward against central finite differences (the cases of `npm run gradcheck`).
import t from 'tap';
import { allCases } from '../tools/gradcheck/cases.js';
import { checkCase } from '../tools/gradcheck/harness.js';
import { gpu } from './helpers/engine.js';

await gpu();
const ops = new Set<string>();
const failed = new Set<string>();
for (const c of allCases) {
  ops.add(c.op);
  const r = await checkCase(c);
  if (!r.ok) failed.add(c.op);
  t.ok(r.ok, `${c.op} (${c.name}): ${r.message}`);
}
t.ok(ops.size >= 30, `covers ${ops.size} ops`);
t.comment(`gradcheck: ${ops.size} ops, ${failed.size} failed`);
