/**
 * A minimal ONNX model writer (protobuf by hand) for the onnxruntime peer: one-node graphs (Conv,
 * MatMul) with the weights as initializers and the activations as graph inputs. Field numbers
 * follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto, TypeProto). Opset 17, IR version 8.
 */

class Writer {
  private readonly parts: Uint8Array[] = [];

  private varint(v: number | bigint): void {
    let n = BigInt(v);
    if (n < 0n) n += 1n << 64n; // two's complement, as protobuf encodes negative int64
    const bytes: number[] = [];
    do {
      let b = Number(n & 0x7fn);
      n >>= 7n;
      if (n > 0n) b |= 0x80;
      bytes.push(b);
    } while (n > 0n);
    this.parts.push(Uint8Array.from(bytes));
  }

  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, 2);
    this.varint(data.byteLength);
    this.parts.push(data);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }

  finish(): Uint8Array {
    const n = this.parts.reduce((s, p) => s + p.byteLength, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.byteLength;
    }
    return out;
  }
}

const FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

function valueInfo(name: string, shape: readonly number[]): Writer {
  const dims = new Writer();
  for (const d of shape) dims.message(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, FLOAT).message(2, dims);
  return new Writer().string(1, name).message(2, new Writer().message(1, tensorType));
}

function initializer(name: string, shape: readonly number[], data: Float32Array): Writer {
  const w = new Writer();
  for (const d of shape) w.int(1, d);
  return w.int(2, FLOAT).string(8, name).bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

type Attr = { name: string; ints: number[] } | { name: string; int: number };

function node(op: string, inputs: string[], outputs: string[], attrs: Attr[]): Writer {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, `${op.toLowerCase()}0`).string(4, op);
  for (const a of attrs) {
    const aw = new Writer().string(1, a.name);
    if ('ints' in a) {
      for (const v of a.ints) aw.int(8, v);
      aw.int(20, ATTR_INTS);
    } else {
      aw.int(3, a.int).int(20, ATTR_INT);
    }
    w.message(5, aw);
  }
  return w;
}

interface Graph {
  node: Writer;
  inputs: [string, readonly number[]][];
  outputs: [string, readonly number[]][];
  initializers: [string, readonly number[], Float32Array][];
}

function model(g: Graph): Uint8Array {
  const graph = new Writer().message(1, g.node).string(2, 'bench');
  for (const [name, shape, data] of g.initializers) graph.message(5, initializer(name, shape, data));
  for (const [name, shape] of g.inputs) graph.message(11, valueInfo(name, shape));
  for (const [name, shape] of g.outputs) graph.message(12, valueInfo(name, shape));
  return new Writer()
    .int(1, 8)
    .string(2, 'asyndgan-bench')
    .message(7, graph)
    .message(8, new Writer().string(1, '').int(2, 17))
    .finish();
}

export interface ConvSpec {
  n: number;
  ci: number;
  co: number;
  h: number;
  w: number;
  k: number;
  stride: number;
  pad: number;
}

export function convOutSide(side: number, k: number, stride: number, pad: number): number {
  return Math.floor((side + 2 * pad - k) / stride) + 1;
}

/** y = Conv(x, W) (no bias), x [n, ci, h, w] an input, W [co, ci, k, k] an initializer. */
export function convModel(s: ConvSpec, weight: Float32Array): Uint8Array {
  const oh = convOutSide(s.h, s.k, s.stride, s.pad);
  const ow = convOutSide(s.w, s.k, s.stride, s.pad);
  return model({
    node: node('Conv', ['x', 'W'], ['y'], [
      { name: 'kernel_shape', ints: [s.k, s.k] },
      { name: 'strides', ints: [s.stride, s.stride] },
      { name: 'pads', ints: [s.pad, s.pad, s.pad, s.pad] },
      { name: 'group', int: 1 },
    ]),
    inputs: [['x', [s.n, s.ci, s.h, s.w]]],
    outputs: [['y', [s.n, s.co, oh, ow]]],
    initializers: [['W', [s.co, s.ci, s.k, s.k], weight]],
  });
}

/** c = MatMul(a, B), a [m, k] an input, B [k, n] an initializer. */
export function matmulModel(m: number, k: number, n: number, b: Float32Array): Uint8Array {
  return model({
    node: node('MatMul', ['a', 'B'], ['c'], []),
    inputs: [['a', [m, k]]],
    outputs: [['c', [m, n]]],
    initializers: [['B', [k, n], b]],
  });
}
