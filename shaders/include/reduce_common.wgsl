// Shared by reduce.wgsl and reduce_subgroup.wgsl (the including shader declares `override WG`): the
// parameters, bindings and index helpers.

struct Params {
  outputs: u32,   // number of output elements
  count: u32,     // elements reduced per output (R)
  scale: f32,
  // kept dims (sizes k1..k3; k0 implied) and their input strides
  k1: u32, k2: u32, k3: u32,
  ks0: u32, ks1: u32, ks2: u32, ks3: u32,
  // reduced dims (sizes r1..r3; r0 implied) and their input strides
  r1: u32, r2: u32, r3: u32,
  rs0: u32, rs1: u32, rs2: u32, rs3: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// The input offset of index i over dims (d0 implied, d.x, d.y, d.z) with strides s.
fn strided(i: u32, d: vec3u, s: vec4u) -> u32 {
  let q2 = i / d.z;
  let q1 = q2 / d.y;
  return dot(vec4u(q1 / d.x, q1 % d.x, q2 % d.y, i % d.z), s);
}

fn kept_base(o: u32) -> u32 {
  return strided(o, vec3u(p.k1, p.k2, p.k3), vec4u(p.ks0, p.ks1, p.ks2, p.ks3));
}

fn reduced_offset(r: u32) -> u32 {
  return strided(r, vec3u(p.r1, p.r2, p.r3), vec4u(p.rs0, p.rs1, p.rs2, p.rs3));
}

// One workgroup per output o: this invocation's share of its sum (elements lid, lid + WG, ...;
// 0 when !valid).
fn lane_sum(o: u32, lid: u32, valid: bool) -> f32 {
  var s = 0.0;
  if (valid) {
    let base = kept_base(o);
    for (var r = lid; r < p.count; r += WG) {
      s += x[base + reduced_offset(r)];
    }
  }
  return s;
}
