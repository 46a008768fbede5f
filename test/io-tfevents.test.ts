// TensorBoard event files and JSONL scalar logs: CRC-32C against published vectors, TFRecord
// framing and Event protobufs decoded here field by field, and (where python3 has tensorboard or
// tensorflow) read back by TensorBoard's own reader.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { crc32c, maskedCrc32c } from '../src/io/crc32c.js';
import { runScalarLog } from '../src/io/scalar-log.js';

const ascii = (s: string) => new TextEncoder().encode(s);

t.test('CRC-32C: published check values', async (t) => {
  t.equal(crc32c(ascii('123456789')), 0xe3069283, 'the CRC catalogue check value');
  t.equal(crc32c(new Uint8Array(32)), 0x8a9136aa, 'RFC 3720 B.4: 32 bytes of zeros');
  t.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43, 'RFC 3720 B.4: 32 bytes of 0xff');
  t.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e, 'RFC 3720 B.4: 0..31');
  const c = 0xe3069283;
  t.equal(maskedCrc32c(ascii('123456789')), ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0, 'mask = rotate right 15 + 0xa282ead8');
});

/** Minimal protobuf reader: field number -> list of values (varint as number, fixed as bytes, length-delimited as bytes). */
function fields(b: Uint8Array): Map<number, (number | Uint8Array)[]> {
  const out = new Map<number, (number | Uint8Array)[]>();
  let i = 0;
  const varint = () => {
    let v = 0n, shift = 0n;
    for (;;) {
      const byte = b[i++]!;
      v |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if (!(byte & 0x80)) return Number(v);
    }
  };
  while (i < b.length) {
    const key = varint();
    const f = key >> 3, wire = key & 7;
    let v: number | Uint8Array;
    if (wire === 0) v = varint();
    else if (wire === 1) { v = b.subarray(i, i + 8); i += 8; }
    else if (wire === 5) { v = b.subarray(i, i + 4); i += 4; }
    else if (wire === 2) { const n = varint(); v = b.subarray(i, i + n); i += n; }
    else throw new Error(`wire type ${wire}`);
    out.set(f, [...(out.get(f) ?? []), v]);
  }
  return out;
}
const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);

t.test('scalar log: JSONL lines and a TensorBoard event file with valid records', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'asyndgan-tb-'));
  const log = runScalarLog(out, true);
  log.write(1, { gL1: 0.5, D: 0.25 });
  log.write(2, { gL1: 0.375, D: Number.NaN }, { phase: 'train' });
  const lines = readFileSync(join(out, 'scalars.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(lines.length, 2);
  t.match(lines[0], { step: 1, gL1: 0.5, D: 0.25 });
  t.match(lines[1], { step: 2, gL1: 0.375, phase: 'train' });
  t.match(String(lines[0]!.time), /^\d{4}-\d\d-\d\dT/, 'ISO time');

  const file = readFileSync(log.tensorboardPath!);
  t.match(log.tensorboardPath!, /tensorboard[/\\]events\.out\.tfevents\.\d+\./);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const events: Map<number, (number | Uint8Array)[]>[] = [];
  for (let i = 0; i < file.length;) {
    const len = Number(view.getBigUint64(i, true));
    t.equal(view.getUint32(i + 8, true), maskedCrc32c(file.subarray(i, i + 8)), `record ${events.length}: length CRC`);
    const data = file.subarray(i + 12, i + 12 + len);
    t.equal(view.getUint32(i + 12 + len, true), maskedCrc32c(data), `record ${events.length}: data CRC`);
    events.push(fields(data));
    i += 16 + len;
  }
  t.equal(events.length, 3, 'header + 2 scalar events');
  t.equal(new TextDecoder().decode(events[0]!.get(3)![0] as Uint8Array), 'brain.Event:2', 'file_version');
  const wall = f64(events[1]!.get(1)![0] as Uint8Array);
  t.ok(Math.abs(wall - Date.now() / 1000) < 60, 'wall_time in seconds');
  t.equal(events[2]!.get(2)![0], 2, 'step');
  const values = (ev: Map<number, (number | Uint8Array)[]>) =>
    fields(ev.get(5)![0] as Uint8Array).get(1)!.map((v) => {
      const fv = fields(v as Uint8Array);
      return [new TextDecoder().decode(fv.get(1)![0] as Uint8Array), f32(fv.get(2)![0] as Uint8Array)];
    });
  t.same(values(events[1]!), [['gL1', 0.5], ['D', 0.25]], 'summary values: tag and simple_value');
  t.same(values(events[2]!), [['gL1', 0.375]], 'a non-finite value is left out of the events');

  // TensorBoard's own reader, when python has it.
  const probe = spawnSync('python3', ['-c', 'import tensorboard'], { encoding: 'utf8' });
  const probeTf = spawnSync('python3', ['-c', 'import tensorflow'], { encoding: 'utf8' });
  if (probe.status !== 0 && probeTf.status !== 0) {
    t.comment('skipped: python3 has neither tensorboard nor tensorflow, so the read-back by TensorBoard itself is not run here');
    return;
  }
  const py = `import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
a = EventAccumulator(sys.argv[1]); a.Reload()
print(' '.join(f'{e.step}:{e.value}' for e in a.Scalars('gL1')))`;
  const r = spawnSync('python3', ['-c', py, join(out, 'tensorboard')], { encoding: 'utf8' });
  t.equal(r.stdout.trim(), '1:0.5 2:0.375', `TensorBoard reads the scalars (stderr: ${r.stderr.slice(-300)})`);
});
