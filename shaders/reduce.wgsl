// Sum over any subset of the (up to 4) dimensions of a tensor, times a scale (1 for sum, 1/R for
// mean). Output element o has "kept" coordinates; the reduction runs over the "reduced" ones.
// Two strategies: one workgroup per output (long reductions, tree in workgroup memory) and one
// thread per output (many short reductions).

override WG: u32 = 256u;

// #include "reduce_common.wgsl"

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn per_group(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * groups.x;
  // o is uniform across the workgroup, so every invocation reaches the barriers below.
  let valid = o < p.outputs;
  partial[lid] = lane_sum(o, lid, valid);
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step = step / 2u) {
    if (lid < step) { partial[lid] += partial[lid + step]; }
    workgroupBarrier();
  }
  if (lid == 0u && valid) { y[o] = partial[0] * p.scale; }
}

@compute @workgroup_size(WG)
fn per_thread(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let o = gid.x + gid.y * groups.x * WG;
  if (o >= p.outputs) { return; }
  let base = kept_base(o);
  var s = 0.0;
  for (var r = 0u; r < p.count; r++) {
    s += x[base + reduced_offset(r)];
  }
  y[o] = s * p.scale;
}
