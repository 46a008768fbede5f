// 2x upsampling of NCHW planes: nearest and bilinear (PyTorch semantics, align_corners false or
// true), forward and backward. Backward kernels gather (one thread per input element) instead of
// scattering, so no atomics are needed.
// Grid and row walk: shaders/include/rowwalk.wgsl.

override WG: u32 = 256u;
// #include "rowwalk.wgsl"

struct Params {
  rows: u32,   // planes * (oh for forward, h for backward)
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
  align: u32,  // bilinear: 1 = align_corners
  rh: f32,     // bilinear source-coordinate scale per dimension (see src_coord)
  rw: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> gy: array<f32>;


@compute @workgroup_size(WG)
fn nearest_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
                   @builtin(local_invocation_index) lid: u32) {
  let ox = wid.x * WG + lid;
  if (ox >= p.ow) { return; }
  for (var w = row_walk(wid, ng, p.rows, p.oh); w.r < w.end; row_next(&w, p.oh)) {
    let r = w.r;
    let plane = w.plane;
    let oy = w.row;
    y[r * p.ow + ox] = x[(plane * p.h + oy / 2u) * p.w + ox / 2u];
  }
}

// Each input element receives the 2x2 block of output gradients it was copied to.
@compute @workgroup_size(WG)
fn nearest_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let ix = wid.x * WG + lid;
  if (ix >= p.w) { return; }
  for (var w = row_walk(wid, ng, p.rows, p.h); w.r < w.end; row_next(&w, p.h)) {
    let r = w.r;
    let plane = w.plane;
    let iy = w.row;
    let o = (plane * p.oh + 2u * iy) * p.ow + 2u * ix;
    y[r * p.w + ix] = (gy[o] + gy[o + 1u]) + (gy[o + p.ow] + gy[o + p.ow + 1u]);
  }
}

// Source taps of output coordinate o along a dimension of `size` inputs with scale r:
// (i0, i1, lambda) with value = (1 - lambda) * in[i0] + lambda * in[i1], as PyTorch computes it.
struct Taps { i0: u32, i1: u32, lambda: f32 }

fn src_coord(o: u32, size: u32, r: f32) -> Taps {
  var s: f32;
  if (p.align == 1u) {
    s = r * f32(o);
  } else {
    s = max(r * (f32(o) + 0.5) - 0.5, 0.0);
  }
  let i0 = min(u32(s), size - 1u);
  let i1 = min(i0 + 1u, size - 1u);
  return Taps(i0, i1, s - f32(i0));
}

@compute @workgroup_size(WG)
fn bilinear_forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
                    @builtin(local_invocation_index) lid: u32) {
  let ox = wid.x * WG + lid;
  if (ox >= p.ow) { return; }
  let tx = src_coord(ox, p.w, p.rw);
  for (var w = row_walk(wid, ng, p.rows, p.oh); w.r < w.end; row_next(&w, p.oh)) {
    let r = w.r;
    let plane = w.plane;
    let oy = w.row;
    let ty = src_coord(oy, p.h, p.rh);
    let base = plane * p.h * p.w;
    let a = base + ty.i0 * p.w;
    let b = base + ty.i1 * p.w;
    let top = (1.0 - tx.lambda) * x[a + tx.i0] + tx.lambda * x[a + tx.i1];
    let bottom = (1.0 - tx.lambda) * x[b + tx.i0] + tx.lambda * x[b + tx.i1];
    y[r * p.ow + ox] = (1.0 - ty.lambda) * top + ty.lambda * bottom;
  }
}

// Weight of input index k in output coordinate o (0 when o does not read k).
fn tap_weight(o: u32, k: u32, size: u32, r: f32) -> f32 {
  let t = src_coord(o, size, r);
  return select(0.0, 1.0 - t.lambda, t.i0 == k) + select(0.0, t.lambda, t.i1 == k);
}

// Outputs that read input k lie in [2k - 1, 2k + 2] in both modes (checked exhaustively with
// float32 coordinates for sizes up to 600); the loops take one more on each side for rounding.
fn out_lo(k: u32) -> u32 {
  return select(0u, 2u * k - 2u, k >= 1u);
}

@compute @workgroup_size(WG)
fn bilinear_backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
                     @builtin(local_invocation_index) lid: u32) {
  let ix = wid.x * WG + lid;
  if (ix >= p.w) { return; }
  // The column taps are the same for every row: compute them once.
  let x_lo = out_lo(ix);
  let x_hi = min(2u * ix + 3u, p.ow - 1u);
  var wx: array<f32, 6>;
  for (var ox = x_lo; ox <= x_hi; ox++) { wx[ox - x_lo] = tap_weight(ox, ix, p.w, p.rw); }
  for (var w = row_walk(wid, ng, p.rows, p.h); w.r < w.end; row_next(&w, p.h)) {
    let r = w.r;
    let plane = w.plane;
    let iy = w.row;
    let base = plane * p.oh * p.ow;
    let y_hi = min(2u * iy + 3u, p.oh - 1u);
    var acc = 0.0;
    for (var oy = out_lo(iy); oy <= y_hi; oy++) {
      let wy = tap_weight(oy, iy, p.h, p.rh);
      if (wy == 0.0) { continue; }
      var row = 0.0;
      for (var ox = x_lo; ox <= x_hi; ox++) {
        row += wx[ox - x_lo] * gy[base + oy * p.ow + ox];
      }
      acc += wy * row;
    }
    y[r * p.w + ix] = acc;
  }
}
