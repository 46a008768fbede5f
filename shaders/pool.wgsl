// 2x2 max pooling with stride 2 over NCHW planes (odd sizes floor: the last row/column of an odd
// dimension is dropped, as in PyTorch). The backward sends each output gradient to its window's
// first maximum in row-major order (PyTorch's tie rule); it recomputes the argmax from x instead
// of storing indices, one thread per input element, so no scatter is needed.
// Grid and row walk: shaders/include/rowwalk.wgsl.

override WG: u32 = 256u;
// #include "rowwalk.wgsl"

struct Params {
  rows: u32,  // planes * (oh for forward, h for backward)
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;


// Flat input index of the first maximum of window (oy, ox) of a plane.
fn window_argmax(plane: u32, oy: u32, ox: u32) -> u32 {
  let i00 = (plane * p.h + 2u * oy) * p.w + 2u * ox;
  var best = i00;
  var m = x[i00];
  // Strictly greater: the first maximum wins ties.
  if (x[i00 + 1u] > m) { m = x[i00 + 1u]; best = i00 + 1u; }
  if (x[i00 + p.w] > m) { m = x[i00 + p.w]; best = i00 + p.w; }
  if (x[i00 + p.w + 1u] > m) { best = i00 + p.w + 1u; }
  return best;
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let ox = wid.x * WG + lid;
  if (ox >= p.ow) { return; }
  for (var w = row_walk(wid, ng, p.rows, p.oh); w.r < w.end; row_next(&w, p.oh)) {
    let r = w.r;
    let plane = w.plane;
    let oy = w.row;
    y[r * p.ow + ox] = x[window_argmax(plane, oy, ox)];
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let ix = wid.x * WG + lid;
  if (ix >= p.w) { return; }
  let ox = ix / 2u;
  for (var w = row_walk(wid, ng, p.rows, p.h); w.r < w.end; row_next(&w, p.h)) {
    let r = w.r;
    let plane = w.plane;
    let iy = w.row;
    let i = r * p.w + ix;
    let oy = iy / 2u;
    var g = 0.0;
    if (oy < p.oh && ox < p.ow && window_argmax(plane, oy, ox) == i) {
      g = gy[(plane * p.oh + oy) * p.ow + ox];
    }
    gx[i] = g;
  }
}
