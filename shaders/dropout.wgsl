// Dropout with a stateless counter-based mask: element i of a call with seed s is kept iff
// hash(s, i) >> 8 >= threshold, a 24-bit uniform draw against round(p * 2^24). The hash is two
// rounds of the PCG output permutation (O'Neill; "pcg_hash" in Jarzynski & Olano 2020), keyed by
// k1 and k2, which src/engine/ops/dropout.ts derives from both halves of the seed with the same
// permutation. Any (seed, index) gives the same bit on every device, and the backward recomputes
// the mask instead of storing it. dropoutMask() in dropout.ts mirrors the whole hash on the CPU.

override WG: u32 = 256u;

struct Params {
  n: u32,
  threshold: u32,  // drop iff draw < threshold, draw uniform in [0, 2^24)
  k1: u32,         // keys derived from the seed (see dropout.ts)
  k2: u32,
  scale: f32,      // 1 / (1 - p)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

fn draw(i: u32) -> u32 {
  return pcg(pcg(i ^ p.k1) + p.k2) >> 8u;
}

// y = x * mask * scale; the backward is the same map applied to the output gradient.
@compute @workgroup_size(WG)
fn apply(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let i = gid.x + gid.y * ng.x * WG;
  if (i >= p.n) { return; }
  y[i] = select(0.0, x[i] * p.scale, draw(i) >= p.threshold);
}
