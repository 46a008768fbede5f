/**
 * `asyndgan eval` end to end at a tiny size (32x32 phantom, 2 nodes, a very small U-Net, a few
 * iterations): once with a generator file written the way `asyndgan train` writes it, once with a
 * generator trained by the command itself. Checks the report files' structure and that every
 * headline number is finite, plus the generator/data compatibility errors.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evalCommand } from '../src/cli/eval.js';
import { UsageError } from '../src/cli/options.js';
import type { GeneratorInfo } from '../src/cli/train.js';
import { readPng } from '../src/io/index.js';
import { ResnetGenerator, saveModule } from '../src/models/index.js';
import { DEFAULT_GAN_CONFIG } from '../src/train/pix2pix.js';
import { describeTrainer, type EvalReport } from '../src/eval/report.js';
import { loadGenerator } from '../src/eval/generator.js';
import { gpu } from './helpers/engine.js';

const dir = mkdtempSync(join(tmpdir(), 'asyndgan-eval-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const TINY = ['--data', 'phantom:t1,t2', '--size', '32', '--nodes', '2', '--iters', '6', '--depth', '2', '--width', '4', '--figure-rows', '2'];

/** Runs the command, returning what it printed on stdout. */
async function run(argv: string[]): Promise<string[]> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(' '));
  try {
    await evalCommand(argv);
  } finally {
    console.log = log;
  }
  return lines;
}

async function writeGenerator(path: string, o: { size: number; modalities: string[]; provenance?: Pick<GeneratorInfo, 'trainer' | 'federation'> }): Promise<void> {
  const config = { ...DEFAULT_GAN_CONFIG, ngf: 4, blocks: 1, iters: 0, decayIters: 0, seed: 2 };
  const g = new ResnetGenerator(8, o.modalities.length, { ngf: 4, blocks: 1, norm: 'batch', dropout: true, seed: 2 });
  const info: GeneratorInfo = {
    config,
    conditionChannels: 8,
    imageChannels: o.modalities.length,
    size: o.size,
    classNames: ['background', 'skull', 'csf', 'grey_matter', 'white_matter', 'ventricles', 'edema', 'tumour_core'],
    modalities: o.modalities,
    ...o.provenance,
  };
  await saveModule(path, g, { asyndgan_generator: JSON.stringify(info) });
  g.dispose();
}

function checkReport(t: Test, out: string, printed: string[], ids: string[], runs = 1): EvalReport {
  t.equal(printed[printed.length - 1], `report: ${join(out, 'eval.json')}`, 'prints the report path last');
  const r = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8')) as EvalReport;
  t.equal(r.command, 'eval');
  t.same(r.results.settings.map((s) => s.id), ids, 'one result per setting, in order');
  t.equal(r.results.classNames.length, 8);
  t.equal(r.results.testSlices, 48);
  t.same(r.results.nodeSlices, [48, 48]);
  for (const s of r.results.settings) {
    const f = s.metrics.foreground;
    t.ok([f.dice, f.sensitivity, f.specificity].every((x) => Number.isFinite(x)), `${s.id}: finite foreground Dice, sensitivity, specificity`);
    // HD95 is undefined (NaN, null in JSON) only when no foreground class has a slice where both
    // prediction and ground truth are non-empty (e.g. a barely trained U-Net predicting one class).
    if (Number.isFinite(f.hd95)) t.ok(f.hd95 >= 0, `${s.id}: HD95 ${f.hd95}`);
    else t.ok(f.hd95 === null && s.metrics.classes.slice(1).every((c) => c.hd95.n === 0), `${s.id}: HD95 undefined only when no class has one`);
    t.ok(f.dice >= 0 && f.dice <= 1, `${s.id}: Dice ${f.dice} in [0, 1]`);
    t.equal(s.metrics.classes.length, 8);
    t.equal(s.metrics.slices, 48 * runs, 'per-slice metrics of every run pooled');
    t.equal(s.runs.length, runs);
    t.equal(s.foregroundDice.n, runs);
    t.ok(s.runs.every((x) => Number.isFinite(x.foreground.dice)));
    t.ok(Number.isFinite(s.finalLoss) && s.trainSeconds > 0);
    t.equal(s.trainSlices, s.id === 'real-all' || s.id === 'synthetic' ? 96 : s.id === 'real+synthetic' ? 192 : 48);
  }
  t.equal(r.results.segmenter.iters, 6);
  t.equal(r.results.segmenter.width, 4);

  const md = readFileSync(join(out, 'eval.md'), 'utf8');
  t.match(md, /\| setting \| training slices \| Dice \| HD95 \(px\) \| sensitivity \| specificity \|/);
  for (const id of ids) t.ok(md.split('\n').filter((l) => l.startsWith(`| ${id} |`)).length === 5, `${id}: a row in each of the 5 tables`);
  t.match(md, /\| setting \| skull \| csf \| grey_matter \| white_matter \| ventricles \| edema \| tumour_core \|/);
  return r;
}

t.test('with a generator file', async (t) => {
  await gpu();
  const gen = join(dir, 'generator.safetensors');
  const federation = { rounds: 600, nodes: 3, nodeIds: ['hospital-a', 'hospital-b', 'hospital-c'] };
  await writeGenerator(gen, { size: 32, modalities: ['t1', 't2'], provenance: { trainer: 'federated', federation } });
  const out = join(dir, 'a');
  const printed = await run(['--generator', gen, '--out', out, ...TINY]);
  const r = checkReport(t, out, printed, ['real-all', 'real-node-0', 'real-node-1', 'synthetic', 'real+synthetic']);
  t.equal(r.generator?.source, 'file');
  t.equal(r.generator?.path, gen);
  t.equal(r.generator?.trainer, 'federated', 'eval.json records how the generator was trained');
  t.same(r.generator?.info.federation, federation);
  t.equal(r.results.synthetic?.slices, 96);
  t.ok(r.results.claim, 'claim check present');
  t.equal(typeof r.results.claim?.beatsEverySingleNode, 'boolean');
  t.match(readFileSync(join(out, 'eval.md'), 'utf8'), /generator: \*\*FEDERATED \(AsynDGAN server, 600 rounds, 3 nodes\)\*\*: `.*generator\.safetensors` \(ResNet generator .*, 0 rounds at 32x32\)/);
  const png = await readPng(join(out, 'eval.png'));
  // Columns: real t1, synth t1, ground truth, 5 settings; tiles 32 px at scale 3.
  t.ok(png.width > 8 * 96 && png.height > 2 * 96, `figure ${png.width}x${png.height}`);
});

t.test('without a generator: trains one, labelled as such', async (t) => {
  await gpu();
  const out = join(dir, 'b');
  const printed = await run([
    '--out', out, ...TINY, '--settings', 'real-all,real-node,synthetic',
    '--gan-iters', '2', '--gan-ngf', '4', '--gan-ndf', '4', '--gan-blocks', '1',
  ]);
  const r = checkReport(t, out, printed, ['real-all', 'real-node-0', 'real-node-1', 'synthetic']);
  t.equal(r.generator?.source, 'trained-here');
  t.equal(r.generator?.trainer, 'centralized');
  t.equal(r.generator?.info.config.iters, 2);
  t.match(readFileSync(join(out, 'eval.md'), 'utf8'), /trained here by `asyndgan eval` with the CENTRALIZED pix2pix trainer/);
});

t.test('real settings only need no generator; repeats with consecutive seeds', async (t) => {
  await gpu();
  const out = join(dir, 'c');
  const printed = await run(['--out', out, ...TINY, '--settings', 'real-all', '--repeats', '2', '--seg-seed', '5']);
  const r = checkReport(t, out, printed, ['real-all'], 2);
  t.same(r.results.seeds, [5, 6]);
  t.same(r.results.settings[0]!.runs.map((x) => x.seed), [5, 6]);
  t.match(readFileSync(join(out, 'eval.md'), 'utf8'), /Dice per run \(mean ± std over 2 runs\)/);
  t.equal(r.generator, undefined);
  t.equal(r.results.claim, undefined, 'no claim check without synthetic and single-node settings');
});

t.test('provenance: files from before the trainer field load and read as unknown', async (t) => {
  await gpu();
  const gen = join(dir, 'generator-old.safetensors');
  await writeGenerator(gen, { size: 32, modalities: ['t1', 't2'] });
  const { info } = await loadGenerator(gen);
  t.equal(info.trainer, undefined, 'no trainer field in an old file');
  t.match(describeTrainer(info.trainer ?? 'unknown', info), /unknown trainer/);
  t.match(describeTrainer('centralized', info), /CENTRALIZED pix2pix on pooled data \(0 iterations\)/);
});

t.test('generator and data must match', async (t) => {
  const gen = join(dir, 'generator-t1.safetensors');
  await writeGenerator(gen, { size: 32, modalities: ['t1'] });
  await t.rejects(run(['--generator', gen, '--out', join(dir, 'x'), ...TINY]), /the generator makes \[t1\], the data has \[t1, t2\]/);
  await t.rejects(run(['--generator', gen, '--out', join(dir, 'x'), '--size', '64']), UsageError);
  await t.rejects(run(['--out', join(dir, 'x'), '--settings', 'real-all,bogus']), /unknown setting "bogus"/);
});
