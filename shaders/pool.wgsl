// 2x2 max pooling with stride 2 over NCHW planes (odd sizes floor: the last row/column of an odd
// dimension is dropped, as in PyTorch). The backward sends each output gradient to its window's
// first maximum in row-major order (PyTorch's tie rule); it recomputes the argmax from x instead
// of storing indices, one thread per input element, so no scatter is needed.
// Grid (src/engine/ops/rowgrid.ts): an invocation owns column wid.x * WG + lid and walks ROWS
// consecutive rows (output rows for forward, input rows for backward) of all planes stacked.

override WG: u32 = 256u;
override ROWS: u32 = 8u;

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

fn first_row(wid: vec3u, ng: vec3u) -> u32 {
  return (wid.y + wid.z * ng.y) * ROWS;
}

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
  let r0 = first_row(wid, ng);
  if (ox >= p.ow || r0 >= p.rows) { return; }
  var plane = r0 / p.oh;
  var oy = r0 % p.oh;
  for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
    y[r * p.ow + ox] = x[window_argmax(plane, oy, ox)];
    oy++;
    if (oy == p.oh) { oy = 0u; plane++; }
  }
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let ix = wid.x * WG + lid;
  let r0 = first_row(wid, ng);
  if (ix >= p.w || r0 >= p.rows) { return; }
  let ox = ix / 2u;
  var plane = r0 / p.h;
  var iy = r0 % p.h;
  for (var r = r0; r < min(r0 + ROWS, p.rows); r++) {
    let i = r * p.w + ix;
    let oy = iy / 2u;
    var g = 0.0;
    if (oy < p.oh && ox < p.ow && window_argmax(plane, oy, ox) == i) {
      g = gy[(plane * p.oh + oy) * p.ow + ox];
    }
    gx[i] = g;
    iy++;
    if (iy == p.h) { iy = 0u; plane++; }
  }
}
