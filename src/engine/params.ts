/**
 * Builder for a kernel's uniform block. WGSL kernels declare their parameters as a struct of
 * 4-byte scalars (u32, i32, f32) only, so the byte layout is simply the call order here.
 */
export class Params {
  private readonly view: DataView;
  private readonly bytes: ArrayBuffer;
  private offset = 0;

  constructor(capacity = 64) {
    this.bytes = new ArrayBuffer(capacity * 4);
    this.view = new DataView(this.bytes);
  }

  u32(...values: number[]): this {
    for (const v of values) this.view.setUint32(this.next(), v >>> 0, true);
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) this.view.setInt32(this.next(), v | 0, true);
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) this.view.setFloat32(this.next(), v, true);
    return this;
  }

  /** The packed bytes, padded to 16 bytes as uniform blocks require. */
  data(): Uint8Array {
    const size = Math.max(16, Math.ceil(this.offset / 16) * 16);
    return new Uint8Array(this.bytes, 0, size);
  }

  private next(): number {
    const at = this.offset;
    if (at + 4 > this.bytes.byteLength) throw new RangeError('Params: too many uniform values');
    this.offset += 4;
    return at;
  }
}
