// Strided block copies for concat and slice. A tensor is seen as `rows` rows (the dims before the
// axis); each row holds a contiguous run of `len` elements to move (the axis range times the
// inner dims). copy_rows moves the runs; embed_rows writes whole destination rows, zero outside
// the run (the backward of slice).

override WG: u32 = 256u;

struct Params {
  total: u32,       // threads: rows * len (copy_rows) or rows * dst_stride (embed_rows)
  len: u32,         // elements per run
  src_stride: u32,  // elements between rows of the source
  src_offset: u32,  // start of the run within a source row
  dst_stride: u32,
  dst_offset: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn flat(gid: vec3u, n: vec3u) -> u32 {
  return gid.x + gid.y * n.x * WG;
}

@compute @workgroup_size(WG)
fn copy_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = flat(gid, ng);
  if (i >= p.total) { return; }
  let r = i / p.len;
  let j = i % p.len;
  dst[r * p.dst_stride + p.dst_offset + j] = src[r * p.src_stride + p.src_offset + j];
}

@compute @workgroup_size(WG)
fn embed_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = flat(gid, ng);
  if (i >= p.total) { return; }
  let r = i / p.dst_stride;
  let j = i % p.dst_stride;
  var v = 0.0;
  if (j >= p.dst_offset && j < p.dst_offset + p.len) {
    v = src[r * p.src_stride + p.src_offset + (j - p.dst_offset)];
  }
  dst[i] = v;
}
