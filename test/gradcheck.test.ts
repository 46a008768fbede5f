// Every op's backward against central finite differences, and its forward against its CPU reference where the spec has one (the cases of `npm run gradcheck`).
import t from 'tap';
import * as E from '../src/engine/index.js';
import { allCases } from './specs/cases.js';
import { checkCase } from './specs/harness.js';
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

t.test('the checker fails a wrong reference and a wrong gradient', async (t) => {
  const wrongForward = await checkCase({ op: 'tanh', name: 'reference of another op', inputs: [{ shape: [5] }], fn: E.tanh, reference: ([x]) => x!.map(Math.sin) });
  t.equal(wrongForward.ok, false, `a forward unlike its reference fails: ${wrongForward.message}`);
  // detach(x) * x has gradient x, not the 2x that the reference x^2 implies: autograd is checked too.
  const wrongGrad = await checkCase({ op: 'square', name: 'stopped gradient', inputs: [{ shape: [6] }], fn: (x) => E.mul(E.detach(x), x), reference: ([x]) => x!.map((v) => v * v) });
  t.equal(wrongGrad.ok, false, `an autograd gradient unlike the reference's differences fails: ${wrongGrad.message}`);
});
