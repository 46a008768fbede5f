// Strided block copies for concat and slice. A tensor is seen as `rows` rows (the dims before the
// axis); each row holds a contiguous run of `len` elements to move (the axis range times the
// inner dims). copy_rows moves the runs; embed_rows writes whole destination rows, zero outside
// the run (the backward of slice); concat_rows fills whole destination rows from up to 4 sources
// in one launch (concat's forward).

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

// concat_rows: destination row r is [src0 row r | src1 row r | src2 row r | src3 row r], source k
// contributing `lens[k]` elements (0 for absent sources, bound to src0's buffer and never read).
struct ConcatParams {
  total: u32,       // threads: rows * row (the destination's size)
  row: u32,         // elements per destination row (the sum of lens)
  dst_offset: u32,  // where the first source starts within a destination row
  dst_stride: u32,  // elements between destination rows
  lens: vec4u,
}

@group(0) @binding(0) var<uniform> cp: ConcatParams;
@group(0) @binding(1) var<storage, read> cat0: array<f32>;
@group(0) @binding(2) var<storage, read> cat1: array<f32>;
@group(0) @binding(3) var<storage, read> cat2: array<f32>;
@group(0) @binding(4) var<storage, read> cat3: array<f32>;
@group(0) @binding(5) var<storage, read_write> cat_dst: array<f32>;

@compute @workgroup_size(WG)
fn concat_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = flat(gid, ng);
  if (i >= cp.total) { return; }
  let r = i / cp.row;
  var j = i % cp.row;
  let o = r * cp.dst_stride + cp.dst_offset + j;
  if (j < cp.lens.x) { cat_dst[o] = cat0[r * cp.lens.x + j]; return; }
  j -= cp.lens.x;
  if (j < cp.lens.y) { cat_dst[o] = cat1[r * cp.lens.y + j]; return; }
  j -= cp.lens.y;
  if (j < cp.lens.z) { cat_dst[o] = cat2[r * cp.lens.z + j]; return; }
  j -= cp.lens.z;
  cat_dst[o] = cat3[r * cp.lens.w + j];
}
