// 2-D convolution as a workgroup-tiled implicit GEMM, for GPUs (conv2d.wgsl is shaped for CPUs,
// where workgroup memory and barriers are expensive; on a GPU they are what makes a GEMM fast).
// The same three modes as conv2d.wgsl, C[M, N] = sum_k A[M, K] B[K, N]:
//
//   MODE 0, forward:     M = co, N = (b, oh, ow), K = (ci, kh, kw); A = w, B = im2col(x); split
//                        along K like mode 2 when M and N are too small to fill the GPU
//   MODE 1, data grad:   M = ci, N = the (b, ih, iw) of one stride phase (ih = rh + sh*a,
//                        iw = rw + sw*c), K = (co, the taps that reach that phase); A = w^T
//                        restricted to those taps, packed as [ci][K] first (entry pack_phase),
//                        B = dy at oh = (ih + ph - kh*dh) / sh, exact by the choice of taps
//   MODE 2, weight grad: M = co, N = (ci, kh, kw), K = (b, oh, ow), split along K over grid z
//                        into partial sums (summed on the host side); A = dy, B = im2col(x)^T
//
// 256 invocations as 16 x 16; each computes TMR rows x TNR columns (4 or 8 each), so a tile is
// BM = 16*TMR by BN = 16*TNR, and K advances BK = 16 at a time through workgroup memory. Tiles
// are stored as vec4 along M (A) and N (B): invocation (ty, tx) reads rows ty*4 + 64r and
// columns tx*4 + 64s, so a warp's reads of B are consecutive vec4s (no bank conflicts).
// Global loads: each invocation loads 4 consecutive M (or N) at one k per vec4 it stores;
// consecutive invocations take consecutive k for A (contiguous in w and dy) and consecutive N
// for B (contiguous pixels of one image row).
//
// Bindings: 0 params, 1 a (w for modes 0, 1; dy for mode 2), 2 b (x for modes 0, 2; dy for
// mode 1), 3 bias (HAS_BIAS; any read-only buffer otherwise), 4 output.

override MODE: u32 = 0u;
override TMR: u32 = 4u;
override TNR: u32 = 4u;
override HAS_BIAS: bool = false;
// Modes 0, 2: reflection padding (ReflectionPad2d then an unpadded convolution): rows and columns
// outside the image read their mirror images. (Mode 1 never reflects: see conv.ts.)
override REFLECT: bool = false;

// Index i of a dimension of size n after one reflection at each edge (REFLECT; pad < n).
fn refl(i: i32, n: u32) -> i32 {
  if (!REFLECT) { return i; }
  let j = select(i, -i, i < 0);
  return select(j, 2 * (i32(n) - 1) - j, j >= i32(n));
}

const BK = 16u;
override BM: u32 = 16u * TMR;
override BN: u32 = 16u * TNR;

struct Params {
  m: u32, n: u32, k: u32,
  k_per_split: u32,   // K range of one grid z slice (a multiple of BK; K itself when not split)
  nb: u32, ci: u32, h: u32, w: u32,
  co: u32, oh: u32, ow: u32,
  kh: u32, kw: u32,
  sh: u32, sw: u32, ph: i32, pw: i32, dh: u32, dw: u32,
  // MODE 1: stride phase (rh, rw), its taps kh = kh0 + khs*j (j < nkh) and likewise along the
  // width, and the phase's pixel rows and columns per image.
  rh: u32, rw: u32,
  kh0: u32, khs: u32, nkh: u32,
  kw0: u32, kws: u32, nkw: u32,
  pa: u32, pc: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a_src: array<f32>;
@group(0) @binding(2) var<storage, read> b_src: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

var<workgroup> As: array<vec4f, 512>;   // BK * BM / 4 with BM <= 128
var<workgroup> Bs: array<vec4f, 512>;   // BK * BN / 4 with BN <= 128

// MODE 1: K index kk = (co, jh, jw) as (co, kh, kw), kh = kh0 + khs*jh (the phase's taps).
fn phase_tap(kk: u32) -> vec3u {
  let taps = p.nkh * p.nkw;
  let co = kk / taps;
  let t = kk - co * taps;
  let jh = t / p.nkw;
  return vec3u(co, p.kh0 + p.khs * jh, p.kw0 + p.kws * (t - jh * p.nkw));
}

// A[m][kk] for the current tile, 0 outside [0, M) x [0, kend).
fn load_a(m: u32, kk: u32, kend: u32) -> f32 {
  if (m >= p.m || kk >= kend) { return 0.0; }
  if (MODE != 2u) {
    // Modes 0 and 1: [M][K] rows, contiguous along K (mode 1's come from pack_phase).
    return a_src[m * p.k + kk];
  }
  // MODE 2: kk = (b, oh*ow); dy[b][co = m][pixel]
  let hw = p.oh * p.ow;
  let b = kk / hw;
  return a_src[(b * p.co + m) * hw + (kk - b * hw)];
}

// Rows m..m+3 of A at kk.
fn quad_a(m: u32, kk: u32, kend: u32) -> vec4f {
  return vec4f(load_a(m, kk, kend), load_a(m + 1u, kk, kend), load_a(m + 2u, kk, kend), load_a(m + 3u, kk, kend));
}

// This invocation's view of one column n of B, fixed for the whole K loop.
struct Col {
  ok: bool,
  base: u32,  // offset of the image (modes 0, 1) or of the channel (mode 2) in b_src
  y: i32,     // modes 0, 1: row origin (oh*sh - ph, or ih + ph); mode 2: kh*dh
  x: i32,     // likewise along the width
}

fn column(n: u32) -> Col {
  var c: Col;
  c.ok = n < p.n;
  if (MODE == 0u) {
    let hw = p.oh * p.ow;
    let b = n / hw;
    let pix = n - b * hw;
    let oh = pix / p.ow;
    c.base = b * p.ci * p.h * p.w;
    c.y = i32(oh * p.sh) - p.ph;
    c.x = i32((pix - oh * p.ow) * p.sw) - p.pw;
  } else if (MODE == 1u) {
    let per = p.pa * p.pc;
    let b = n / per;
    let q = n - b * per;
    let a = q / p.pc;
    c.base = b * p.co * p.oh * p.ow;
    c.y = i32(p.rh + p.sh * a) + p.ph;
    c.x = i32(p.rw + p.sw * (q - a * p.pc)) + p.pw;
  } else {
    let taps = p.kh * p.kw;
    let ci = n / taps;
    let t = n - ci * taps;
    let kh = t / p.kw;
    c.base = ci * p.h * p.w;
    c.y = i32(kh * p.dh);
    c.x = i32((t - kh * p.kw) * p.dw);
  }
  return c;
}

// B[kk][column c], 0 outside the image.
fn load_b(c: Col, kk: u32, kend: u32) -> f32 {
  if (!c.ok || kk >= kend) { return 0.0; }
  if (MODE == 0u) {
    let taps = p.kh * p.kw;
    let ci = kk / taps;
    let t = kk - ci * taps;
    let kh = t / p.kw;
    let ih = refl(c.y + i32(kh * p.dh), p.h);
    let iw = refl(c.x + i32((t - kh * p.kw) * p.dw), p.w);
    if (ih < 0 || ih >= i32(p.h) || iw < 0 || iw >= i32(p.w)) { return 0.0; }
    return b_src[c.base + (ci * p.h + u32(ih)) * p.w + u32(iw)];
  }
  if (MODE == 1u) {
    let t = phase_tap(kk);
    // The taps were chosen so that these divisions are exact.
    let ohn = c.y - i32(t.y * p.dh);
    let own = c.x - i32(t.z * p.dw);
    if (ohn < 0 || own < 0) { return 0.0; }
    let oh = u32(ohn) / p.sh;
    let ow = u32(own) / p.sw;
    if (oh >= p.oh || ow >= p.ow) { return 0.0; }
    return b_src[c.base + (t.x * p.oh + oh) * p.ow + ow];
  }
  // MODE 2: kk = (b, oh, ow); x[b][ci][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw]
  let hw = p.oh * p.ow;
  let b = kk / hw;
  let pix = kk - b * hw;
  let oh = pix / p.ow;
  let ih = refl(i32(oh * p.sh) - p.ph + c.y, p.h);
  let iw = refl(i32((pix - oh * p.ow) * p.sw) - p.pw + c.x, p.w);
  if (ih < 0 || ih >= i32(p.h) || iw < 0 || iw >= i32(p.w)) { return 0.0; }
  return b_src[(b * p.ci * p.h + u32(ih)) * p.w + c.base + u32(iw)];
}

fn store(m: u32, n: u32, z: u32, v: f32) {
  if (m >= p.m || n >= p.n) { return; }
  var out = v;
  if (HAS_BIAS && z == 0u) { out += bias[m]; }
  if (MODE == 0u) {
    let hw = p.oh * p.ow;
    let b = n / hw;
    dst[z * p.m * p.n + (b * p.co + m) * hw + (n - b * hw)] = out;
  } else if (MODE == 1u) {
    let per = p.pa * p.pc;
    let b = n / per;
    let q = n - b * per;
    let a = q / p.pc;
    let ih = p.rh + p.sh * a;
    let iw = p.rw + p.sw * (q - a * p.pc);
    dst[((b * p.ci + m) * p.h + ih) * p.w + iw] = out;
  } else {
    dst[(z * p.m + m) * p.n + n] = out;
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  // Split-K: grid z takes one K range and writes its own partial result (summed on the host).
  let kbeg = wg.z * p.k_per_split;
  let kend = min(p.k, kbeg + p.k_per_split);
  let ty = lid / 16u;
  let tx = lid % 16u;

  // Loader roles: A at k = lid % 16 for row quads lid / 16 + 16r; B at k = lid / 16 for column
  // quads lid % 16 + 16s. The B columns are fixed: decode them once.
  var cols: array<Col, 8>;
  for (var s = 0u; s < TNR / 4u; s++) {
    for (var j = 0u; j < 4u; j++) {
      cols[s * 4u + j] = column(n0 + (tx + 16u * s) * 4u + j);
    }
  }

  var acc: array<vec4f, 16>;  // [row TMR][column quad TNR/4]
  // The next K tile is read from global memory into registers while the current one is being
  // multiplied (register prefetch): with one or two workgroups per SM there are too few warps to
  // hide the load latency otherwise. Loads past kend return 0, so the last prefetch is harmless.
  var ra: array<vec4f, 2>;
  var rb: array<vec4f, 2>;
  for (var r = 0u; r < TMR / 4u; r++) { ra[r] = quad_a(m0 + (ty + 16u * r) * 4u, kbeg + tx, kend); }
  for (var s = 0u; s < TNR / 4u; s++) {
    let kk = kbeg + ty;
    rb[s] = vec4f(load_b(cols[s * 4u], kk, kend), load_b(cols[s * 4u + 1u], kk, kend),
                  load_b(cols[s * 4u + 2u], kk, kend), load_b(cols[s * 4u + 3u], kk, kend));
  }
  for (var k0 = kbeg; k0 < kend; k0 += BK) {
    for (var r = 0u; r < TMR / 4u; r++) { As[tx * (BM / 4u) + ty + 16u * r] = ra[r]; }
    for (var s = 0u; s < TNR / 4u; s++) { Bs[ty * (BN / 4u) + tx + 16u * s] = rb[s]; }
    workgroupBarrier();
    let k1 = k0 + BK;
    for (var r = 0u; r < TMR / 4u; r++) { ra[r] = quad_a(m0 + (ty + 16u * r) * 4u, k1 + tx, kend); }
    for (var s = 0u; s < TNR / 4u; s++) {
      let kk = k1 + ty;
      rb[s] = vec4f(load_b(cols[s * 4u], kk, kend), load_b(cols[s * 4u + 1u], kk, kend),
                    load_b(cols[s * 4u + 2u], kk, kend), load_b(cols[s * 4u + 3u], kk, kend));
    }
    for (var kk = 0u; kk < BK; kk++) {
      var bv: array<vec4f, 2>;
      for (var s = 0u; s < TNR / 4u; s++) { bv[s] = Bs[kk * (BN / 4u) + tx + 16u * s]; }
      for (var r = 0u; r < TMR / 4u; r++) {
        let av = As[kk * (BM / 4u) + ty + 16u * r];
        for (var s = 0u; s < TNR / 4u; s++) {
          let i = r * 4u * (TNR / 4u) + s;
          acc[i] = fma(vec4f(av.x), bv[s], acc[i]);
          acc[i + TNR / 4u] = fma(vec4f(av.y), bv[s], acc[i + TNR / 4u]);
          acc[i + 2u * (TNR / 4u)] = fma(vec4f(av.z), bv[s], acc[i + 2u * (TNR / 4u)]);
          acc[i + 3u * (TNR / 4u)] = fma(vec4f(av.w), bv[s], acc[i + 3u * (TNR / 4u)]);
        }
      }
    }
    workgroupBarrier();
  }

  for (var r = 0u; r < TMR / 4u; r++) {
    for (var i = 0u; i < 4u; i++) {
      let m = m0 + (ty + 16u * r) * 4u + i;
      for (var s = 0u; s < TNR / 4u; s++) {
        let v = acc[(r * 4u + i) * (TNR / 4u) + s];
        let n = n0 + (tx + 16u * s) * 4u;
        store(m, n, wg.z, v.x);
        store(m, n + 1u, wg.z, v.y);
        store(m, n + 2u, wg.z, v.z);
        store(m, n + 3u, wg.z, v.w);
      }
    }
  }
}

// MODE 1's A operand for one stride phase: packed[ci][(co, jh, jw)] = w[co][ci][kh][kw], so that
// the GEMM reads it contiguously along K as it reads the forward's weights (the rows of w^T are
// scattered through w: consecutive co are ci*kh*kw apart).
@group(0) @binding(1) var<storage, read> pk_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> pk_out: array<f32>;

@compute @workgroup_size(256)
fn pack_phase(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  if (i >= p.m * p.k) { return; }
  let m = i / p.k;
  let t = phase_tap(i - m * p.k);
  pk_out[i] = pk_w[((t.x * p.ci + m) * p.kh + t.y) * p.kw + t.z];
}
