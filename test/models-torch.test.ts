/**
 * Our checkpoints in real PyTorch: a generator and a discriminator, trained a few passes here,
 * saved as safetensors, loaded strictly into the authors' architecture (tools/bench/torch_step.py)
 * by test/helpers/torch_forward.py, give the outputs our engine gives, in evaluation mode (running
 * statistics) and in training mode (batch statistics). Needs python3 with torch; says so and skips
 * where it is missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as E from '../src/engine/index.js';
import { PatchDiscriminator, ResnetGenerator, saveModule, type Module } from '../src/models/index.js';
import { closeness, gpu, randomArray } from './helpers/engine.js';

await gpu();

const probe = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
const torchVersion = probe.status === 0 ? probe.stdout.trim() : null;

const cases: { kind: 'generator' | 'discriminator'; make: (seed: number) => Module; input: number[]; args: string[] }[] = [
  // Non-square, non-power-of-two images (20x28, 35x37): reflection padding, the transposed
  // convolutions' output padding and the PatchGAN's 4x4 stride-2 layers on ragged sizes.
  { kind: 'generator', make: (seed) => new ResnetGenerator(1, 3, { ngf: 8, blocks: 2, seed }), input: [2, 1, 20, 28], args: ['8', '2', '3'] },
  { kind: 'discriminator', make: (seed) => new PatchDiscriminator(4, { ndf: 8, layers: 3, seed }), input: [3, 4, 35, 37], args: ['8', '3'] },
];

for (const c of cases) {
  t.test(`${c.kind}: our safetensors in PyTorch give our outputs`, { skip: torchVersion ? false : `python3 with torch is not installed (${probe.stderr?.trim().split('\n').pop() ?? 'no python3'})` }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'models-torch-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const net = c.make(5);
    const size = c.input.reduce((a, b) => a * b, 1);
    const x = E.tensor(randomArray(size, 9), c.input);
    // Training-mode passes move the running statistics away from their initial values.
    for (let i = 0; i < 3; i++) E.tidy(() => net.forward(E.tensor(randomArray(size, 20 + i), c.input)));
    const ckpt = join(dir, 'net.safetensors');
    await saveModule(ckpt, net);
    const want = {
      eval: await E.tidy(() => net.eval().forward(x)).read(),
      train: await E.tidy(() => net.train().forward(x)).read(),
    };
    const xin = join(dir, 'x.f32');
    await writeFile(xin, Buffer.from((await x.read()).buffer));
    const py = spawnSync(
      'python3',
      ['test/helpers/torch_forward.py', c.kind, ckpt, xin, c.input.join(','), join(dir, 'y'), ...c.args],
      { encoding: 'utf8' },
    );
    t.equal(py.status, 0, `torch ${torchVersion} loaded the checkpoint strictly and ran${py.status ? `: ${py.stderr}` : ''}`);
    if (py.status !== 0) return;
    for (const mode of ['eval', 'train'] as const) {
      const bytes = await readFile(join(dir, `y.${mode}.f32`));
      const got = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      t.equal(got.length, want[mode].length, `${mode}: output size`);
      const cmp = closeness(want[mode], Array.from(got), 1e-4, 1e-5);
      t.ok(cmp.ok, `${mode} mode: PyTorch and our engine agree (${cmp.msg})`);
    }
    net.dispose();
    x.dispose();
  });
}
