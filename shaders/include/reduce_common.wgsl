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

fn kept_base(o: u32) -> u32 {
  let c3 = o % p.k3;
  let q2 = o / p.k3;
  let c2 = q2 % p.k2;
  let q1 = q2 / p.k2;
  let c1 = q1 % p.k1;
  let c0 = q1 / p.k1;
  return c0 * p.ks0 + c1 * p.ks1 + c2 * p.ks2 + c3 * p.ks3;
}

fn reduced_offset(r: u32) -> u32 {
  let c3 = r % p.r3;
  let q2 = r / p.r3;
  let c2 = q2 % p.r2;
  let q1 = q2 / p.r2;
  let c1 = q1 % p.r1;
  let c0 = q1 / p.r1;
  return c0 * p.rs0 + c1 * p.rs1 + c2 * p.rs2 + c3 * p.rs3;
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
