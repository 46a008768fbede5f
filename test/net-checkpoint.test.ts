/**
 * Checkpoint files and startup errors: a checksum that catches flipped bits (which the old format
 * loaded silently), old files still loadable, temp files of a crashed writer removed at startup,
 * node checkpoint names that fit any allowed id, a checkpoint that cannot be written shown in
 * logs and /metrics while training goes on, and one-line startup errors that name the file.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { FileCheckpointStore, legacyNodeCheckpointNames, nodeCheckpointName, sealCheckpoint } from '../src/net/checkpoint.js';
import { encodeFrame } from '../src/net/codec.js';
import type { LogLevel } from '../src/net/log.js';
import { startServer } from '../src/net/server.js';
import { LinearGenerator, LogisticDiscriminator, makeNodeData } from './helpers/net-backends.js';
import { H, TOKENS, W, makeTestNode, startTestServer } from './helpers/net-harness.js';

t.test('checksum: a flipped bit is refused with a one-line error naming the file', async (t) => {
  const dir = t.testdir({});
  const store = new FileCheckpointStore(dir, 'c.ckpt');
  const payload = encodeFrame({ format: 'x', weights: new Uint8Array(4096).fill(7) });
  await store.save(payload);
  t.same(await new FileCheckpointStore(dir, 'c.ckpt').load(), payload, 'round trip');
  const bytes = readFileSync(store.path);
  t.same(bytes.subarray(0, 16).toString(), 'ASYNDGAN-CKPT-1\n', 'magic header');
  bytes[bytes.length - 100] ^= 0x10; // one bit inside the weights
  writeFileSync(store.path, bytes);
  await t.rejects(new FileCheckpointStore(dir, 'c.ckpt').load(), { name: 'StartupError', message: new RegExp(`^checkpoint ${store.path}: checksum mismatch [^\\n]*$`) });
  // The same damage in a file without the header (the old format) is loaded as if it were fine.
  writeFileSync(store.path, bytes.subarray(48));
  const warns: string[] = [];
  const legacy = await new FileCheckpointStore(dir, 'c.ckpt', { log: (l, m) => l === 'warn' && warns.push(m) }).load();
  t.ok(legacy && legacy.length === payload.length && Buffer.compare(Buffer.from(legacy), Buffer.from(payload)) !== 0, 'without a checksum the flipped bit goes unnoticed');
  t.ok(warns.some((m) => /no checksum/.test(m)), 'old-format files load with a warning');
  writeFileSync(store.path, bytes.subarray(0, 20));
  await t.rejects(new FileCheckpointStore(dir, 'c.ckpt').load(), /truncated/);
  writeFileSync(store.path, '');
  await t.rejects(new FileCheckpointStore(dir, 'c.ckpt').load(), /the file is empty/);
});

t.test('temp files of a crashed writer are removed at startup; a live writer keeps its own', async (t) => {
  const dir = t.testdir({
    '.server.ckpt.999999999.3.tmp': 'left by a crash (no such pid)',
    [`.server.ckpt.${process.pid}.1.tmp`]: 'left by an earlier process with our pid',
    [`.server.ckpt.${process.ppid}.1.tmp`]: 'a live process is writing this',
    '.other.ckpt.999999999.1.tmp': 'another store: not ours to remove',
  });
  await new FileCheckpointStore(dir, 'server.ckpt').load();
  t.same(readdirSync(dir).sort(), [`.other.ckpt.999999999.1.tmp`, `.server.ckpt.${process.ppid}.1.tmp`].sort());
});

t.test('node checkpoint names fit any allowed id (256 characters, or 60 non-ASCII ones)', async (t) => {
  const long = 'h'.repeat(256);
  const wide = '北京协和医院'.repeat(10); // 60 characters, 180 bytes of UTF-8
  for (const id of [long, wide, 'alpha']) {
    const name = nodeCheckpointName(id);
    t.ok(Buffer.byteLength(name) <= 100, `${Buffer.byteLength(name)} bytes for an id of ${Buffer.byteLength(id)} bytes`);
  }
  t.not(nodeCheckpointName('a/b'), nodeCheckpointName('a_b'), 'ids that read alike still get their own file');
  // The old name (percent-encoded id) does not fit for these ids: the write fails.
  const dir = t.testdir({ legacy: {} });
  const old = `node-${encodeURIComponent(wide)}-checkpoint.msgpack`;
  t.ok(Buffer.byteLength(old) > 255, `the old name would be ${Buffer.byteLength(old)} bytes`);
  await t.rejects(new FileCheckpointStore(dir, old).save(new Uint8Array(4)), { code: 'ENAMETOOLONG' });
  t.same(legacyNodeCheckpointNames(wide), [], 'and it is not even looked for');

  // A real node with such an id checkpoints and resumes.
  const server = await startTestServer(new LinearGenerator(), { tokens: { ...TOKENS, [wide]: 'tok-wide', [long]: 'tok-long' } });
  t.teardown(() => server.stop());
  for (const [id, token] of [[wide, 'tok-wide'], [long, 'tok-long']] as const) {
    // Mask keys are limited to 256 characters: short ones, whatever the id.
    const tn = makeTestNode(server.url, id, { token, checkpointDir: dir, checkpointEvery: 1, data: makeNodeData(`n${token}`, 12, H, W, 3) });
    t.teardown(() => tn.node.stop());
    await tn.node.start();
    await tn.node.waitUntilReady(3000);
    await server.coordinator.waitForRound(server.round + 3, 5000);
    await tn.node.stop();
    t.ok(existsSync(join(dir, nodeCheckpointName(id))), 'checkpoint written');
    const disc2 = new LogisticDiscriminator(tn.data);
    const again = makeTestNode(server.url, id, { token, data: tn.data, disc: disc2, checkpointDir: dir });
    t.teardown(() => again.node.stop());
    await again.node.start();
    t.equal(disc2.w, tn.disc.w, 'resumed from it');
    await again.node.stop();
  }
  // A checkpoint under the old name is still found, and moves to the new name on the next save.
  const legacyDir = join(dir, 'legacy');
  const first = makeTestNode(server.url, 'alpha', { checkpointDir: legacyDir, checkpointEvery: 1 });
  await first.node.start();
  await first.node.waitUntilReady(3000);
  await server.coordinator.waitForRound(server.round + 2, 5000);
  await first.node.stop();
  const [oldName] = legacyNodeCheckpointNames('alpha');
  await writeFile(join(legacyDir, oldName!), readFileSync(join(legacyDir, nodeCheckpointName('alpha'))));
  execFileSync('rm', [join(legacyDir, nodeCheckpointName('alpha'))]);
  const disc3 = new LogisticDiscriminator(first.data);
  const migrated = makeTestNode(server.url, 'alpha', { data: first.data, disc: disc3, checkpointDir: legacyDir });
  await migrated.node.start();
  t.equal(disc3.w, first.disc.w, 'restored from the old name');
  await migrated.node.stop();
  t.same(readdirSync(legacyDir).filter((n) => n.includes('checkpoint')), [nodeCheckpointName('alpha')], 'moved to the new name');
});

t.test('a checkpoint that cannot be written: error line each time, visible in /metrics, training goes on', async (t) => {
  const dir = t.testdir({});
  const logs: { level: LogLevel; msg: string; data?: Record<string, unknown> }[] = [];
  const server = await startTestServer(new LinearGenerator(), {
    checkpointDir: join(dir, 'ckpt'), checkpointEvery: 2, log: (level, msg, data) => logs.push({ level, msg, ...(data ? { data } : {}) }),
  });
  t.teardown(() => server.stop());
  // After startup (no checkpoint yet), a regular file takes the directory's place: every save fails.
  writeFileSync(join(dir, 'ckpt'), 'not a directory');
  const tn = makeTestNode(server.url, 'alpha');
  t.teardown(() => tn.node.stop());
  await tn.node.start();
  await server.coordinator.waitForRound(8, 10000);
  const m = server.metrics().checkpoint;
  t.ok(m.failures >= 3 && m.consecutiveFailures === m.failures && m.saves === 0, `failures counted in /metrics: ${JSON.stringify(m)}`);
  t.match(m.lastError ?? '', /ENOTDIR|EEXIST/);
  const errors = logs.filter((l) => l.level === 'error' && /^checkpoint failed/.test(l.msg));
  t.equal(errors.length, m.failures, 'one error line per failure');
  t.match(errors.at(-1)!.msg, /times in a row/, 'repeated failures say so');
  const body = await (await fetch(`${server.httpUrl}/metrics`)).json() as { checkpoint: { failures: number } };
  t.ok(body.checkpoint.failures >= 3, 'served at GET /metrics');
  t.ok(server.round >= 8, 'training went on');
  await tn.node.stop();
  await server.stop();
});

function portInUse(): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => resolve({ port: (s.address() as { port: number }).port, close: () => s.close() }));
  });
}

t.test('startup errors name the file (or port) and what is wrong, on one line', async (t) => {
  const dir = t.testdir({ 'tokens.json': JSON.stringify({ nodes: { alpha: 'a' } }), 'bad-tokens.json': '{"nodes": {"alpha": "a",}}', node: {} });
  const base = { generator: new LinearGenerator(), tokens: TOKENS, session: { maskChannels: 1, imageChannels: 1, height: H, width: W, batchSize: 2 }, port: 0 };
  const oneLine = (re: RegExp) => ({ name: 'StartupError', message: new RegExp(`^${re.source}[^\\n]*$`) });
  const ck = join(dir, 'ckpt');
  const store = new FileCheckpointStore(ck, 'server-checkpoint.msgpack');
  await store.save(new Uint8Array([0xc1, 0x00])); // valid checksum, but not msgpack
  await t.rejects(startServer({ ...base, checkpointDir: ck }), oneLine(new RegExp(`checkpoint ${store.path}: cannot resume from it: `)));
  await store.save(encodeFrame({ format: 'something else' }));
  await t.rejects(startServer({ ...base, checkpointDir: ck }), oneLine(new RegExp(`checkpoint ${store.path}: cannot resume from it: not an asyndgan server checkpoint`)));
  writeFileSync(store.path, '');
  await t.rejects(startServer({ ...base, checkpointDir: ck }), oneLine(new RegExp(`checkpoint ${store.path}: the file is empty`)));
  await t.rejects(startServer({ ...base, tokens: join(dir, 'bad-tokens.json') }), oneLine(new RegExp(`token file ${dir}/bad-tokens.json: not valid JSON \\(`)));
  await t.rejects(startServer({ ...base, tokens: join(dir, 'missing.json') }), oneLine(new RegExp(`token file ${dir}/missing.json: cannot read it \\(ENOENT`)));
  await t.rejects(startServer({ ...base, tls: { certFile: join(dir, 'tokens.json'), keyFile: join(dir, 'key.pem') } }), oneLine(new RegExp(`TLS private key ${dir}/key.pem: cannot read it \\(ENOENT`)));
  await t.rejects(startServer({ ...base, tls: { certFile: join(dir, 'tokens.json'), keyFile: join(dir, 'tokens.json') } }), oneLine(/TLS: cannot use certificate .*tokens\.json with key .*tokens\.json \(not PEM/));
  const busy = await portInUse();
  await t.rejects(startServer({ ...base, port: busy.port }), oneLine(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${busy.port}: the port is in use`)));
  busy.close();
  // A node's corrupt checkpoint names its file too.
  const nodeDir = join(dir, 'node');
  writeFileSync(join(nodeDir, nodeCheckpointName('alpha')), sealCheckpoint(new Uint8Array([1, 2, 3])));
  const tn = makeTestNode('ws://127.0.0.1:1/ws', 'alpha', { checkpointDir: nodeDir });
  await t.rejects(tn.node.start(), oneLine(new RegExp(`checkpoint ${join(nodeDir, nodeCheckpointName('alpha'))}: cannot restore the discriminator from it: `)));

  // The CLI prints them without a stack trace (the token file is read before the engine starts).
  const cli = spawnSync(process.execPath, ['bin/asyndgan.js', 'server', '--tokens', join(dir, 'bad-tokens.json'), '--classes', '2'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(cli.status, 1);
  t.match(cli.stderr.trim(), new RegExp(`^asyndgan server: token file ${dir}/bad-tokens.json: not valid JSON \\([^\\n]*$`), `one line: ${cli.stderr.trim()}`);
});
