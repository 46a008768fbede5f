/**
 * Collect the JSON outputs of tools/audit-measure.sh / audit-frontier.sh into the Markdown table of
 * docs/PRIVACY.md section 4. Usage: node --import tsx tools/audit-table.ts DOCS_RESULTS label...
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...labels] = process.argv.slice(2);
if (!dir || labels.length === 0) {
  console.error('usage: tools/audit-table.ts DOCS_RESULTS label...');
  process.exit(2);
}
type J = Record<string, any>;
const read = (p: string): J | undefined => (existsSync(join(dir, p)) ? (JSON.parse(readFileSync(join(dir, p), 'utf8')) as J) : undefined);
const f = (x: number | undefined, d = 1) => (x === undefined || x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
const eps = (rep: J | undefined): string => {
  if (!rep) return 'n/a';
  const values = Object.values(rep).map((r: any) => r?.epsilon).filter((e) => e !== undefined) as number[];
  if (values.length === 0) return 'unbounded (no noise)';
  if (values.some((e) => e < 0)) return 'unbounded';
  return f(Math.max(...values), 1);
};
const dice = (e: J | undefined): number | undefined => e?.results?.settings?.find((s: J) => s.kind === 'synthetic')?.foregroundDice?.mean;
const off = { phantom: dice(read('phantom-off/eval.json')), mricron: dice(read('mricron-off/eval.json')) };
console.log('| node setting | active PSNR (dB) | active gain (dB) | active epsilon | passive gain (dB) | membership AUC | epsilon after the run | generator L1 | Dice phantom (x off) | Dice mricron (x off) |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const label of labels) {
  const a = read(`active-${label}/audit-active.json`);
  const cols: string[] = [label, f(a?.psnr), f(a?.gain), a ? eps({ victim: a.nodeReported }) : 'n/a'];
  const per = (d: 'phantom' | 'mricron') => {
    const p = read(`${d}-${label}/audit-passive.json`);
    const m = read(`${d}-${label}/audit-membership.json`);
    const e = dice(read(`${d}-${label}/eval.json`));
    return { p, m, e, ratio: e !== undefined && off[d] ? e / off[d]! : undefined };
  };
  const ph = per('phantom');
  const mr = per('mricron');
  const both = (x: (r: ReturnType<typeof per>) => string) => (mr.p || mr.m || mr.e !== undefined ? `${x(ph)} / ${x(mr)}` : x(ph));
  cols.push(both((r) => f(r.p?.gain)), both((r) => f(r.m?.auc, 3)), both((r) => eps(r.p?.nodeReported)), both((r) => f(r.p?.generatorL1, 3)));
  cols.push(`${f(ph.e, 3)} (${f(ph.ratio, 2)})`, mr.e !== undefined ? `${f(mr.e, 3)} (${f(mr.ratio, 2)})` : 'n/a');
  console.log(`| ${cols.join(' | ')} |`);
}
