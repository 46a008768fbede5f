/**
 * The package as an embedder gets it: `npm pack` (which builds dist/ through `prepare`), install the
 * tarball into an empty project, type-check a TypeScript consumer against the shipped .d.ts files,
 * train three steps of a tiny network through `asyndgan/engine`, and run `npx asyndgan --help` on the
 * compiled JavaScript (no tsx, no devDependency).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const repo = new URL('..', import.meta.url).pathname;
const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');

const CONSUMER = `
import { init, tensor, parameter, zeros, normal_, conv2d, tanh, l1Loss, backward, tidy, keep, Adam, type Tensor } from 'asyndgan/engine';
import { ResnetGenerator, PatchDiscriminator } from 'asyndgan/models';
import { EngineGenerator, EngineDiscriminator, DiscriminatorNode, startServer } from 'asyndgan/federation';

await init();
const x: Tensor = tensor(new Float32Array(2 * 8 * 8).map((_, i) => Math.sin(i)), [2, 1, 8, 8]);
const y = tensor(new Float32Array(2 * 8 * 8).map((_, i) => 0.5 * Math.cos(i)), [2, 1, 8, 8]);
const w = keep(parameter(normal_(zeros([1, 1, 3, 3]), 0, 0.3, 1)));
const opt = new Adam([w], { lr: 1e-2 });
const losses: number[] = [];
for (let s = 0; s < 3; s++) {
  const l = tidy(() => {
    opt.zeroGrad();
    const l = l1Loss(tanh(conv2d(x, w, null, { padding: 1 })), y);
    backward(l);
    opt.step();
    return l;
  });
  losses.push(await l.item());
}
const exported = [ResnetGenerator, PatchDiscriminator, EngineGenerator, EngineDiscriminator, DiscriminatorNode, startServer].map((f) => typeof f);
console.log(JSON.stringify({ losses, exported }));
`;

t.test('npm pack -> install into an empty project -> import, type-check, train, run the CLI', async (t) => {
  const dir = t.testdir({});
  const run = (cmd: string, args: string[], cwd: string): string =>
    execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_loglevel: 'error' } });

  run('npm', ['pack', '--silent', '--pack-destination', dir], repo);
  const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  t.ok(tgz, 'npm pack wrote a tarball');
  const listing = execFileSync('tar', ['tzf', join(dir, tgz!)], { encoding: 'utf8' }).split('\n');
  t.ok(listing.includes('package/dist/src/engine/index.js'), 'the tarball ships the compiled engine');
  t.ok(listing.includes('package/dist/src/engine/index.d.ts'), 'and its types');
  t.ok(listing.includes('package/shaders/conv2d.wgsl'), 'and the WGSL kernels');
  t.notOk(listing.some((f) => f.startsWith('package/test/') || f.startsWith('package/docs/') || f.startsWith('package/.ci/') || f.startsWith('package/src/')), 'no tests, docs, CI or TypeScript sources');

  const app = join(dir, 'app');
  run('mkdir', ['-p', app], dir);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'embedder', version: '1.0.0', type: 'module', private: true }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, tgz!)], app);
  t.ok(existsSync(join(app, 'node_modules', 'asyndgan', 'dist', 'src', 'index.js')), 'installed');
  t.notOk(existsSync(join(app, 'node_modules', 'tsx')), 'no devDependency came along');

  writeFileSync(join(app, 'main.ts'), CONSUMER);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, outDir: 'out', types: [] },
    files: ['main.ts'],
  }));
  let typeErrors = '';
  try {
    run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
  } catch (e) {
    typeErrors = String((e as { stdout?: string }).stdout ?? e);
  }
  t.equal(typeErrors, '', 'the consumer type-checks against the shipped declarations');

  const out = JSON.parse(run(process.execPath, [join('out', 'main.js')], app).trim().split('\n').pop()!) as { losses: number[]; exported: string[] };
  t.equal(out.losses.length, 3, 'three training steps ran');
  t.ok(out.losses.every(Number.isFinite), `losses are finite: ${out.losses.map((l) => l.toFixed(4)).join(', ')}`);
  t.ok(out.losses[2]! < out.losses[0]!, 'and the loss went down');
  t.same(out.exported, Array(6).fill('function'), 'models and federation entry points are exported');

  const help = run('npx', ['--no-install', 'asyndgan', '--help'], app);
  t.match(help, /usage: asyndgan <command>/, 'npx asyndgan --help runs the compiled CLI');
});
