// The fused batch / instance norm kernels (include/norm_fused.wgsl) for workgroups that fit in one
// subgroup: the sums are subgroupAdd, with no workgroup memory and no barrier. On lavapipe a
// barrier makes the whole shader a coroutine even when the workgroup is one 8-wide SIMD row.
// Measured on the 64x64 ngf 16 steps (2026-12-03): profiled, three alternating rounds, the G step's
// 52 fused launches 16-18% -> 14-15% of its kernel time (D: 14-16% -> 9-11%); unprofiled, one
// process alternating the two paths over 40 steps, G 86.4 -> 84.4 ms median, D 19.9 -> 18.7 ms.
// norm.ts takes this file where one subgroup holds the whole workgroup (WG <= subgroupMinSize).

enable subgroups;

override WG: u32 = 8u;

// #include "norm_common.wgsl"

fn group_sum(lid: u32, v: f32) -> f32 { return subgroupAdd(v); }
fn group_sum2(lid: u32, v: vec2f) -> vec2f { return subgroupAdd(v); }

// #include "norm_fused.wgsl"
