/**
 * TensorBoard event files, written by hand (no TensorFlow): a TFRecord file of `Event` protobufs.
 *
 * A record is: uint64 length (LE), uint32 masked CRC-32C of those 8 bytes, the data, uint32 masked
 * CRC-32C of the data. The first event carries file_version "brain.Event:2"; each scalar is an Event
 * { wall_time (field 1, double), step (field 2, int64), summary (field 5) { value (field 1) { tag
 * (field 1, string), simple_value (field 2, float) } } }. The file name must contain "tfevents" for
 * TensorBoard to read it: events.out.tfevents.<seconds>.<host>.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { maskedCrc32c } from './crc32c.js';

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** Protobuf bytes of an Event. With `scalars`: a Summary of simple values; with `fileVersion`: the header event. */
export function eventProto(e: { wallTime: number; step: number; fileVersion?: string; scalars?: Record<string, number> }): Uint8Array {
  const w = new ProtoWriter();
  w.double(1, e.wallTime);
  w.varint(2, e.step);
  if (e.fileVersion !== undefined) w.bytes(3, utf8(e.fileVersion));
  if (e.scalars) {
    const summary = new ProtoWriter();
    for (const [tag, value] of Object.entries(e.scalars)) {
      const v = new ProtoWriter();
      v.bytes(1, utf8(tag));
      v.float(2, value);
      summary.bytes(1, v.finish());
    }
    w.bytes(5, summary.finish());
  }
  return w.finish();
}

/** Appends scalar events to one event file in `dir` (created). Appends are small: one write per call. */
export class TensorBoardWriter {
  readonly path: string;
  constructor(dir: string, now = Date.now()) {
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, `events.out.tfevents.${Math.floor(now / 1000)}.${hostname()}`);
    writeFileSync(this.path, tfRecord(eventProto({ wallTime: now / 1000, step: 0, fileVersion: 'brain.Event:2' })));
  }

  scalars(step: number, values: Record<string, number>, now = Date.now()): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
    appendFileSync(this.path, tfRecord(eventProto({ wallTime: now / 1000, step, scalars: finite })));
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The few protobuf wire types an Event needs. */
class ProtoWriter {
  private parts: number[] = [];
  varint(field: number, v: number): void {
    this.tag(field, 0);
    this.rawVarint(BigInt(Math.trunc(v)));
  }
  double(field: number, v: number): void {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(...b);
  }
  float(field: number, v: number): void {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(...b);
  }
  bytes(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.rawVarint(BigInt(b.length));
    this.parts.push(...b);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
  private tag(field: number, wire: number): void {
    this.rawVarint(BigInt((field << 3) | wire));
  }
  private rawVarint(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) byte |= 0x80;
      this.parts.push(byte);
    } while (x > 0n);
  }
}
