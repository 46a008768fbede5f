// The train and synth commands end to end: a tiny run writes its checkpoints and pictures, resumes,
// and synth turns PNG and NIfTI label maps into images with the saved generator.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadNifti, makePhantom, writeNifti } from '../src/data/index.js';
import { readPng, writePng } from '../src/io/index.js';
import { loadSafetensors } from '../src/io/safetensors.js';

const cli = new URL('../bin/asyndgan.js', import.meta.url).pathname;
const run = (...args: string[]) => execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const dir = mkdtempSync(join(tmpdir(), 'asyndgan-cli-'));
const out = join(dir, 'train');
const tiny = ['--size', '16', '--ngf', '4', '--ndf', '4', '--blocks', '1', '--d-layers', '2', '--batch-size', '2'];

t.test('train writes state, generator, samples, report; --resume continues', async (t) => {
  const stdout = run('train', ...tiny, '--iters', '3', '--decay-iters', '1', '--out', out, '--tensorboard');
  t.match(stdout, /report: .*report\.json/);
  for (const f of ['train_state.safetensors', 'generator.safetensors', 'samples.png', 'losses.png', 'report.json']) t.ok(existsSync(join(out, f)), f);
  const png = await readPng(join(out, 'samples.png'));
  t.ok(png.width > 100 && png.height > 50, 'sample grid has content');
  const info = JSON.parse((await loadSafetensors(join(out, 'generator.safetensors'))).metadata.asyndgan_generator!) as { trainer?: string };
  t.equal(info.trainer, 'centralized', 'the generator records how it was trained');
  const scalars = readFileSync(join(out, 'scalars.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
  t.same(scalars.map((s) => s.step), [1, 2, 3], 'one JSONL line per loss reading');
  t.ok(scalars.every((s) => Number.isFinite(s['loss/G_L1'])), 'with the losses');
  t.ok(readdirSync(join(out, 'tensorboard')).some((f) => f.startsWith('events.out.tfevents.')), '--tensorboard writes an event file');
  run('train', ...tiny, '--iters', '5', '--decay-iters', '1', '--out', out, '--resume');
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { history: { iter: number }[] };
  t.equal(report.history[report.history.length - 1]!.iter, 5, 'resumed run reached iteration 5');
  t.throws(() => run('train', '--norm', 'layer'), /--norm must be batch or instance/);
});

t.test('synth: PNG and NIfTI label maps to images', async (t) => {
  const masks = join(dir, 'masks');
  const synth = join(dir, 'synth');
  mkdirSync(masks, { recursive: true });
  const d = makePhantom({ size: 16, testSlices: 3 });
  await writePng(join(masks, 'a.png'), { width: 16, height: 16, channels: 1, data: d.test.slices[0]!.mask });
  const vol = new Float32Array(16 * 16 * 3);
  d.test.slices.forEach((s, z) => vol.set(s.mask, z * 256));
  await writeNifti(join(masks, 'v.nii.gz'), { dims: [16, 16, 3], data: vol, datatype: 'uint8' });
  t.match(run('synth', '--checkpoint', join(out, 'generator.safetensors'), '--masks', masks, '--out', synth), /synth: 2 files/);
  for (const m of d.test.modalities) {
    const img = await readPng(join(synth, `a_${m}.png`));
    t.equal(img.width, 16);
    const v = await loadNifti(join(synth, `v_${m}.nii.gz`));
    t.same(v.dims, [16, 16, 3]);
    t.ok(v.data.every((x) => x >= -1 && x <= 1), `${m}: tanh range`);
  }
  t.throws(() => run('synth', '--checkpoint', join(masks, 'a.png'), '--masks', masks, '--out', synth), /safetensors/);
});
