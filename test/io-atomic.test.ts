import t from 'tap';
import * as fsp from 'node:fs/promises';
import { writeFileAtomic, writeJsonAtomic } from '../src/io/atomic.js';

t.test('creates and replaces files; leaves no temp file', async (t) => {
  const dir = t.testdir({ 'keep.txt': 'other' });
  const path = `${dir}/out.bin`;
  await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
  t.same([...(await fsp.readFile(path))], [1, 2, 3]);
  await writeFileAtomic(path, 'héllo');
  t.equal(await fsp.readFile(path, 'utf8'), 'héllo', 'strings are written as UTF-8');
  await writeFileAtomic(path, new Uint8Array(0));
  t.equal((await fsp.stat(path)).size, 0, 'empty data gives an empty file');
  // A view into a larger buffer writes only the view.
  const big = Uint8Array.of(9, 8, 7, 6, 5);
  await writeFileAtomic(path, big.subarray(1, 3));
  t.same([...(await fsp.readFile(path))], [8, 7]);
  t.same((await fsp.readdir(dir)).sort(), ['keep.txt', 'out.bin']);
});

t.test('keeps the permission bits of the file it replaces', async (t) => {
  const dir = t.testdir({ 'secret.json': '{}', 'shared.json': '{}' });
  await fsp.chmod(`${dir}/secret.json`, 0o600);
  await writeFileAtomic(`${dir}/secret.json`, '{"a":1}');
  t.equal((await fsp.stat(`${dir}/secret.json`)).mode & 0o777, 0o600);
  // 0o666 is more than open() grants under the usual umask (022), so this needs the explicit chmod.
  await fsp.chmod(`${dir}/shared.json`, 0o666);
  await writeFileAtomic(`${dir}/shared.json`, '{"a":1}');
  t.equal((await fsp.stat(`${dir}/shared.json`)).mode & 0o777, 0o666);
});

t.test('writeJsonAtomic writes indented JSON and refuses unserialisable values up front', async (t) => {
  const dir = t.testdir({ 'cfg.json': 'old' });
  const path = `${dir}/cfg.json`;
  await writeJsonAtomic(path, { a: [1, 2], b: 'x' });
  const text = await fsp.readFile(path, 'utf8');
  t.ok(text.endsWith('\n'));
  t.same(JSON.parse(text), { a: [1, 2], b: 'x' });
  await t.rejects(writeJsonAtomic(path, { n: 1n }), /BigInt/);
  await t.rejects(writeJsonAtomic(path, undefined), /not JSON-serialisable/);
  t.equal(await fsp.readFile(path, 'utf8'), text, 'old content intact after refused writes');
});

t.test('a rename that fails (target is a directory) removes the temp file', async (t) => {
  const dir = t.testdir({ target: { 'inside.txt': 'x' } });
  await t.rejects(writeFileAtomic(`${dir}/target`, 'data'), { code: /EISDIR|ENOTEMPTY|EEXIST/ });
  t.same(await fsp.readdir(dir), ['target'], 'no temp file left');
  t.equal(await fsp.readFile(`${dir}/target/inside.txt`, 'utf8'), 'x');
});

t.test('a missing directory fails cleanly', async (t) => {
  const dir = t.testdir({});
  await t.rejects(writeFileAtomic(`${dir}/no/such/dir/f.txt`, 'x'), { code: 'ENOENT' });
});

t.test('injected failures at each step leave the old file intact and no temp file', async (t) => {
  for (const step of ['write', 'sync', 'rename'] as const) {
    const dir = t.testdir({ 'ckpt.bin': 'previous checkpoint' });
    const path = `${dir}/ckpt.bin`;
    const injected = (): never => {
      throw Object.assign(new Error(`EIO: injected failure in ${step}`), { code: 'EIO' });
    };
    const mod = await t.mockImport<typeof import('../src/io/atomic.js')>('../src/io/atomic.js', {
      'node:fs/promises': {
        ...fsp,
        rename: step === 'rename' ? injected : fsp.rename,
        open: async (...args: Parameters<typeof fsp.open>) => {
          const fh = await fsp.open(...args);
          if (String(args[0]).endsWith('.tmp')) {
            const h = fh as unknown as Record<string, unknown>;
            if (step === 'write') {
              const write = fh.write.bind(fh) as (b: Uint8Array, o: number, l: number) => Promise<unknown>;
              let calls = 0;
              // First a partial write lands on disk, then the device fails.
              h['write'] = async (b: Uint8Array, o: number, l: number) => (calls++ === 0 ? write(b, o, Math.min(l, 3)) : injected());
            }
            if (step === 'sync') h['sync'] = injected;
          }
          return fh;
        },
      },
    });
    await t.rejects(mod.writeFileAtomic(path, 'new content that never fully lands'), /injected failure/, step);
    t.equal(await fsp.readFile(path, 'utf8'), 'previous checkpoint', `${step}: old content intact`);
    t.same(await fsp.readdir(dir), ['ckpt.bin'], `${step}: temp file removed`);
  }
});

t.test('concurrent writers never produce a mixed file', async (t) => {
  const dir = t.testdir({});
  const path = `${dir}/f.txt`;
  const contents = Array.from({ length: 8 }, (_, i) => String(i).repeat(100_000));
  await Promise.all(contents.map((c) => writeFileAtomic(path, c)));
  const final = await fsp.readFile(path, 'utf8');
  t.ok(contents.includes(final), 'the file is exactly one of the writes');
  t.same(await fsp.readdir(dir), ['f.txt']);
});
