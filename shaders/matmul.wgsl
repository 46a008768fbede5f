// Matrix product C[M,N] = op(A)[M,K] * op(B)[K,N], op = optional transpose (TA, TB overrides):
// A is stored [M,K] (or [K,M] when TA), B is stored [K,N] (or [N,K] when TB).
//
// Same scheme as conv2d.wgsl (see there for why it suits lavapipe): every invocation computes
// 16 (or 8, TM) rows x 4 columns; the rows are shared by a subgroup, each lane loading one row's
// A values and subgroupBroadcast handing them out; K advances 4 at a time so that A and B can be
// read as vec4 where the layout allows (VA: A rows contiguous in K, K % 4 == 0; VB: B rows
// contiguous in N with N % 4 == 0, or, when TB, B columns contiguous in K with K % 4 == 0).
// Requires subgroups of at least 8 invocations.
//
// Bindings: 0 params, 1 a (f32), 2 a (same buffer as vec4), 3 b, 4 b as vec4, 5 c.

enable subgroups;

override TM: u32 = 16u;
override WG: u32 = 64u;
override TA: bool = false;
override TB: bool = false;
override VA: bool = false;
override VB: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  qn: u32,  // column quads: ceil(n / 4)
  tm: u32,  // TM at run time (a loop bound the compiler must not unroll)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> a4: array<vec4f>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read> b4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> c: array<f32>;

var<private> acc: array<vec4f, 16>;

fn fma_rows(bv: vec4f, lo: f32, hi: f32) {
  acc[0] = fma(vec4f(subgroupBroadcast(lo, 0u)), bv, acc[0]);
  acc[1] = fma(vec4f(subgroupBroadcast(lo, 1u)), bv, acc[1]);
  acc[2] = fma(vec4f(subgroupBroadcast(lo, 2u)), bv, acc[2]);
  acc[3] = fma(vec4f(subgroupBroadcast(lo, 3u)), bv, acc[3]);
  acc[4] = fma(vec4f(subgroupBroadcast(lo, 4u)), bv, acc[4]);
  acc[5] = fma(vec4f(subgroupBroadcast(lo, 5u)), bv, acc[5]);
  acc[6] = fma(vec4f(subgroupBroadcast(lo, 6u)), bv, acc[6]);
  acc[7] = fma(vec4f(subgroupBroadcast(lo, 7u)), bv, acc[7]);
  if (TM > 8u) {
    acc[8] = fma(vec4f(subgroupBroadcast(hi, 0u)), bv, acc[8]);
    acc[9] = fma(vec4f(subgroupBroadcast(hi, 1u)), bv, acc[9]);
    acc[10] = fma(vec4f(subgroupBroadcast(hi, 2u)), bv, acc[10]);
    acc[11] = fma(vec4f(subgroupBroadcast(hi, 3u)), bv, acc[11]);
    acc[12] = fma(vec4f(subgroupBroadcast(hi, 4u)), bv, acc[12]);
    acc[13] = fma(vec4f(subgroupBroadcast(hi, 5u)), bv, acc[13]);
    acc[14] = fma(vec4f(subgroupBroadcast(hi, 6u)), bv, acc[14]);
    acc[15] = fma(vec4f(subgroupBroadcast(hi, 7u)), bv, acc[15]);
  }
}

// A[row, k .. k+3] (zero for rows past M); k .. k+3 < K.
fn a_quad(row: u32, k: u32) -> vec4f {
  let ok = row < p.m;
  if (VA) {
    return select(vec4f(0.0), a4[(row * p.k + k) / 4u], ok);
  }
  if (TA) {
    return select(vec4f(0.0), vec4f(a[k * p.m + row], a[(k + 1u) * p.m + row], a[(k + 2u) * p.m + row],
                                    a[(k + 3u) * p.m + row]), ok);
  }
  let i = row * p.k + k;
  return select(vec4f(0.0), vec4f(a[i], a[i + 1u], a[i + 2u], a[i + 3u]), ok);
}

// A[row, k] for a single k (zero past M or K).
fn a_one(row: u32, k: u32) -> f32 {
  let ok = row < p.m && k < p.k;
  if (TA) { return select(0.0, a[k * p.m + row], ok); }
  return select(0.0, a[row * p.k + k], ok);
}

// B[k, col .. col+3] as a vec4 (zero for columns past N).
fn b_row(k: u32, col: u32) -> vec4f {
  let m = vec4<bool>(col < p.n, col + 1u < p.n, col + 2u < p.n, col + 3u < p.n);
  if (TB) {
    return select(vec4f(0.0), vec4f(b[col * p.k + k], b[(col + 1u) * p.k + k], b[(col + 2u) * p.k + k],
                                    b[(col + 3u) * p.k + k]), m);
  }
  if (VB) {
    return select(vec4f(0.0), b4[(k * p.n + col) / 4u], m);
  }
  let i = k * p.n + col;
  return select(vec4f(0.0), vec4f(b[i], b[i + 1u], b[i + 2u], b[i + 3u]), m);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
  let quad = wid.x * WG + lid;
  let col = 4u * quad;
  let row0 = wid.y * TM;
  let rlo = row0 + (sid & 7u);
  let rhi = rlo + 8u;
  let k4 = p.k & ~3u;
  for (var k = 0u; k < k4; k += 4u) {
    let alo = a_quad(rlo, k);
    var ahi = vec4f(0.0);
    if (TM > 8u) { ahi = a_quad(rhi, k); }
    var b0: vec4f;
    var b1: vec4f;
    var b2: vec4f;
    var b3: vec4f;
    if (TB && VB) {
      // Four columns, each contiguous in K: a 4x4 block to transpose.
      let m = vec4<bool>(col < p.n, col + 1u < p.n, col + 2u < p.n, col + 3u < p.n);
      let c0 = select(vec4f(0.0), b4[(col * p.k + k) / 4u], m.x);
      let c1 = select(vec4f(0.0), b4[((col + 1u) * p.k + k) / 4u], m.y);
      let c2 = select(vec4f(0.0), b4[((col + 2u) * p.k + k) / 4u], m.z);
      let c3 = select(vec4f(0.0), b4[((col + 3u) * p.k + k) / 4u], m.w);
      b0 = vec4f(c0.x, c1.x, c2.x, c3.x);
      b1 = vec4f(c0.y, c1.y, c2.y, c3.y);
      b2 = vec4f(c0.z, c1.z, c2.z, c3.z);
      b3 = vec4f(c0.w, c1.w, c2.w, c3.w);
    } else {
      b0 = b_row(k, col);
      b1 = b_row(k + 1u, col);
      b2 = b_row(k + 2u, col);
      b3 = b_row(k + 3u, col);
    }
    fma_rows(b0, alo.x, ahi.x);
    fma_rows(b1, alo.y, ahi.y);
    fma_rows(b2, alo.z, ahi.z);
    fma_rows(b3, alo.w, ahi.w);
  }
  for (var k = k4; k < p.k; k++) {
    var hi = 0.0;
    if (TM > 8u) { hi = a_one(rhi, k); }
    fma_rows(b_row(k, col), a_one(rlo, k), hi);
  }
  if (col >= p.n) { return; }
  let rows = min(p.tm, p.m - row0);
  for (var r = 0u; r < rows; r++) {
    let v = pick(r);
    let o = (row0 + r) * p.n + col;
    c[o] = v.x;
    if (col + 1u < p.n) { c[o + 1u] = v.y; }
    if (col + 2u < p.n) { c[o + 2u] = v.z; }
    if (col + 3u < p.n) { c[o + 3u] = v.w; }
  }
}

// #include "pick_acc.wgsl"
