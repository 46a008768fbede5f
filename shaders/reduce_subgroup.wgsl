// reduce.wgsl's one-workgroup-per-output sum for workgroups that fit in one subgroup: the lanes'
// partial sums meet by subgroupAdd, with no workgroup memory and no barrier (on lavapipe a
// barrier makes the whole shader a coroutine; reduce.wgsl's 256-wide tree takes 9 of them).
// primitives.ts takes this file where one subgroup holds the whole workgroup (WG <= subgroupMinSize).

enable subgroups;

override WG: u32 = 8u;

// #include "reduce_common.wgsl"

@compute @workgroup_size(WG)
fn per_group(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) groups: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let o = wid.x + wid.y * groups.x;
  // o is uniform across the workgroup: subgroupAdd runs in uniform control flow.
  let valid = o < p.outputs;
  let total = subgroupAdd(lane_sum(o, lid, valid));
  if (lid == 0u && valid) { y[o] = total * p.scale; }
}
