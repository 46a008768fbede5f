import t from 'tap';
import * as fsp from 'node:fs/promises';
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
  type SafetensorsTensorInput,
} from '../src/io/safetensors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A file with an arbitrary (possibly invalid) header and data section; header padded to 8. */
function craft(header: unknown, data: Uint8Array | number[], opts: { headerText?: string } = {}): Uint8Array {
  let text = opts.headerText ?? JSON.stringify(header);
  while ((8 + enc(text).length) % 8 !== 0) text += ' ';
  const h = enc(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

t.test('hand-built file from the spec: one 2x2 F32 tensor', async (t) => {
  // Built byte by byte from the format description, not with the encoder:
  //   u64 LE header length | JSON header padded with spaces to a multiple of 8 | raw LE data.
  const header = '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}';
  t.equal(header.length, 57);
  const bytes = Uint8Array.from([
    0x40, 0, 0, 0, 0, 0, 0, 0, // header length 64 = 57 bytes of JSON + 7 spaces
    ...enc(header), 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x00, 0x00, 0x80, 0x3f, // 1.0f = 0x3f800000, little-endian
    0x00, 0x00, 0x00, 0x40, // 2.0f = 0x40000000
    0x00, 0x00, 0x40, 0x40, // 3.0f = 0x40400000
    0x00, 0x00, 0x80, 0x40, // 4.0f = 0x40800000
  ]);
  t.equal(bytes.length, 88);
  const { tensors, metadata } = decodeSafetensors(bytes, 'hand.safetensors');
  t.same(Object.keys(tensors), ['w']);
  const w = tensors['w']!;
  t.equal(w.dtype, 'F32');
  t.same(w.shape, [2, 2]);
  t.ok(w.data instanceof Float32Array);
  t.same([...w.data], [1, 2, 3, 4]);
  t.same(metadata, {});
  // The encoder produces exactly these bytes (the layout Python's safetensors writes for this input).
  const ours = encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) } });
  t.same([...ours], [...bytes], 'encoder output is byte-identical to the hand-built file');
});

t.test('hand-built file with metadata, an I64 scalar and a U8 vector', async (t) => {
  const header =
    '{"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"a":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  t.equal(header.length, 137);
  const bytes = Uint8Array.from([
    0x90, 0, 0, 0, 0, 0, 0, 0, // 144 = 137 + 7 spaces
    ...enc(header), ...new Array(7).fill(0x20),
    0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // -5 as little-endian two's complement i64
    1, 2, 255,
  ]);
  const f = decodeSafetensors(bytes);
  t.same(f.metadata, { format: 'pt' });
  t.equal(f.tensors['b']!.dtype, 'I64');
  t.same(f.tensors['b']!.shape, []);
  t.same([...(f.tensors['b']!.data as BigInt64Array)], [-5n]);
  t.same([...f.tensors['a']!.data], [1, 2, 255]);
  const ours = encodeSafetensors(
    { b: { dtype: 'I64', shape: [], data: BigInt64Array.of(-5n) }, a: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 255) } },
    { format: 'pt' },
  );
  t.same([...ours], [...bytes]);
});

t.test('round trip of every dtype, empty and scalar tensors, metadata', async (t) => {
  const tensors: Record<string, SafetensorsTensorInput> = {
    f32: { dtype: 'F32', shape: [2, 3], data: Float32Array.of(0.5, -1, 3.25, 1e-8, -0, Infinity) },
    f16: { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff) },
    i64: { dtype: 'I64', shape: [2], data: BigInt64Array.of(-(2n ** 62n), 123n) },
    i32: { dtype: 'I32', shape: [1, 1, 3], data: Int32Array.of(-1, 0, 2147483647) },
    u8: { dtype: 'U8', shape: [5], data: Uint8Array.of(0, 1, 2, 254, 255) },
    f64: { dtype: 'F64', shape: [1], data: Float64Array.of(Math.PI) },
    bf16: { dtype: 'BF16', shape: [2], data: Uint16Array.of(0x3f80, 0x4000) },
    bool: { dtype: 'BOOL', shape: [2], data: Uint8Array.of(1, 0) },
    empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    scalar: { dtype: 'F32', shape: [], data: Float32Array.of(7) },
    raw: { dtype: 'F32', shape: [2], data: new Uint8Array(Float32Array.of(1.5, -2.5).buffer) },
  };
  const meta = { epoch: '12', note: 'ünïcode ✓' };
  const bytes = encodeSafetensors(tensors, meta);
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  t.equal((8 + headerLen) % 8, 0, 'data section starts 8-byte aligned');
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  t.match(headerText, /^\{.*\} *$/, 'JSON followed only by space padding');
  const back = decodeSafetensors(bytes);
  t.same(back.metadata, meta);
  t.same(Object.keys(back.tensors), Object.keys(tensors), 'header order kept');
  for (const [name, tin] of Object.entries(tensors)) {
    const got = back.tensors[name]!;
    t.equal(got.dtype, tin.dtype, `${name} dtype`);
    t.same(got.shape, tin.shape, `${name} shape`);
    const a = Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength);
    const b = Buffer.from(tin.data.buffer, tin.data.byteOffset, tin.data.byteLength);
    t.ok(a.equals(b), `${name} bytes`);
  }
  t.ok(back.tensors['f32']!.data instanceof Float32Array);
  t.ok(back.tensors['raw']!.data instanceof Float32Array, 'raw bytes come back typed');
  t.same([...back.tensors['raw']!.data], [1.5, -2.5]);
  t.ok(back.tensors['i64']!.data instanceof BigInt64Array);
  // Offsets are contiguous from 0 in header order.
  const hdr = JSON.parse(headerText) as Record<string, { data_offsets?: [number, number] }>;
  let cursor = 0;
  for (const name of Object.keys(tensors)) {
    t.same(hdr[name]!.data_offsets, [cursor, cursor + tensors[name]!.data.byteLength]);
    cursor += tensors[name]!.data.byteLength;
  }
  t.equal(cursor, bytes.length - 8 - headerLen);
});

t.test('aligned data is viewed in place, unaligned data is copied', async (t) => {
  const bytes = encodeSafetensors({
    a: { dtype: 'U8', shape: [1], data: Uint8Array.of(9) },
    b: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }, // starts at data offset 1: unaligned
    c: { dtype: 'U8', shape: [3], data: Uint8Array.of(1, 2, 3) },
  });
  const f = decodeSafetensors(bytes);
  t.same([...f.tensors['b']!.data], [1, 2]);
  t.equal(f.tensors['b']!.data.byteOffset % 4, 0);
  t.not(f.tensors['b']!.data.buffer, bytes.buffer, 'unaligned tensor is a copy');
  t.equal(f.tensors['c']!.data.buffer, bytes.buffer, 'U8 tensor is a view');

  // The same file at an odd offset inside a larger buffer.
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  const g = decodeSafetensors(shifted.subarray(3));
  t.same([...g.tensors['b']!.data], [1, 2]);
  t.same([...g.tensors['c']!.data], [1, 2, 3]);
});

t.test('corrupt files are rejected with errors that name the file and the problem', async (t) => {
  const f32 = (n: number): Uint8Array => new Uint8Array(new Float32Array(n).buffer);
  const src = 'ckpt.safetensors';
  const rx = (s: string): RegExp => new RegExp(`safetensors ckpt\\.safetensors: .*${s}`);
  const good = encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } });

  t.throws(() => decodeSafetensors(new Uint8Array(5), src), rx('file is 5 bytes, shorter than the 8-byte header length'));
  const tooLong = good.slice(0, 20);
  t.throws(() => decodeSafetensors(tooLong, src), rx('header length 64 goes beyond the end of the file'));
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
  t.throws(() => decodeSafetensors(huge, src), rx('header length 9223372036854775808 goes beyond'));
  t.throws(() => decodeSafetensors(craft(null, [], { headerText: '{"w": [1, 2' }), src), rx('header is not valid JSON'));
  t.throws(() => decodeSafetensors(craft(null, [], { headerText: '[1, 2, 3]' }), src), rx('does not start with "\\{"'));
  t.throws(() => decodeSafetensors(craft(null, [], { headerText: '{"a": 1}' }), src), rx("tensor 'a': entry is not an object"));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F7', shape: [1], data_offsets: [0, 4] } }, f32(1)), src), rx("tensor 'w': unknown dtype \"F7\""));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, [0]), src), rx('dtype F8_E4M3 is not supported'));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, f32(4)), src),
    rx("tensor 'w': shape \\[2,3\\] x F32 needs 24 bytes but data_offsets \\[0, 16\\] span 16"));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), src), rx('must be non-negative integers'));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1)), src), rx("data_offsets \\[4, 0\\] end before they begin"));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1], offsets: [0, 4] } }, f32(1)), src), rx("unexpected field 'offsets'"));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1] } }, f32(1)), src), rx('data_offsets undefined must be two non-negative integers'));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4.5] } }, f32(1)), src), rx('must be two non-negative integers'));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4], extra: 1 } }, f32(1)), src), rx("unexpected field 'extra'"));
  t.throws(
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)), src),
    rx("tensor 'b': data_offsets \\[4, 12\\] overlap the previous tensor"),
  );
  t.throws(
    () => decodeSafetensors(craft({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(3)), src),
    rx("tensor 'b': data_offsets \\[8, 12\\] leave a gap after byte 4"),
  );
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32(2)), src), rx('leave a gap after byte 0'));
  t.throws(() => decodeSafetensors(craft({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)), src),
    rx("tensor 'w': data_offsets \\[0, 16\\] go past the end of the data section \\(8 bytes\\): file truncated or offsets out of range"));
  t.throws(() => decodeSafetensors(good.subarray(0, good.length - 3), src), rx('go past the end of the data section \\(13 bytes\\): file truncated'));
  const trailing = new Uint8Array(good.length + 5);
  trailing.set(good);
  t.throws(() => decodeSafetensors(trailing, src), rx('5 trailing bytes after the last tensor'));
  t.throws(() => decodeSafetensors(craft({ __metadata__: { epoch: 3 } }, []), src), rx("__metadata__ value for 'epoch' is not a string"));
  const badUtf8 = craft({}, []);
  badUtf8[9] = 0xff;
  t.throws(() => decodeSafetensors(badUtf8, src), rx('not valid UTF-8'));
  // Sanity: the crafted-file helper does make valid files.
  t.same(decodeSafetensors(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1)), src).tensors['w']!.shape, [1]);
  t.same(decodeSafetensors(craft({}, []), src).tensors, {}, 'a file with no tensors is valid');
});

t.test('the encoder rejects inconsistent input', async (t) => {
  t.throws(() => encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: new Float32Array(2) } }), /tensor 'w': shape \[3\] x F32 needs 12 bytes, data has 8/);
  t.throws(() => encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Int32Array(2) } }), /dtype F32 needs a Float32Array or raw Uint8Array bytes, got Int32Array/);
  t.throws(() => encodeSafetensors({ __metadata__: { dtype: 'U8', shape: [0], data: new Uint8Array(0) } }), /reserved/);
  t.throws(() => encodeSafetensors({ w: { dtype: 'F32', shape: [1.5], data: new Float32Array(1) } }), /not a non-negative integer/);
  t.throws(() => encodeSafetensors({}, { n: 3 as unknown as string }), /metadata value for 'n' must be a string/);
});

t.test('save/load through the file system; errors name the path', async (t) => {
  const dir = t.testdir({ 'bad.safetensors': 'not a safetensors file at all' });
  const path = `${dir}/model.safetensors`;
  await saveSafetensors(path, { w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } }, { step: '1' });
  const f = await loadSafetensors(path);
  t.same([...f.tensors['w']!.data], [1, 2]);
  t.same(f.metadata, { step: '1' });
  await t.rejects(loadSafetensors(`${dir}/bad.safetensors`), new RegExp(`safetensors ${dir}/bad\\.safetensors: header length`));
});

t.test('a failed save leaves the previous file intact and no temp file behind', async (t) => {
  const dir = t.testdir({});
  const path = `${dir}/model.safetensors`;
  // The real module, to write the "previous" checkpoint.
  await saveSafetensors(path, { w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
  const before = await fsp.readFile(path);

  // The same module with a file system whose writes fail half-way (as on a full disk).
  const mod = await t.mockImport<typeof import('../src/io/safetensors.js')>('../src/io/safetensors.js', {
    'node:fs/promises': {
      ...fsp,
      open: async (...args: Parameters<typeof fsp.open>) => {
        const fh = await fsp.open(...args);
        if (String(args[0]).endsWith('.tmp')) {
          let calls = 0;
          const write = fh.write.bind(fh) as (b: Uint8Array, o: number, l: number) => Promise<{ bytesWritten: number }>;
          (fh as unknown as { write: unknown }).write = async (b: Uint8Array, o: number, l: number) => {
            if (calls++ === 0) return write(b, o, Math.min(l, 10)); // a short write first...
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); // ...then a full disk
          };
        }
        return fh;
      },
    },
  });
  await t.rejects(mod.saveSafetensors(path, { w: { dtype: 'F32', shape: [1000], data: new Float32Array(1000) } }), /ENOSPC/);
  t.ok((await fsp.readFile(path)).equals(before), 'old file unchanged');
  t.same(await fsp.readdir(dir), ['model.safetensors'], 'temp file removed');
  t.same([...(await loadSafetensors(path)).tensors['w']!.data], [1, 2]);
});
