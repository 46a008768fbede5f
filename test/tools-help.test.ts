// `npm run bench -- --help` and `npm run profile -- --help` print their usage (they used to crash
// with ERR_PARSE_ARGS_UNKNOWN_OPTION); an unknown option is one line; `npm run` prints no
// "Unknown project config" warning (.npmrc holds no option npm does not know).
import { spawnSync } from 'node:child_process';
import t from 'tap';

const root = new URL('..', import.meta.url).pathname;

for (const tool of ['bench', 'profile']) {
  t.test(`npm run ${tool} -- --help`, async (t) => {
    const r = spawnSync('npm', ['run', tool, '--', '--help'], { cwd: root, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    t.equal(r.status, 0, 'exit 0');
    t.match(r.stdout, new RegExp(`usage: npm run ${tool} -- \\[options\\]`));
    t.match(r.stdout, /--conv-path auto\|subgroup\|tiled/, 'lists the options');
    t.notMatch(r.stderr, /ERR_PARSE_ARGS|Unknown project config/, `no crash, no npm warning (stderr: ${r.stderr.trim()})`);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', `tools/${tool}.ts`, '--frobnicate'], { cwd: root, encoding: 'utf8' });
    t.equal(bad.status, 2, 'unknown option: exit 2');
    t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
    t.match(bad.stderr, /Unknown option '--frobnicate' \(--help lists the options\)/);
  });
}

// The FedAvg tools parse their options through tools/tool-args.ts too.
for (const tool of ['fedavg-bytes', 'fedavg-sweep']) {
  t.test(`tools/${tool}.ts --help and an unknown option`, async (t) => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', `tools/${tool}.ts`, '--help'], { cwd: root, encoding: 'utf8' });
    t.equal(help.status, 0, 'exit 0');
    t.match(help.stdout, new RegExp(`usage: node --import tsx tools/${tool}\\.ts \\[options\\]`));
    t.match(help.stdout, /--nodes N/, 'lists the options');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', `tools/${tool}.ts`, '--frobnicate'], { cwd: root, encoding: 'utf8' });
    t.equal(bad.status, 2, 'unknown option: exit 2');
    t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
    t.match(bad.stderr, new RegExp(`tools/${tool}\\.ts: Unknown option '--frobnicate' \\(--help lists the options\\)`));
  });
}
