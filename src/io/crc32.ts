/**
 * CRC-32 (ISO-HDLC / IEEE 802.3, reflected polynomial 0xEDB88320), as used by PNG chunks and zlib's
 * gzip trailer. Written out here because `zlib.crc32` only exists from Node 20.15 on.
 */

/** The byte table of a reflected 32-bit CRC with polynomial `poly` (shared with crc32c.ts). */
export function reflectedCrcTable(poly: number): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? poly ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

const TABLE = reflectedCrcTable(0xedb88320);

/**
 * CRC-32 of `bytes`. Pass a previous result as `crc` to continue over several pieces:
 * `crc32(b, crc32(a))` equals `crc32(concat(a, b))`.
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
