import t from 'tap';
import { deflateSync, inflateSync } from 'node:zlib';
import { decodePng, encodePng, readPng, writePng, type PngImage } from '../src/io/png.js';
import { crc32 } from '../src/io/crc32.js';

/** Deterministic pseudo-random bytes (LCG), so failures reproduce. */
function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** Smooth-ish image content, where the filters actually differ (pure noise favours None). */
function gradient(w: number, h: number, c: number): Uint8Array {
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = (x * (3 + k) + y * 5 + ((x * y) >> 2)) & 255;
  return out;
}

/** Walk the chunks of a PNG: [type, offset of the length field, body]. */
function chunks(png: Uint8Array): [string, number, Uint8Array][] {
  const out: [string, number, Uint8Array][] = [];
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  for (let pos = 8; pos < png.length; ) {
    const len = dv.getUint32(pos);
    out.push([Buffer.from(png.subarray(pos + 4, pos + 8)).toString('latin1'), pos, png.subarray(pos + 8, pos + 8 + len)]);
    pos += 12 + len;
  }
  return out;
}

/** Build a PNG from chunks with correct CRCs (to craft files with one specific defect). */
function build(parts: [string, Uint8Array][]): Uint8Array {
  const bufs: Uint8Array[] = [Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10])];
  for (const [type, body] of parts) {
    const c = new Uint8Array(12 + body.length);
    const dv = new DataView(c.buffer);
    dv.setUint32(0, body.length);
    c.set(Buffer.from(type, 'latin1'), 4);
    c.set(body, 8);
    dv.setUint32(8 + body.length, crc32(c.subarray(4, 8 + body.length)));
    bufs.push(c);
  }
  return Buffer.concat(bufs);
}

function ihdr(w: number, h: number, depth: number, colorType: number, interlace = 0): Uint8Array {
  const b = new Uint8Array(13);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  b[8] = depth;
  b[9] = colorType;
  b[12] = interlace;
  return b;
}

t.test('crc32 matches the standard check values', async (t) => {
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'CRC-32/ISO-HDLC check value');
  t.equal(crc32(Buffer.from('IEND')), 0xae426082, 'the CRC every PNG ends with');
  t.equal(crc32(new Uint8Array(0)), 0);
  t.equal(crc32(Buffer.from('56789'), crc32(Buffer.from('1234'))), 0xcbf43926, 'incremental');
});

t.test('hand-computed PNG: one row per filter type', async (t) => {
  // 3x5 8-bit grayscale. Pixels (row by row) and the filtered bytes, computed by hand from the spec:
  //   row 0  10  20  30  None    ->  0 | 10  20  30
  //   row 1  15  40  35  Sub     ->  1 | 15  25 251        (40-15, 35-40 = -5 mod 256)
  //   row 2  20  30  50  Up      ->  2 |  5 246  15        (20-15, 30-40, 50-35)
  //   row 3 100  90  80  Average ->  3 | 90  25  10        (100-(0+20)/2, 90-(100+30)/2, 80-(90+50)/2)
  //   row 4 110  70 200  Paeth   ->  4 | 10 226 130        (predictors: up 100, upleft 100, left 70)
  // File bytes: zlib-compressed with Python's zlib, CRCs from Python's zlib.crc32; Pillow decodes
  // the file to the same pixels.
  const hex =
    '89504e470d0a1a0a0000000d4948445200000003000000050800000000a51a097e0000001c4944415478da63e0129163' +
    'e497fccdc4fa8d9f394a928b85eb5113002382045f7c8b6cac0000000049454e44ae426082';
  const png = Buffer.from(hex, 'hex');
  const idat = chunks(png).find(([type]) => type === 'IDAT')![2];
  t.same([...inflateSync(idat)], [0, 10, 20, 30, 1, 15, 25, 251, 2, 5, 246, 15, 3, 90, 25, 10, 4, 10, 226, 130], 'file holds the rows above');
  const img = decodePng(png);
  t.same({ w: img.width, h: img.height, c: img.channels }, { w: 3, h: 5, c: 1 });
  t.same([...img.data], [10, 20, 30, 15, 40, 35, 20, 30, 50, 100, 90, 80, 110, 70, 200]);
});

t.test('files written by Pillow decode to the pixels Pillow reads', async (t) => {
  for (const [name, f] of Object.entries(PIL_FIXTURES)) {
    const img = decodePng(Buffer.from(f.b64, 'base64'), name);
    t.same({ w: img.width, h: img.height, c: img.channels }, { w: f.width, h: f.height, c: f.channels }, `${f.what}: size`);
    t.same([...img.data], f.pixels, `${f.what}: pixels`);
  }
});

t.test('encode then decode returns the same pixels for every channel count and filter', async (t) => {
  for (const channels of [1, 2, 3, 4] as const) {
    for (const filter of [0, 1, 2, 3, 4, 'adaptive'] as const) {
      for (const [kind, data] of [['noise', noise(13 * 7 * channels, channels * 10 + 1)], ['gradient', gradient(13, 7, channels)]] as const) {
        const img: PngImage = { width: 13, height: 7, channels, data };
        const png = encodePng(img, { filter });
        const back = decodePng(png);
        t.same({ w: back.width, h: back.height, c: back.channels }, { w: 13, h: 7, c: channels });
        t.ok(Buffer.from(back.data).equals(Buffer.from(data)), `channels ${channels}, filter ${filter}, ${kind}`);
      }
    }
  }
});

t.test('the encoder writes the filters it is asked for, and adaptive mixes them', async (t) => {
  const img: PngImage = { width: 16, height: 16, channels: 3, data: gradient(16, 16, 3) };
  for (const f of [0, 1, 2, 3, 4] as const) {
    const raw = inflateSync(chunks(encodePng(img, { filter: f })).find(([ty]) => ty === 'IDAT')![2]);
    const used = new Set(Array.from({ length: 16 }, (_, y) => raw[y * (16 * 3 + 1)]));
    t.same([...used], [f], `filter ${f}`);
  }
  const raw = inflateSync(chunks(encodePng(img)).find(([ty]) => ty === 'IDAT')![2]);
  const used = new Set(Array.from({ length: 16 }, (_, y) => raw[y * (16 * 3 + 1)]));
  t.ok(used.size >= 2 || !used.has(0), `adaptive picked ${[...used]}`);
});

t.test('encoder output structure: signature, IHDR fields, IEND', async (t) => {
  const png = encodePng({ width: 2, height: 3, channels: 4, data: new Uint8Array(24) });
  t.same([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const cs = chunks(png);
  t.same(cs.map(([ty]) => ty), ['IHDR', 'IDAT', 'IEND']);
  t.same([...cs[0]![2]], [0, 0, 0, 2, 0, 0, 0, 3, 8, 6, 0, 0, 0], 'width 2, height 3, depth 8, RGBA, deflate, filter 0, no interlace');
  t.same([...png.subarray(png.length - 4)], [0xae, 0x42, 0x60, 0x82]);
  t.throws(() => encodePng({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) }), /needs 12 bytes, data has 11/);
  t.throws(() => encodePng({ width: 0, height: 2, channels: 3, data: new Uint8Array(0) }), /positive integers/);
});

t.test('corrupt and unsupported files give clear errors', async (t) => {
  const good = encodePng({ width: 4, height: 4, channels: 3, data: gradient(4, 4, 3) });
  t.throws(() => decodePng(Buffer.from('GIF89a...'), 'x.gif'), /PNG x\.gif: bad signature/);
  t.throws(() => decodePng(good.subarray(0, 5)), /bad signature/);

  const [, idatPos] = chunks(good).find(([ty]) => ty === 'IDAT')!;
  const flipped = Buffer.from(good);
  flipped[idatPos + 10]! ^= 0x01;
  t.throws(() => decodePng(flipped, 'f.png'), /PNG f\.png: bad CRC in chunk IDAT/);

  t.throws(() => decodePng(good.subarray(0, idatPos + 9)), /truncated: chunk IDAT .* needs/, 'cut inside IDAT');
  t.throws(() => decodePng(good.subarray(0, good.length - 12)), /truncated: file ends .* before the IEND/, 'IEND missing');

  // A zlib stream cut short (with a valid CRC, so only the data is wrong).
  const rows = new Uint8Array(4 * 13);
  const z = deflateSync(rows);
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2)], ['IDAT', z.subarray(0, z.length - 6)], ['IEND', new Uint8Array(0)]])), /IDAT\) is corrupt or truncated/);
  // A complete zlib stream that holds too few rows.
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2)], ['IDAT', deflateSync(rows.subarray(0, 26))], ['IEND', new Uint8Array(0)]])), /image data is truncated: 26 bytes .* expected 52/);

  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2, 1)], ['IDAT', z], ['IEND', new Uint8Array(0)]])), /interlaced \(Adam7\) PNGs are not supported/);
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 16, 3)], ['IDAT', z], ['IEND', new Uint8Array(0)]])), /bit depth 16 is not allowed for palette/);
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 5)], ['IDAT', z], ['IEND', new Uint8Array(0)]])), /invalid colour type 5/);
  t.throws(() => decodePng(build([['IDAT', z], ['IEND', new Uint8Array(0)]])), /first chunk is IDAT, expected IHDR/);
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2)], ['IEND', new Uint8Array(0)]])), /no IDAT/);
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2)], ['ABCD', new Uint8Array(1)], ['IDAT', z], ['IEND', new Uint8Array(0)]])), /unknown critical chunk ABCD/);
  t.doesNotThrow(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2)], ['abCD', new Uint8Array(1)], ['IDAT', z], ['IEND', new Uint8Array(0)]])), 'unknown ancillary chunks are skipped');

  const badFilter = new Uint8Array(4 * 13);
  badFilter[13] = 7;
  t.throws(() => decodePng(build([['IHDR', ihdr(4, 4, 8, 2)], ['IDAT', deflateSync(badFilter)], ['IEND', new Uint8Array(0)]])), /row 1 has invalid filter type 7/);

  // Palette problems: index past the palette; palette image without PLTE.
  const idx = deflateSync(Uint8Array.from([0, 0, 5]));
  t.throws(() => decodePng(build([['IHDR', ihdr(2, 1, 8, 3)], ['PLTE', Uint8Array.from([1, 2, 3, 4, 5, 6])], ['IDAT', idx], ['IEND', new Uint8Array(0)]])), /palette index 5 but PLTE has 2 entries/);
  t.throws(() => decodePng(build([['IHDR', ihdr(2, 1, 8, 3)], ['IDAT', idx], ['IEND', new Uint8Array(0)]])), /palette image without a PLTE/);
});

t.test('16-bit RGB is rounded to 8 bits; sub-byte gray is scaled to 0..255', async (t) => {
  // One row, two RGB pixels, big-endian 16-bit samples.
  const row = Uint8Array.from([0, 0x00, 0x00, 0xff, 0xff, 0x80, 0x80, 0x01, 0x01, 0x7f, 0x00, 0x12, 0x34]);
  const img = decodePng(build([['IHDR', ihdr(2, 1, 16, 2)], ['IDAT', deflateSync(row)], ['IEND', new Uint8Array(0)]]));
  t.same([...img.data], [0, 255, 128, 1, 127, Math.round(0x1234 / 257)]);
  // 4-bit gray: samples 0, 15, 8 -> 0, 255, 136.
  const g4 = decodePng(build([['IHDR', ihdr(3, 1, 4, 0)], ['IDAT', deflateSync(Uint8Array.from([0, 0x0f, 0x80]))], ['IEND', new Uint8Array(0)]]));
  t.same([...g4.data], [0, 255, 136]);
});

t.test('writePng / readPng go through the file system', async (t) => {
  const dir = t.testdir({});
  const img: PngImage = { width: 5, height: 3, channels: 3, data: gradient(5, 3, 3) };
  await writePng(`${dir}/a.png`, img);
  const back = await readPng(`${dir}/a.png`);
  t.same([...back.data], [...img.data]);
  await t.rejects(readPng(`${dir}/missing.png`), /ENOENT/);
});
// Generated once with Pillow 9.4 (Python), an independent encoder: file bytes (base64) and the
// pixels Pillow reads back (palette images converted to RGB/RGBA by Pillow, 16-bit as round(v / 257)).
const PIL_FIXTURES: Record<string, { what: string; width: number; height: number; channels: number; b64: string; pixels: number[] }> = {
  rgb: {
    what: "RGB 6x5 (filters Sub, Sub, Paeth, Paeth, Paeth)",
    width: 6, height: 5, channels: 3,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAYAAAAFCAIAAADpOgqxAAAAZklEQVR4nAXBMQrCUBBF0Qzzh8vs5KUKfkif0g24AJch6QSLNFb2ridtCKSwtkoTcAOeY01zk83yUdGLTvk16iF7yX+KXTyVXqgfbMZbYoeNHAr1gp3wN/GAM3kv1AVb8Yk4YCWvf+k4FPl1ptJ8AAAAAElFTkSuQmCC',
    pixels: [0,0,121,40,1,66,80,4,189,120,9,242,160,16,33,200,25,6,7,50,240,47,51,132,87,54,119,127,59,98,167,66,240,207,75,243,14,100,203,54,101,77,94,104,118,134,109,77,174,116,199,214,125,7,21,150,32,61,151,81,101,154,21,141,159,154,181,166,15,221,175,137,28,200,242,68,201,198,108,204,218,148,209,202,188,216,227,228,225,68],
  },
  rgba: {
    what: "RGBA 4x3",
    width: 4, height: 3, channels: 4,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAYAAAC09K7GAAAAJElEQVR4nGNkYGD4b8PAcA6GWRhSGBgYGOTgGEnAhoGBwYYBAMkvBd9bc8acAAAAAElFTkSuQmCC',
    pixels: [0,0,0,255,60,0,0,205,120,0,0,155,180,0,0,105,0,100,0,255,60,100,30,205,120,100,60,155,180,100,90,105,0,200,0,255,60,200,60,205,120,200,120,155,180,200,180,105],
  },
  la: {
    what: "gray+alpha 3x3",
    width: 3, height: 3, channels: 2,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAMAAAADCAQAAAD8IX00AAAAF0lEQVR4nGNkOJHCkMLAwriBkYERRgEAKHsDADBFG/0AAAAASUVORK5CYII=',
    pixels: [0,200,100,200,200,200,1,120,101,120,201,120,2,40,102,40,202,40],
  },
  gray: {
    what: "gray 5x4 (filters Sub, Up)",
    width: 5, height: 4, channels: 1,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAUAAAAECAAAAABjWKqcAAAAFUlEQVR4nGNkMDIyMmLi5eXl5UUmARdXAZP98uNxAAAAAElFTkSuQmCC',
    pixels: [0,50,100,150,200,13,63,113,163,213,26,76,126,176,226,39,89,139,189,239],
  },
  gray1: {
    what: "1-bit gray 10x3",
    width: 10, height: 3, channels: 1,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAoAAAADAQAAAACCRqPYAAAAEUlEQVR4nGOY5MCoEsPgyQAACRUBnZYNyrQAAAAASUVORK5CYII=',
    pixels: [255,0,0,255,0,0,255,0,0,255,0,0,255,0,0,255,0,0,255,0,0,255,0,0,255,0,0,255,0,0],
  },
  pal2: {
    what: "2-bit palette 5x3 -> RGB",
    width: 5, height: 3, channels: 3,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAUAAAADAgMAAAAmWC1rAAAADFBMVEX/AAAA/wAAAP8KFB4iiCkEAAAAEUlEQVR4nGOQZmDIcWDY2AAABd8B+aEJsXkAAAAASUVORK5CYII=',
    pixels: [255,0,0,0,255,0,0,0,255,10,20,30,255,0,0,0,255,0,0,0,255,10,20,30,255,0,0,0,255,0,0,0,255,10,20,30,255,0,0,0,255,0,0,0,255],
  },
  pal8: {
    what: "8-bit palette (256 entries) 4x2 -> RGB",
    width: 4, height: 2, channels: 3,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAQAAAACCAMAAABIdo1RAAADAFBMVEUA/wAB/gcC/Q4D/BUE+xwF+iMG+SoH+DEI9zgJ9j8K9UYL9E0M81QN8lsO8WIP8GkQ73AR7ncS7X4T7IUU64wV6pMW6ZoX6KEY56gZ5q8a5bYb5L0c48Qd4sse4dIf4Nkg3+Ah3uci3e4j3PUk2/wl2gMm2Qon2BEo1xgp1h8q1SYr1C0s0zQt0jsu0UIv0Ekwz1AxzlcyzV4zzGU0y2w1ynM2yXo3yIE4x4g5xo86xZY7xJ08w6Q9wqs+wbI/wLlAv8BBvsdCvc5DvNVEu9xFuuNGuepHuPFIt/hJtv9KtQZLtA1MsxRNshtOsSJPsClQrzBRrjdSrT5TrEVUq0xVqlNWqVpXqGFYp2hZpm9apXZbpH1co4RdooteoZJfoJlgn6Bhnqdina5jnLVkm7xlmsNmmcpnmNFol9hplt9qleZrlO1sk/RtkvtukQJvkAlwjxBxjhdyjR5zjCV0iyx1ijN2iTp3iEF4h0h5hk96hVZ7hF18g2R9gmt+gXJ/gHmAf4CBfoeCfY6DfJWEe5yFeqOGeaqHeLGId7iJdr+KdcaLdM2Mc9SNctuOceKPcOmQb/CRbveSbf6TbAWUawyVahOWaRqXaCGYZyiZZi+aZTabZD2cY0SdYkueYVKfYFmgX2ChXmeiXW6jXHWkW3ylWoOmWYqnWJGoV5ipVp+qVaarVK2sU7StUruuUcKvUMmwT9CxTteyTd6zTOW0S+y1SvO2Sfq3SAG4Rwi5Rg+6RRa7RB28QyS9Qiu+QTK/QDnAP0DBPkfCPU7DPFXEO1zFOmPGOWrHOHHIN3jJNn/KNYbLNI3MM5TNMpvOMaLPMKnQL7DRLrfSLb7TLMXUK8zVKtPWKdrXKOHYJ+jZJu/aJfbbJP3cIwTdIgveIRLfIBngHyDhHifiHS7jHDXkGzzlGkPmGUrnGFHoF1jpFl/qFWbrFG3sE3TtEnvuEYLvEInwD5DxDpfyDZ7zDKX0C6z1CrP2Cbr3CMH4B8j5Bs/6Bdb7BN38A+T9Auv+AfL/APkJewz3AAAAEklEQVR4nGNgEPzfwMB8woERAA1wAp26po1mAAAAAElFTkSuQmCC',
    pixels: [0,255,0,17,238,119,255,0,249,128,127,128,3,252,21,200,55,120,64,191,192,1,254,7],
  },
  palt: {
    what: "2-bit palette with tRNS 3x2 -> RGBA",
    width: 3, height: 2, channels: 4,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAMAAAACAgMAAADgGo6JAAAACVBMVEUBAgMoMjxGUFooJN8LAAAAAnRSTlMAgJsrThgAAAAMSURBVHicY5BgmAAAANwAqWznwCMAAAAASUVORK5CYII=',
    pixels: [1,2,3,0,40,50,60,128,70,80,90,255,70,80,90,255,40,50,60,128,1,2,3,0],
  },
  gray16: {
    what: "16-bit gray 3x2 -> 8-bit, round(v / 257)",
    width: 3, height: 2, channels: 1,
    b64: 'iVBORw0KGgoAAAANSUhEUgAAAAMAAAACEAAAAADoj+WFAAAAFklEQVR4nGNgYGBm/v+fkfnFzIgnDgAbUQUGkXky2AAAAABJRU5ErkJggg==',
    pixels: [0,3,255,4,156,128],
  },
};
