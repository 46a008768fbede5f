// Spatial padding of NCHW planes: zeros or reflection (PyTorch ReflectionPad2d: the edge row or
// column is not repeated; requires pad < size). Backward gathers, one thread per input element:
// for reflection an input element collects its own output position and up to one mirrored one
// per side and dimension (pad < size means at most one reflection).
// Grid and row walk: shaders/include/rowwalk.wgsl.

override WG: u32 = 256u;
// #include "rowwalk.wgsl"

struct Params {
  rows: u32,     // planes * (oh for forward, h for backward)
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
  left: u32,
  right: u32,
  top: u32,
  bottom: u32,
  reflect: u32,
  add: u32,      // backward: add `addend` (a gradient accumulated so far) to the result
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> addend: array<f32>;


// Source index of output coordinate o along a dimension of `size` with `before` padding;
// -1 for a zero-padded position.
fn source(o: u32, size: u32, before: u32) -> i32 {
  var j = i32(o) - i32(before);
  if (p.reflect == 1u) {
    if (j < 0) { j = -j; }
    if (j >= i32(size)) { j = 2 * (i32(size) - 1) - j; }
    return j;
  }
  return select(-1, j, j >= 0 && j < i32(size));
}

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
           @builtin(local_invocation_index) lid: u32) {
  let ox = wid.x * WG + lid;
  if (ox >= p.ow) { return; }
  let sx = source(ox, p.w, p.left);
  for (var w = row_walk(wid, ng, p.rows, p.oh); w.r < w.end; row_next(&w, p.oh)) {
    let r = w.r;
    let plane = w.plane;
    let oy = w.row;
    let sy = source(oy, p.h, p.top);
    var v = 0.0;
    if (sy >= 0 && sx >= 0) { v = x[(plane * p.h + u32(sy)) * p.w + u32(sx)]; }
    y[r * p.ow + ox] = v;
  }
}

// Output coordinates that read input k along a dimension (-1 where absent): itself, its mirror
// in the leading pad (1 <= k <= before) and in the trailing pad (size-1-after <= k <= size-2).
fn targets(k: u32, size: u32, before: u32, after: u32) -> vec3i {
  let kk = i32(k);
  let n = i32(size);
  var t = vec3i(kk + i32(before), -1, -1);
  if (p.reflect == 1u) {
    if (kk >= 1 && kk <= i32(before)) { t.y = i32(before) - kk; }
    if (kk <= n - 2 && kk >= n - 1 - i32(after)) { t.z = i32(before) + 2 * (n - 1) - kk; }
  }
  return t;
}

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
            @builtin(local_invocation_index) lid: u32) {
  let ix = wid.x * WG + lid;
  if (ix >= p.w) { return; }
  let tx = targets(ix, p.w, p.left, p.right);
  for (var w = row_walk(wid, ng, p.rows, p.h); w.r < w.end; row_next(&w, p.h)) {
    let r = w.r;
    let plane = w.plane;
    let iy = w.row;
    let ty = targets(iy, p.h, p.top, p.bottom);
    var acc = 0.0;
    for (var a = 0u; a < 3u; a++) {
      let oy = ty[a];
      if (oy < 0) { continue; }
      let row = (plane * p.oh + u32(oy)) * p.ow;
      for (var b = 0u; b < 3u; b++) {
        let ox = tx[b];
        if (ox >= 0) { acc += x[row + u32(ox)]; }
      }
    }
    if (p.add == 1u) { acc += addend[r * p.w + ix]; }
    y[r * p.w + ix] = acc;
  }
}
